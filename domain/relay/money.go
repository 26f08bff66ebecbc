package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/budget"
	"github.com/relaystation/relay/domain/pricing"
)

// DefaultWebSearchBound is how many web searches the money reservation
// counts for a web_search tool that sets no max_uses. The upstream does not
// state a cap; ten is the server-tool loop's default iteration limit
// before it answers pause_turn. Settlement charges the searches made, so a
// request that makes more costs its true price and can pass a budget by
// the fee of the extra searches ($0.01 each), never by tokens.
const DefaultWebSearchBound = 10

// ModelAllowed reports whether a key with allowed-model patterns may use
// model: an empty list allows every model; otherwise the model must match
// one (domain.MatchModel), and a request naming no model is refused.
func ModelAllowed(patterns []string, model string) bool {
	return len(patterns) == 0 || domain.MatchModel(patterns, model)
}

// ValidModelPattern checks one allowed_models entry (domain.ValidModelPattern).
func ValidModelPattern(p string) error { return domain.ValidModelPattern(p) }

// modelRefused is the refusal of a model outside the key's allow-list.
func modelRefused(model string) error {
	if model == "" {
		return &domain.Error{Kind: domain.KindForbidden, Reason: domain.ReasonKeyModel,
			Message: "this API key may use only some models, and the request names none"}
	}
	return &domain.Error{Kind: domain.KindForbidden, Reason: domain.ReasonKeyModel,
		Message: fmt.Sprintf("this API key may not use the model %q", safeModel(model))}
}

// safeModel shows a model name from a body in a message: printable ASCII,
// at most 128 bytes.
func safeModel(m string) string {
	if len(m) > 128 {
		m = m[:128]
	}
	for i := 0; i < len(m); i++ {
		if m[i] < ' ' || m[i] > '~' {
			return "(unprintable)"
		}
	}
	return m
}

// checkModels refuses a call that names a model outside the key's
// allow-list: the body's model on every call that has one, every request
// of a batch (one disallowed request refuses the whole batch), and the
// model a GET /v1/models/{id} names.
func (s *Service) checkModels(a *Admission, items []domain.BatchItem) error {
	allowed := a.Key.AllowedModels
	if len(allowed) == 0 {
		return nil
	}
	ep := a.call.Route.Endpoint
	switch {
	case ep == EndpointModel:
		if !ModelAllowed(allowed, a.call.Route.ObjectID) {
			return modelRefused(a.call.Route.ObjectID)
		}
	case ep == EndpointBatchCreate:
		for _, it := range items {
			if !ModelAllowed(allowed, it.Request.Model) {
				return modelRefused(it.Request.Model)
			}
		}
	case ep.NeedsJSON(), ep == EndpointCountTokens:
		if !ModelAllowed(allowed, a.Request.Model) {
			return modelRefused(a.Request.Model)
		}
	}
	return nil
}

// costBound is the most one request on model can cost, for a prompt of at
// most inTokens and an output of at most outTokens (pricing.UpperBound);
// a model the table does not price is refused under the policy.
func (s *Service) costBound(t *pricing.Table, r domain.CallRequest, inTokens, outTokens int64, batch bool) (domain.Nanodollars, error) {
	m, err := t.Resolve(r.Model, s.cfg.Prices.Policy())
	if err != nil {
		s.cfg.Prices.NoteUnpriced(r.Model)
		return 0, &domain.Error{Kind: domain.KindInvalid, Reason: domain.ReasonUnpriced, Err: err,
			Message: fmt.Sprintf("the model %q has no price in this relay's price table (%s), and this API key has a money budget: ask an operator to price it",
				safeModel(r.Model), t.Version)}
	}
	return pricing.UpperBound(m.Entry, inTokens, outTokens, pricing.Modifiers{
		Batch: batch, Fast: r.Speed == "fast", InferenceGeo: r.InferenceGeo,
		WebSearches: r.WebSearch.Bound(DefaultWebSearchBound),
	})
}

// reserveMoney makes the money reservation of a metered or batch call on
// a key with budgets: the upper-bound cost of the request, held in every
// window at once. Like the token reservation it first bounds the input
// cheaply (every text byte a token, or the token reservation's estimate
// when that one was made), and tokenises only when the cheap bound does
// not fit but the output bound alone would.
func (s *Service) reserveMoney(ctx context.Context, a *Admission, items []domain.BatchItem) error {
	if s.cfg.Budgets == nil || s.cfg.Prices == nil {
		return fmt.Errorf("relay: key %s has money budgets but no budget ledger or price table is configured", a.Key.ID)
	}
	bs := s.cfg.Budgets.Of(a.Key)
	if err := budget.ValidateList(bs); err != nil {
		return fmt.Errorf("key %s has invalid stored budgets: %w", a.Key.ID, err)
	}
	t := s.cfg.Prices.Table()
	// input returns the input bound of the request (items == nil) or of
	// one batch item's params: 0 (output only), cheap or tight.
	type mode int
	const (
		outputOnly mode = iota
		cheap
		tight
	)
	input := func(ctx context.Context, body []byte, m mode) (int64, error) {
		clamp := func(n int64) int64 { return min(max(n, 0), MaxReservableTokens) }
		switch {
		case m == outputOnly:
			return 0, nil
		case m == cheap && items != nil:
			return clamp(s.cfg.Estimator.InputBound(body)), nil
		case m == cheap && a.inputEst == 0:
			return a.cheapInputBound(s.cfg.Estimator), nil
		case items == nil && a.inputEst > 0:
			return a.inputEst, nil
		}
		n, err := s.cfg.Estimator.InputEstimate(ctx, body)
		if err == nil && items == nil {
			a.inputEst = clamp(n)
		}
		return clamp(n), err
	}
	bound := func(m mode) (domain.Nanodollars, error) {
		// One wait for the estimator for the whole call, as the token
		// reservation's: a batch of many requests is no slower to refuse.
		// Only the tight bound tokenises; the others need no timer. (A
		// new variable: the closure must not replace reserveMoney's ctx.)
		ctx := ctx
		if m == tight {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, estimateWait)
			defer cancel()
		}
		if items == nil {
			in, err := input(ctx, a.call.Body, m)
			if err != nil {
				return 0, err
			}
			return s.costBound(t, a.Request, in, s.outputBound(a.Request), false)
		}
		var sum domain.Nanodollars
		for _, it := range items {
			in, err := input(ctx, it.Params, m)
			if err != nil {
				return 0, err
			}
			c, err := s.costBound(t, it.Request, in, s.outputBound(it.Request), true)
			if err != nil {
				return 0, err
			}
			if sum += c; sum > budget.MaxLimit {
				sum = budget.MaxLimit
			}
		}
		return sum, nil
	}
	amount, err := bound(cheap)
	if err != nil {
		return s.reject(err)
	}
	lease := s.cfg.ReservationLease
	if items != nil {
		lease = s.cfg.BatchLease
	}
	amount = min(amount, budget.MaxLimit)
	_, err = s.cfg.Budgets.Reserve(ctx, a.Key.ID, a.call.RequestID, bs, amount, a.at(), lease)
	var ref *budget.Refusal
	if errors.As(err, &ref) {
		// Tokenising helps only when the output alone fits every short
		// window's room.
		floor, ferr := bound(outputOnly)
		fits := ferr == nil
		for _, sf := range ref.Shortfalls {
			fits = fits && sf.Status.Fits(floor)
		}
		if fits {
			n, terr := bound(tight)
			if terr != nil {
				if domain.KindOf(terr) == domain.KindOverloaded {
					return s.reject(errEstimatorBusy(terr))
				}
				return s.reject(terr)
			}
			if n < amount {
				amount = n
				_, err = s.cfg.Budgets.Reserve(ctx, a.Key.ID, a.call.RequestID, bs, amount, a.at(), lease)
			}
		}
	}
	switch {
	case err == nil:
		a.costLimited, a.ReservedCost = true, amount
		return nil
	case domain.KindOf(err) == domain.KindQuotaExceeded, domain.KindOf(err) == domain.KindInvalid:
		return s.reject(err)
	default:
		return s.backendFailed(ctx, a.call.RequestID, ConcernBudget, s.cfg.QuotaPolicy, err)
	}
}

// price prices a usage record with the current table. An unpriced model
// is recorded as such (never as a silent $0): flagged, its priced parts
// kept, and remembered for admins.
func (s *Service) price(ctx context.Context, rec *domain.UsageRecord) {
	if s.cfg.Prices == nil || !pricing.Billable(rec) {
		return
	}
	c, unpriced, err := s.cfg.Prices.Table().PriceRecord(rec, s.cfg.Prices.Policy())
	if err != nil {
		s.cfg.Log.LogAttrs(ctx, slog.LevelError, "usage could not be priced; recorded as unpriced",
			slog.String("request_id", rec.RequestID), slog.String("model", rec.Model), slog.String("error", err.Error()))
	}
	for _, m := range unpriced {
		s.cfg.Prices.NoteUnpriced(m)
	}
	rec.Cost = c
}

// settleMoney settles the call's money reservation with what it cost.
func (s *Service) settleMoney(ctx context.Context, a *Admission, cost domain.Nanodollars) {
	if s.cfg.Budgets == nil {
		return
	}
	at := a.at()
	if err := s.cfg.Budgets.Settle(ctx, a.Key.ID, a.call.RequestID, cost, at); err != nil {
		s.cfg.Observer.BackendFailure(ConcernBudget, false)
		s.cfg.Log.LogAttrs(ctx, slog.LevelWarn, "budget settle failed; retrying in the background",
			slog.String("request_id", a.call.RequestID), slog.String("error", err.Error()))
		s.retrySettle(pendingSettle{key: a.Key.ID, id: a.call.RequestID, money: true, cost: cost, at: at})
	}
}

// budgetLeaseRenew extends the money reservation with the token one.
func (s *Service) extendMoney(ctx context.Context, a *Admission, lease time.Duration) error {
	if !a.costLimited {
		return nil
	}
	return s.cfg.Budgets.Extend(ctx, a.Key.ID, a.call.RequestID, lease)
}

// at is the time the call's spend is measured and recorded at: its
// arrival, as its usage record is stored with (the clock's time for a call
// built without one).
func (a *Admission) at() time.Time {
	if a.call.Start.IsZero() {
		if a.start.IsZero() {
			a.start = a.svc.cfg.Clock.Now()
		}
		return a.start
	}
	return a.call.Start
}
