package admin

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/pricing"
	"github.com/relaystation/relay/ports"
)

const (
	// MaxRepriceRange bounds the range one repricing covers.
	MaxRepriceRange = 400 * 24 * time.Hour
	// repricePage is how many records a repricing reads at once, and so
	// the most it writes in one UpdateUsageCosts transaction.
	repricePage = 500
	// maxRepriceModels bounds the per-model rows of a report;
	// maxTrackedModels the models a repricing keeps apart at all (the rest
	// are summed under otherModels).
	maxRepriceModels = 100
	maxTrackedModels = 10_000
	otherModels      = "(other models)"
)

// RepriceInput reprices the stored usage of [From, To) with the current
// price table; Apply writes the changes, otherwise they are only reported.
type RepriceInput struct {
	From, To time.Time
	Apply    bool
}

// Validate checks the range: both ends set, To after From, at most
// MaxRepriceRange.
func (in RepriceInput) Validate() error {
	switch {
	case in.From.IsZero() || in.To.IsZero():
		return domain.Invalidf("from and to are required")
	case !in.To.After(in.From):
		return domain.Invalidf("to must be later than from")
	case in.To.Sub(in.From) > MaxRepriceRange:
		return domain.Invalidf("a repricing covers at most %d days", int(MaxRepriceRange/(24*time.Hour)))
	}
	return nil
}

// RepriceReport is what a repricing found, and with Apply what it wrote.
type RepriceReport struct {
	From, To     time.Time
	PriceVersion string // the table the records were priced with
	Apply        bool
	// Examined counts the records of the range; Skipped those that keep
	// their cost (nothing billable, or an unreadable batch); Changed those
	// whose stored cost differs from the new one; Applied the changes
	// written (fewer than Changed when some were repriced meanwhile);
	// Unpriced the records the table cannot fully price.
	Examined, Skipped, Changed, Applied, Unpriced int64
	// KeysReset is how many keys' budget ledgers were reset.
	KeysReset int
	// OldTotal is the stored cost of every record examined, NewTotal
	// their cost once repriced.
	OldTotal, NewTotal domain.Nanodollars
	// ByModel are the models with changed records, the largest absolute
	// difference first, at most maxRepriceModels; ModelsOmitted counts
	// the rest.
	ByModel       []ModelReprice
	ModelsOmitted int
}

// Difference is NewTotal − OldTotal.
func (r RepriceReport) Difference() domain.Nanodollars { return r.NewTotal - r.OldTotal }

// ModelReprice is the change of one model's records.
type ModelReprice struct {
	Model    string
	Changed  int64
	Old, New domain.Nanodollars
}

// Difference is New − Old.
func (m ModelReprice) Difference() domain.Nanodollars { return m.New - m.Old }

// Reprice prices every stored record of [in.From, in.To), all keys and
// deleted ones included, with the current price table, as the relay prices
// a record when it stores it. With in.Apply it writes the changed costs
// (ports.UsageRepricer, one transaction per page of records) and then
// resets the budget ledger of every key whose costs changed, so it
// re-seeds from storage. Running it again with the same table finds
// nothing to change.
func (s *Service) Reprice(ctx context.Context, in RepriceInput) (report RepriceReport, err error) {
	if err := in.Validate(); err != nil {
		return RepriceReport{}, err
	}
	if s.prices == nil {
		return RepriceReport{}, errNoPrices()
	}
	if in.Apply && s.repricer == nil {
		return RepriceReport{}, &domain.Error{Kind: domain.KindUnavailable, Message: "this relay's store cannot rewrite usage costs"}
	}
	from, to := in.From.UTC(), in.To.UTC()
	t, policy := s.prices.Table(), s.prices.Policy()
	r := RepriceReport{From: from, To: to, PriceVersion: t.Version, Apply: in.Apply}
	models := map[string]*ModelReprice{}
	touched := map[uuid.UUID]bool{}
	if in.Apply {
		// Whatever was written, even if a later page fails or the caller
		// goes away, must not leave a ledger counting the old costs.
		defer func() { report.KeysReset = s.resetRepriced(context.WithoutCancel(ctx), touched) }()
	}
	q := domain.LogQuery{From: &from, To: &to, Limit: repricePage}
	for {
		recs, err := s.usage.UsageLogs(ctx, q)
		if err != nil {
			return r, fmt.Errorf("read usage records: %w", err)
		}
		var updates []ports.CostUpdate
		var keys []uuid.UUID
		for _, rec := range recs {
			r.Examined++
			old := rec.Cost
			next := old
			// A batch the relay could not read is billed its reservation,
			// which no table can recompute.
			if rec.ErrorType == domain.ErrorTypeBatchUnreadable || !pricing.Billable(&rec) {
				r.Skipped++
			} else {
				next, _, _ = t.PriceRecord(&rec, policy)
				if next.Unpriced {
					r.Unpriced++
				}
			}
			r.OldTotal += old.Total
			r.NewTotal += next.Total
			if sameCost(old, next) {
				continue
			}
			r.Changed++
			m := models[rec.Model]
			if m == nil {
				name := rec.Model
				if len(models) >= maxTrackedModels {
					name = otherModels
				}
				if m = models[name]; m == nil {
					m = &ModelReprice{Model: name}
					models[name] = m
				}
			}
			m.Changed++
			m.Old += old.Total
			m.New += next.Total
			updates = append(updates, ports.CostUpdate{RequestID: rec.RequestID, Old: old, New: next})
			keys = append(keys, rec.KeyID)
		}
		if in.Apply && len(updates) > 0 {
			n, err := s.repricer.UpdateUsageCosts(ctx, updates)
			if n > 0 {
				// Which updates were skipped is not reported: reset every
				// key of the batch, which costs at most a re-seed.
				for _, k := range keys {
					touched[k] = true
				}
			}
			r.Applied += int64(n)
			if err != nil {
				r.ByModel, r.ModelsOmitted = topModels(models)
				return r, fmt.Errorf("write repriced usage costs: %w", err)
			}
		}
		if len(recs) < repricePage {
			break
		}
		last := recs[len(recs)-1]
		q.After = &domain.LogCursor{Time: last.Time, RequestID: last.RequestID}
	}
	r.ByModel, r.ModelsOmitted = topModels(models)
	return r, nil
}

// resetRepriced resets the budget ledgers of the keys whose stored costs
// were rewritten, and returns how many it reset.
func (s *Service) resetRepriced(ctx context.Context, keys map[uuid.UUID]bool) int {
	if s.budgets == nil {
		return 0
	}
	n := 0
	for id := range keys {
		if err := s.budgets.Reset(ctx, id); err != nil {
			s.log.Error("reset budget ledger after repricing", "key_id", id.String(), "error", err.Error())
			continue
		}
		n++
	}
	return n
}

// sameCost reports whether a stored cost equals a computed one. Detail is
// compared as JSON values: a store may keep it in another spelling
// (PostgreSQL's jsonb orders keys its own way).
func sameCost(a, b domain.RecordCost) bool {
	if a.CostBreakdown != b.CostBreakdown || a.Total != b.Total || a.PriceVersion != b.PriceVersion ||
		a.Fallback5m != b.Fallback5m || a.Unpriced != b.Unpriced {
		return false
	}
	return sameJSON(a.Detail, b.Detail)
}

func sameJSON(a, b json.RawMessage) bool {
	empty := func(m json.RawMessage) bool {
		m = bytes.TrimSpace(m)
		return len(m) == 0 || bytes.Equal(m, []byte("null"))
	}
	if empty(a) || empty(b) {
		return empty(a) && empty(b)
	}
	if bytes.Equal(a, b) {
		return true
	}
	va, ea := decodeJSON(a)
	vb, eb := decodeJSON(b)
	return ea == nil && eb == nil && reflect.DeepEqual(va, vb)
}

func decodeJSON(m json.RawMessage) (any, error) {
	d := json.NewDecoder(bytes.NewReader(m))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}

// topModels orders the models by absolute difference, largest first (then
// by name), and keeps at most maxRepriceModels.
func topModels(models map[string]*ModelReprice) ([]ModelReprice, int) {
	out := make([]ModelReprice, 0, len(models))
	for _, m := range models {
		out = append(out, *m)
	}
	abs := func(n domain.Nanodollars) domain.Nanodollars { return max(n, -n) }
	slices.SortFunc(out, func(a, b ModelReprice) int {
		if c := cmp.Compare(abs(b.Difference()), abs(a.Difference())); c != 0 {
			return c
		}
		return cmp.Compare(a.Model, b.Model)
	})
	if len(out) > maxRepriceModels {
		return out[:maxRepriceModels], len(out) - maxRepriceModels
	}
	return out, 0
}
