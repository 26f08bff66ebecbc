package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// MaxReservableTokens bounds max_tokens and the input estimate of one
// request, so reservations never overflow.
const MaxReservableTokens = domain.MaxTokens

// DefaultMaxTokens is reserved for output when a metered request names no
// output bound: 128,000, the largest output of any current Claude model, so
// the reservation stays an upper bound. (The Messages API itself requires
// max_tokens; the OpenAI-compatible endpoint does not.)
const DefaultMaxTokens = 128_000

// Call is one proxied request, as admission sees it.
type Call struct {
	Route Route
	// RequestID names the quota reservation and the usage record; unique.
	RequestID string
	// Start is when the request arrived.
	Start    time.Time
	ClientIP netip.Addr
	// Origin and Referer are the request's headers, for allowed_domains.
	Origin  string
	Referer string
	// ContentType and ContentEncoding are the request's headers.
	ContentType     string
	ContentEncoding string
	// Body is the whole request body.
	Body []byte
	// Session is X-Claude-Code-Session-Id.
	Session string
}

// Validate checks the call's own fields.
func (c *Call) Validate() error {
	if c.RequestID == "" {
		return domain.Invalidf("admission needs a request id")
	}
	if c.Route.Endpoint == EndpointUnknown {
		return domain.Invalidf("admission needs a classified route")
	}
	return nil
}

// Admission is an admitted request. Finish must be called exactly once
// when the response has ended (more calls are no-ops).
type Admission struct {
	Key  domain.APIKey
	Tier domain.Tier
	// Rate is the request-budget decision, for the relay's rate headers.
	Rate domain.RateDecision
	// RateChecked is false when the limiter failed open and Rate is empty.
	RateChecked bool
	// Request is what the body said (metered and batch endpoints).
	Request domain.CallRequest
	// Reserved is the quota reservation, 0 if none was made.
	Reserved int64
	// ReservedCost is the money reservation, 0 if none was made.
	ReservedCost domain.Nanodollars

	svc     *Service
	call    Call
	limited bool // a reservation was made: settle it in the ledger
	// costLimited: a money reservation was made: settle it in the budgets.
	costLimited bool
	// start stands in for call.Start when the call carries none (at).
	start   time.Time
	release func()
	once    sync.Once
	// inputEst caches the tokenised input estimate.
	inputEst int64
	// inputBound caches the cheap input bound of the call's body (the
	// token and the money reservation both need it); -1 until computed.
	inputBound int64
	// renewAt is when KeepAlive next extends the reservation (unix nanos).
	renewAt atomic.Int64
	// objectUpstream is the upstream the named objects require (ObjectUpstream).
	objectUpstream string
}

// KeepAlive is called while the answer is still arriving (each chunk of a
// long stream). A reservation has a lease, so that a crashed replica's
// holds expire; a request that is alive must keep its hold, or a stream
// outliving the lease would stop counting against the quota and let other
// requests overspend it. Every third of a lease the reservation is
// extended by a lease; between those times this costs one clock read.
func (a *Admission) KeepAlive(ctx context.Context) {
	if a == nil || !a.limited && !a.costLimited {
		return
	}
	s := a.svc
	now := s.cfg.Clock.Now().UnixNano()
	at := a.renewAt.Load()
	if now < at || !a.renewAt.CompareAndSwap(at, now+int64(s.cfg.ReservationLease/3)) {
		return
	}
	ctx = context.WithoutCancel(ctx)
	err := s.extendMoney(ctx, a, s.cfg.ReservationLease)
	if a.limited {
		err = errors.Join(err, s.cfg.Ledger.Extend(ctx, a.Key.ID, a.call.RequestID, s.cfg.ReservationLease))
	}
	if err != nil {
		s.cfg.Observer.BackendFailure(ConcernQuota, false)
		s.cfg.Log.LogAttrs(ctx, slog.LevelWarn, "quota lease extension failed; retrying on the next chunk",
			slog.String("request_id", a.call.RequestID), slog.String("error", err.Error()))
		a.renewAt.Store(now)
	}
}

// Endpoint is the admitted call's endpoint.
func (a *Admission) Endpoint() Endpoint { return a.call.Route.Endpoint }

// Authenticate checks the presented key and the client address: the first
// step of admission, run before the proxy reads (and buffers) a body of up
// to 32 MB, so that a client without a valid key costs nothing. On failure
// the returned key is the zero key when the key is unknown, and the key
// itself when it is known (disabled, expired, deleted, refused by its IP
// allow-list), so that the refusal can be recorded against it.
func (s *Service) Authenticate(ctx context.Context, raw string, client netip.Addr) (domain.APIKey, error) {
	k, err := s.cfg.Auth.Authenticate(ctx, raw, client)
	if err != nil {
		return k, s.reject(err)
	}
	return k, nil
}

// Admit runs admission control for one authenticated call. The steps run
// in this fixed order, and the first refusal ends admission; any step that
// took a resource (a concurrency slot, a reservation) gives it back when a
// later step refuses. Every step that needs nothing from the body comes
// before the body is parsed, so that refusing a large body costs no more
// than refusing a small one:
//
//  1. Origin allow-list: the key's allowed_domains against the Origin (or
//     Referer) host; 403 permission_error.
//  2. Usage-writer saturation: 503 overloaded_error rather than serve
//     traffic that cannot be accounted.
//  3. Request rate: the tier's requests per period (auxiliary endpoints use
//     the separate aux budget); 429 with retry-after.
//  4. Tokens per period, when the tier sets one (metered calls): 429 while
//     the budget is in debt.
//  5. A spent quota, when the key has a token_limit (metered and batch
//     calls): settled usage at the limit is a 429 that no retry can turn
//     into a success (x-should-retry: false).
//  6. Concurrency, when the tier sets max_concurrency: 429.
//  7. The body, for metered and batch endpoints: JSON content type (415),
//     identity content encoding (415), and a strict read of the fields
//     that decide the reservation (400).
//  8. Models, when the key has allowed_models: the body's model, every
//     model of a batch, the model of GET /v1/models/{id}; 403
//     permission_error naming the model.
//  9. Ownership, for batch and file ids: another key's object is 404.
//  10. Quota, when the key has a token_limit (metered and batch calls): see
//     reserve.
//  11. Money budgets, when the key has any (metered and batch calls): the
//     request's upper-bound cost is held in every window at once (see
//     reserveMoney); a model the price table does not price is refused
//     (400). A refusal names the window and when it resets. Only steps 10
//     and 11 may tokenise the body.
//
// Backend failures in steps 3, 4, 6, 10 and 11 follow the configured
// FailurePolicy.
func (s *Service) Admit(ctx context.Context, key domain.APIKey, call Call) (*Admission, error) {
	if err := call.Validate(); err != nil {
		return nil, err
	}
	ep := call.Route.Endpoint
	// 1.
	if !OriginAllowed(key.AllowedDomains, call.Origin, call.Referer) {
		return nil, s.reject(&domain.Error{Kind: domain.KindForbidden, Reason: domain.ReasonKeyOrigin,
			Message: "this API key may not be used from this origin"})
	}
	// 2.
	if s.cfg.Usage.Saturated() {
		return nil, s.reject(&domain.Error{Kind: domain.KindOverloaded, Reason: domain.ReasonUsageQueue,
			Message: "the relay is overloaded: usage accounting is backed up; retry shortly"})
	}
	tier, err := s.cfg.Tiers.Tier(ctx, key.RateLimitTier)
	if err != nil {
		if domain.KindOf(err) != domain.KindNotFound {
			return nil, err
		}
		s.cfg.Log.LogAttrs(ctx, slog.LevelWarn, "key names an unknown tier; using the fallback tier",
			slog.String("key_id", key.ID.String()), slog.String("tier", key.RateLimitTier))
		tier = *s.cfg.FallbackTier
	}
	a := &Admission{Key: key, Tier: tier, svc: s, call: call, inputBound: -1}
	// 3.
	rkey, rlimit := domain.RequestsLimiterKey(key.ID), tier.RequestLimit()
	if ep.Billing() == BillingAux {
		rkey, rlimit = domain.AuxLimiterKey(key.ID), tier.AuxLimit()
	}
	d, err := s.cfg.Rate.Allow(ctx, rkey, rlimit, 1)
	switch {
	case err != nil:
		if err := s.backendFailed(ctx, call.RequestID, ConcernRequests, s.cfg.RatePolicy, err); err != nil {
			return nil, err
		}
	case !d.Allowed:
		return nil, s.reject(&domain.Error{Kind: domain.KindRateLimited, Reason: domain.ReasonRequests, RetryAfter: d.RetryAfter,
			Message: fmt.Sprintf("rate limit exceeded: %d requests per %s", rlimit.Count, rlimit.Period)})
	default:
		a.Rate, a.RateChecked = d, true
	}
	metered := ep.Billing() == BillingMetered
	// 4.
	if tl, ok := tier.TokenLimit(); ok && metered {
		d, err := s.cfg.Rate.Peek(ctx, domain.TokensLimiterKey(key.ID), tl)
		switch {
		case err != nil:
			if err := s.backendFailed(ctx, call.RequestID, ConcernTokens, s.cfg.RatePolicy, err); err != nil {
				return nil, err
			}
		case !d.Allowed:
			return nil, s.reject(&domain.Error{Kind: domain.KindRateLimited, Reason: domain.ReasonTokens, RetryAfter: d.RetryAfter,
				Message: fmt.Sprintf("token rate limit exceeded: %d tokens per %s", tl.Count, tl.Period)})
		}
	}
	// 5.
	reserves := key.TokenLimit != nil && (metered || ep == EndpointBatchCreate)
	if reserves && key.TokensUsed >= *key.TokenLimit {
		return nil, s.reject(quotaSpent(key.TokensUsed, *key.TokenLimit, 0))
	}
	// 6.
	if tier.MaxConcurrency != nil {
		rel, ok, err := s.cfg.Concurrency.Acquire(ctx, domain.ConcurrencyKey(key.ID), *tier.MaxConcurrency, s.cfg.ConcurrencyLease)
		switch {
		case err != nil:
			if err := s.backendFailed(ctx, call.RequestID, ConcernConcurrency, s.cfg.RatePolicy, err); err != nil {
				return nil, err
			}
		case !ok:
			return nil, s.reject(&domain.Error{Kind: domain.KindRateLimited, Reason: domain.ReasonConcurrency, RetryAfter: time.Second,
				Message: fmt.Sprintf("too many concurrent requests for this API key (at most %d)", *tier.MaxConcurrency)})
		default:
			a.release = rel
		}
	}
	budgeted := len(key.Budgets) > 0 && (metered || ep == EndpointBatchCreate)
	if err := s.admitBody(ctx, a, reserves, budgeted); err != nil {
		a.releaseSlot()
		return nil, err
	}
	return a, nil
}

// admitBody runs the steps of Admit that read the body (7-11).
func (s *Service) admitBody(ctx context.Context, a *Admission, reserves, budgeted bool) error {
	ep, call := a.call.Route.Endpoint, &a.call
	// 7.
	var (
		items []domain.BatchItem
		err   error
	)
	// count_tokens bills nothing, but its model is checked against the
	// key's allow-list, read as strictly as a metered body's.
	if ep.NeedsJSON() || ep == EndpointCountTokens && len(a.Key.AllowedModels) > 0 {
		if err := checkMedia(call.ContentType, call.ContentEncoding); err != nil {
			return s.reject(err)
		}
		if ep == EndpointBatchCreate {
			items, err = s.cfg.Parser.ParseBatch(call.Body)
		} else {
			a.Request, err = s.cfg.Parser.ParseRequest(call.Body, ep.Format())
		}
		if err != nil {
			return s.reject(err)
		}
	}
	// 8.
	if err := s.checkModels(a, items); err != nil {
		return s.reject(err)
	}
	// 9.
	if err := s.checkOwner(ctx, a, call.Route); err != nil {
		return s.reject(err)
	}
	if err := s.checkFileRefs(ctx, a, a.Request, items); err != nil {
		return s.reject(err)
	}
	// 10.
	if reserves {
		if err := s.reserve(ctx, a, items); err != nil {
			return err
		}
	}
	// 11.
	if budgeted {
		if err := s.reserveMoney(ctx, a, items); err != nil {
			if a.limited {
				s.settle(ctx, a.Key.ID, call.RequestID, 0)
				a.limited, a.Reserved = false, 0
			}
			return err
		}
	}
	return nil
}

// checkMedia refuses a body that is not plain JSON: the relay must read
// exactly what the upstream will.
func checkMedia(contentType, contentEncoding string) error {
	if enc := strings.TrimSpace(contentEncoding); enc != "" && !strings.EqualFold(enc, "identity") {
		return &domain.Error{Kind: domain.KindUnsupportedMedia, Reason: domain.ReasonContentEncoding,
			Message: "request bodies must not be compressed (Content-Encoding must be identity)"}
	}
	if !isJSONMediaType(contentType) {
		return &domain.Error{Kind: domain.KindUnsupportedMedia, Reason: domain.ReasonContentType,
			Message: "the request body must be JSON: send Content-Type: application/json"}
	}
	return nil
}

// isJSONMediaType reports whether a Content-Type names application/json,
// in any letter case, with or without parameters. The common spellings are
// matched without allocating; anything else goes through mime.
func isJSONMediaType(ct string) bool {
	const want = "application/json"
	if len(ct) >= len(want) && strings.EqualFold(ct[:len(want)], want) {
		rest := ct[len(want):]
		if rest == "" {
			return true
		}
		if rest[0] == ';' || rest[0] == ' ' || rest[0] == '\t' {
			mt, _, err := mime.ParseMediaType(ct)
			return err == nil && mt == want
		}
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == want
}

// checkOwner refuses a call addressing another key's batch or file, as if
// the object did not exist, and records the upstream the object lives on.
func (s *Service) checkOwner(ctx context.Context, a *Admission, rt Route) error {
	key := a.Key
	kind, owned := rt.Endpoint.Object()
	if !owned {
		return nil
	}
	if s.cfg.Objects == nil {
		return &domain.Error{Kind: domain.KindNotFound, Reason: domain.ReasonObject, Message: "batches and files are not available on this relay"}
	}
	if rt.ObjectID == "" {
		return nil // create and list: listing is filtered on the way back
	}
	o, err := s.cfg.Objects.GetObject(ctx, kind, rt.ObjectID)
	if errors.Is(err, domain.ErrNotFound) || err == nil && o.KeyID != key.ID {
		return &domain.Error{Kind: domain.KindNotFound, Reason: domain.ReasonObject,
			Message: fmt.Sprintf("%s %s not found", kind, rt.ObjectID)}
	}
	if err != nil {
		return fmt.Errorf("look up %s owner: %w", kind, err)
	}
	if err := a.requireUpstream(o.Upstream, kind, o.ID); err != nil {
		return err
	}
	if rt.Endpoint == EndpointBatchDelete && o.SettledAt == nil {
		// A deleted batch's results can no longer be read: settle it first,
		// so that deleting a batch never makes it free.
		if s.cfg.Batches == nil || s.cfg.Store == nil {
			return &domain.Error{Kind: domain.KindOverloaded, Reason: domain.ReasonBatchUnsettled, Message: "this batch's usage is not recorded yet; retry later"}
		}
		if err := s.ReconcileBatch(ctx, o); err != nil {
			return &domain.Error{Kind: domain.KindOverloaded, Reason: domain.ReasonBatchUnsettled, Err: err,
				Message: "this batch's usage could not be recorded yet; retry shortly"}
		}
	}
	return nil
}

// maxFileRefs bounds the distinct files one request may name (each is a
// store lookup).
const maxFileRefs = 100

// checkFileRefs refuses a body that names an uploaded file (a file_id in a
// content block) that the key does not own, as if it did not exist: the
// files of every key live in one upstream workspace, and reading another
// key's file through a message is reading it all the same. The call must
// go to the upstream holding the files.
func (s *Service) checkFileRefs(ctx context.Context, a *Admission, req domain.CallRequest, items []domain.BatchItem) error {
	key := a.Key
	ids := req.FileIDs
	for _, it := range items {
		ids = append(ids[:len(ids):len(ids)], it.Request.FileIDs...)
	}
	if len(ids) == 0 {
		return nil
	}
	seen := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		if len(seen) > maxFileRefs {
			return &domain.Error{Kind: domain.KindInvalid, Reason: domain.ReasonBody,
				Message: fmt.Sprintf("a request may name at most %d distinct files", maxFileRefs)}
		}
		notFound := &domain.Error{Kind: domain.KindNotFound, Reason: domain.ReasonObject, Message: fmt.Sprintf("file %s not found", safeID(id))}
		if s.cfg.Objects == nil {
			return notFound
		}
		o, err := s.cfg.Objects.GetObject(ctx, domain.ObjectFile, id)
		switch {
		case errors.Is(err, domain.ErrNotFound), err == nil && o.KeyID != key.ID:
			return notFound
		case err != nil:
			return fmt.Errorf("look up file owner: %w", err)
		}
		if err := a.requireUpstream(o.Upstream, domain.ObjectFile, id); err != nil {
			return err
		}
	}
	return nil
}

// safeID quotes an id from a body in a message only when it looks like one.
func safeID(id string) string {
	if validObjectID(id) {
		return id
	}
	return "(invalid id)"
}

// estimateWait is how long admission waits for one of the estimator's
// slots (ports.TokenEstimator bounds the tokenising estimates running at
// once) before it answers 503 overloaded_error with retry-after: enough
// for each slot to finish a few estimates of the largest bodies, short
// enough that a flood queues for seconds at most.
const estimateWait = time.Second

// errEstimatorBusy refuses a call whose tight estimate found no free slot.
func errEstimatorBusy(err error) error {
	return &domain.Error{Kind: domain.KindOverloaded, Reason: domain.ReasonEstimator, RetryAfter: time.Second, Err: err,
		Message: "the relay is busy estimating the input of other large requests; retry shortly"}
}

// reserve makes the quota reservation of a metered or batch call, whose
// key Admit found with room left by settled usage. It refuses, without
// tokenising anything, a call whose output bound alone cannot fit in what
// settled usage leaves. Otherwise it reserves the output bound plus the
// estimator's cheap input bound (every text byte a token); when that does
// not fit, but the ledger has room for more than the output bound, it
// reserves against the tighter, tokenised estimate instead, waiting at
// most estimateWait for the estimator. A refusal that no
// in-flight request can free room for is marked NoRetry; one caused by
// in-flight reservations is a retryable 429.
func (s *Service) reserve(ctx context.Context, a *Admission, items []domain.BatchItem) error {
	if s.cfg.Ledger == nil {
		return fmt.Errorf("relay: key %s has a token limit but no quota ledger is configured", a.Key.ID)
	}
	limit, persisted := *a.Key.TokenLimit, a.Key.TokensUsed
	maxTok := s.outputBound(a.Request)
	if items != nil {
		maxTok = 0
		for _, it := range items {
			maxTok = min(maxTok+s.outputBound(it.Request), MaxReservableTokens*64)
		}
	}
	if maxTok > limit-persisted {
		return s.reject(quotaSpent(persisted, limit, maxTok))
	}
	clamp := func(n int64) int64 { return min(max(n, 0), MaxReservableTokens) }
	loose := func() int64 {
		if items == nil {
			return a.cheapInputBound(s.cfg.Estimator)
		}
		var n int64
		for _, it := range items {
			n = min(n+clamp(s.cfg.Estimator.InputBound(it.Params)), MaxReservableTokens*64)
		}
		return n
	}
	tight := func() (int64, error) {
		ctx, cancel := context.WithTimeout(ctx, estimateWait)
		defer cancel()
		if items == nil {
			n, err := s.cfg.Estimator.InputEstimate(ctx, a.call.Body)
			return clamp(n), err
		}
		var sum int64
		for _, it := range items {
			n, err := s.cfg.Estimator.InputEstimate(ctx, it.Params)
			if err != nil {
				return 0, err
			}
			sum = min(sum+clamp(n), MaxReservableTokens*64)
		}
		return sum, nil
	}
	lease := s.cfg.ReservationLease
	if items != nil {
		lease = s.cfg.BatchLease
	}
	est := maxTok + loose()
	st, err := s.cfg.Ledger.Reserve(ctx, a.Key.ID, a.call.RequestID, est, limit, persisted, lease)
	// The tight estimate can only help when the ledger's room (which may
	// know of usage settled since the key was read) holds more than the
	// output bound.
	if domain.KindOf(err) == domain.KindQuotaExceeded && maxTok < limit-st.Used-st.Reserved {
		n, terr := tight()
		if terr != nil {
			return s.reject(errEstimatorBusy(terr))
		}
		if items == nil {
			a.inputEst = n
		}
		if t := maxTok + n; t < est {
			est = t
			st, err = s.cfg.Ledger.Reserve(ctx, a.Key.ID, a.call.RequestID, est, limit, persisted, lease)
		}
	}
	switch {
	case err == nil:
		a.limited, a.Reserved = true, est
		a.renewAt.Store(s.cfg.Clock.Now().Add(s.cfg.ReservationLease / 3).UnixNano())
		return nil
	case domain.KindOf(err) == domain.KindInvalid:
		return s.reject(err)
	case domain.KindOf(err) == domain.KindQuotaExceeded:
		if est > limit-st.Used {
			return s.reject(quotaSpent(st.Used, limit, est))
		}
		return s.reject(&domain.Error{Kind: domain.KindQuotaExceeded, Reason: domain.ReasonQuota, RetryAfter: 5 * time.Second,
			Message: fmt.Sprintf("token quota busy: this request may need %d tokens; %d of %d remain after the %d held by requests in flight",
				est, st.Remaining(limit), limit, st.Reserved)})
	default:
		if err := s.backendFailed(ctx, a.call.RequestID, ConcernQuota, s.cfg.QuotaPolicy, err); err != nil {
			return err
		}
		return nil
	}
}

func (s *Service) outputBound(r domain.CallRequest) int64 {
	if !r.MaxTokensSet && r.MaxTokens <= 0 {
		return s.cfg.DefaultMaxTokens
	}
	return min(max(r.MaxTokens, 0), MaxReservableTokens)
}

// quotaSpent is the refusal when settled usage alone leaves no room: no
// retry can succeed until an operator raises the limit.
func quotaSpent(used, limit, need int64) *domain.Error {
	msg := fmt.Sprintf("token quota exhausted: %d of %d tokens used", min(used, limit), limit)
	if need > 0 {
		msg = fmt.Sprintf("token quota exhausted: this request may need %d tokens but only %d of %d remain", need, max(limit-used, 0), limit)
	}
	return &domain.Error{Kind: domain.KindQuotaExceeded, Reason: domain.ReasonQuota, NoRetry: true, Message: msg}
}

func (a *Admission) releaseSlot() {
	if a.release != nil {
		a.release()
		a.release = nil
	}
}

// Reply is what an upstream answer reported, as the proxy read it.
type Reply struct {
	// Usage is the top-level usage as reported; Iterations, when present,
	// are what is billed (domain.BilledUsage).
	Usage        domain.Usage
	Iterations   []domain.Iteration
	ServerTools  domain.ServerToolUse
	ServiceTier  string
	Speed        string
	InferenceGeo string
	// Model is the model the answer names (the serving model).
	Model string
	// Complete: the answer arrived whole and carried its final usage (a
	// JSON body with usage; a stream's final message_delta / usage chunk).
	Complete bool
	// InputReported: the input and cache counts are the upstream's (a
	// stream's message_start; any JSON usage).
	InputReported bool
	// OutputEstimate estimates the output relayed so far from its text (a
	// stream that ended early), 0 if none.
	OutputEstimate int64
	// Unreadable: the answer could not be metered (an encoding the relay
	// cannot decode, a body cut past its limits): bill the reservation.
	Unreadable bool
	// ErrorType is the upstream's error type, for an error answer.
	ErrorType string
	// ObjectID is the id of the object a create call made (batches, files).
	ObjectID string
}

// Outcome is how an admitted call ended.
type Outcome struct {
	// Status is the status answered to the client (0: none; 499: the
	// client went away first).
	Status int
	// Answered: the upstream answered with a status line; UpstreamStatus is it.
	Answered       bool
	UpstreamStatus int
	// Written: the request reached the upstream, which may bill it even
	// without an answer.
	Written bool
	// Stream: the answer was an event stream.
	Stream    bool
	Reply     Reply
	ErrorType string
	TTFB      time.Duration
	End       time.Time
	// Upstream is the id of the upstream that answered (or was tried
	// last): the usage record's Upstream, and the upstream an object the
	// call created lives on.
	Upstream          string
	UpstreamRequestID string
	// Attempts is how many upstream attempts were made, and Tried the ids
	// of the upstreams failed over from, in order (the usage record's
	// Attempts and TriedUpstreams).
	Attempts int
	Tried    []string
}

// Finish ends the admission exactly once, whatever path gets here first
// (the body's Close, an error handler, a recovered panic): it decides what
// the call is charged, settles the reservation with it, frees the
// concurrency slot, charges the tokens-per-period budget, records batch
// and file ownership, and queues the one usage record, which it returns.
// It never blocks on the usage store and ignores the caller's cancellation.
func (a *Admission) Finish(ctx context.Context, out Outcome) domain.UsageRecord {
	if a == nil {
		return domain.UsageRecord{}
	}
	var rec domain.UsageRecord
	a.once.Do(func() { rec = a.finish(context.WithoutCancel(ctx), out) })
	return rec
}

// charge decides what an outcome costs. Metered calls: an upstream error
// answer bills nothing; a complete answer bills what it reported
// (iterations included); anything else that reached the upstream (an
// interrupted stream, a timeout, a dropped connection, a client that hung
// up first) bills at least the input estimate and what was relayed, and is
// flagged estimated; an answer the relay cannot read bills the reservation.
func (a *Admission) charge(ctx context.Context, out Outcome) (u domain.Usage, estimated bool) {
	r := out.Reply
	billed := domain.BilledUsage(r.Usage, r.Iterations)
	switch a.call.Route.Endpoint.Billing() {
	case BillingAux:
		return domain.Usage{}, false
	case BillingDeferred:
		// A batch the upstream accepted but whose id the relay could not
		// read (a compressed or oversized answer) can never be reconciled:
		// it is billed its reservation rather than run for free.
		if out.Answered && out.UpstreamStatus >= 200 && out.UpstreamStatus < 300 && r.ObjectID == "" {
			return domain.Usage{InputTokens: a.Reserved}, true
		}
		return domain.Usage{}, false
	case BillingNone:
		// Free endpoints bill nothing; should one report usage anyway, it
		// is the upstream's word and is kept.
		if out.Answered && out.UpstreamStatus < 400 && r.Complete {
			return billed, false
		}
		return domain.Usage{}, false
	}
	if !out.Written {
		return domain.Usage{}, false
	}
	if out.Answered && out.UpstreamStatus >= 400 {
		return billed, false // errors carry no usage; keep any reported
	}
	if out.Answered && r.Complete && !r.Unreadable {
		return billed, false
	}
	if r.Unreadable {
		u = billed
		if a.Reserved > u.Total() {
			u = domain.Usage{InputTokens: a.Reserved}
		}
		return u, true
	}
	u = billed
	if !r.InputReported {
		u.InputTokens = max(u.InputTokens, a.inputEstimate(ctx))
	}
	u.OutputTokens = max(u.OutputTokens, r.OutputEstimate)
	return u, true
}

// cheapInputBound is the estimator's cheap input bound of the call's
// body, clamped, computed once.
func (a *Admission) cheapInputBound(e ports.TokenEstimator) int64 {
	if a.inputBound < 0 {
		a.inputBound = min(max(e.InputBound(a.call.Body), 0), MaxReservableTokens)
	}
	return a.inputBound
}

// inputEstimate is the tokenised input estimate of the call, for billing
// an outcome the upstream did not report. It waits for the estimator as
// long as it takes (ctx carries no deadline: the call must be billed), and
// should the estimator still fail, bills the cheap bound, which is never
// below the estimate.
func (a *Admission) inputEstimate(ctx context.Context) int64 {
	if a.inputEst == 0 && len(a.call.Body) > 0 {
		n, err := a.svc.cfg.Estimator.InputEstimate(ctx, a.call.Body)
		if err != nil {
			n = a.svc.cfg.Estimator.InputBound(a.call.Body)
		}
		a.inputEst = min(max(n, 0), MaxReservableTokens)
	}
	return a.inputEst
}

func (a *Admission) finish(ctx context.Context, out Outcome) domain.UsageRecord {
	s := a.svc
	a.releaseSlot()
	usage, estimated := a.charge(ctx, out)
	rec := a.baseRecord(out)
	rec.Usage, rec.Estimated = usage, estimated
	r := out.Reply
	if a.call.Route.Endpoint.Billing() != BillingAux {
		rec.Iterations, rec.ServerTools = r.Iterations, r.ServerTools
		rec.ServiceTier, rec.Speed, rec.InferenceGeo = r.ServiceTier, r.Speed, r.InferenceGeo
	}
	ep := a.call.Route.Endpoint
	if ep == EndpointBatchCreate && estimated {
		// A batch whose id could not be read is billed its reservations.
		rec.Cost = domain.RecordCost{CostBreakdown: domain.CostBreakdown{Input: a.ReservedCost}, Total: a.ReservedCost}
		rec.ErrorType = domain.ErrorTypeBatchUnreadable
		if s.cfg.Prices != nil {
			rec.Cost.PriceVersion = s.cfg.Prices.Table().Version
		}
	} else {
		s.price(ctx, &rec)
	}
	total := usage.Total()
	created := out.Answered && out.UpstreamStatus >= 200 && out.UpstreamStatus < 300 && r.ObjectID != ""
	if kind, ok := ep.Object(); ok && created && (ep == EndpointBatchCreate || ep == EndpointFileUpload) {
		s.own(ctx, a, kind, r.ObjectID, out.Upstream)
	}
	switch {
	case ep == EndpointBatchCreate && created && a.limited:
		// The reservation stays until the reconciler settles the batch.
	case a.limited:
		s.settle(ctx, a.Key.ID, a.call.RequestID, total)
	case a.Key.TokenLimit != nil && total > 0:
		// Usage on a call that reserved nothing still reaches the ledger.
		s.settle(ctx, a.Key.ID, a.call.RequestID, total)
	}
	switch {
	case ep == EndpointBatchCreate && created && a.costLimited:
		// Held until the reconciler settles the batch.
	case a.costLimited, len(a.Key.Budgets) > 0 && rec.Cost.Total > 0:
		s.settleMoney(ctx, a, rec.Cost.Total)
	}
	if tl, ok := a.Tier.TokenLimit(); ok && total > 0 {
		if err := s.cfg.Rate.Charge(ctx, domain.TokensLimiterKey(a.Key.ID), tl, total); err != nil {
			s.cfg.Observer.BackendFailure(ConcernTokens, true)
			s.cfg.Log.LogAttrs(ctx, slog.LevelWarn, "token budget charge failed",
				slog.String("request_id", a.call.RequestID), slog.String("error", err.Error()))
		}
	}
	s.record(ctx, rec)
	return rec
}

func (a *Admission) baseRecord(out Outcome) domain.UsageRecord {
	c := &a.call
	r := out.Reply
	rec := domain.UsageRecord{
		RequestID: c.RequestID, KeyID: a.Key.ID, Time: c.Start, Model: a.Request.Model,
		Path: c.Route.Path, Endpoint: c.Route.Endpoint.String(), Status: out.Status,
		Stream: out.Stream || a.Request.Stream, TTFB: out.TTFB,
		UpstreamRequestID: out.UpstreamRequestID, Upstream: out.Upstream,
		Attempts: out.Attempts, TriedUpstreams: out.Tried,
		SessionID: c.Session, ClientIP: clientIPString(c.ClientIP), ErrorType: out.ErrorType,
	}
	if !out.End.IsZero() && !c.Start.IsZero() {
		rec.Latency = out.End.Sub(c.Start)
	}
	if r.Model != "" && r.Model != rec.Model {
		rec.RequestedModel, rec.Model = rec.Model, r.Model
	}
	if rec.ErrorType == "" {
		rec.ErrorType = r.ErrorType
	}
	return rec
}

func clientIPString(ip netip.Addr) string {
	if !ip.IsValid() {
		return ""
	}
	return ip.String()
}

// own records that the admitted key created object id on upstream (its id).
func (s *Service) own(ctx context.Context, a *Admission, kind domain.ObjectKind, id, upstream string) {
	if s.cfg.Objects == nil {
		return
	}
	o := domain.OwnedObject{Kind: kind, ID: id, KeyID: a.Key.ID, CreatedAt: s.cfg.Clock.Now(), PollAfter: s.cfg.Clock.Now(),
		Upstream: upstream}
	if kind == domain.ObjectBatch && (a.limited || a.costLimited) {
		o.ReservationID, o.Reserved, o.ReservedCost = a.call.RequestID, a.Reserved, a.ReservedCost
	}
	if err := s.cfg.Objects.PutObject(ctx, o); err != nil {
		// The object stays unowned, so no key can reach it through the
		// relay; a batch's reservation then expires with its lease.
		s.cfg.Log.LogAttrs(ctx, slog.LevelError, "could not record object ownership",
			slog.String("kind", string(kind)), slog.String("id", id), slog.String("key_id", a.Key.ID.String()),
			slog.String("error", err.Error()))
	}
}

func (s *Service) settle(ctx context.Context, key uuid.UUID, id string, total int64) {
	if err := s.cfg.Ledger.Settle(ctx, key, id, total); err != nil {
		s.cfg.Observer.BackendFailure(ConcernQuota, false)
		s.cfg.Log.LogAttrs(ctx, slog.LevelWarn, "quota settle failed; retrying in the background",
			slog.String("request_id", id), slog.String("error", err.Error()))
		s.retrySettle(pendingSettle{key: key, id: id, actual: total})
	}
}

func (s *Service) record(ctx context.Context, rec domain.UsageRecord) {
	if err := s.cfg.Usage.Record(ctx, rec); err != nil {
		s.cfg.Observer.BackendFailure(ConcernUsage, false)
		s.cfg.Log.LogAttrs(ctx, slog.LevelError, "usage record dropped",
			slog.String("request_id", rec.RequestID), slog.String("key_id", rec.KeyID.String()),
			slog.Int64("tokens", rec.Usage.Total()), slog.String("error", err.Error()))
	}
}

// Refusal is a call refused before it went upstream.
type Refusal struct {
	// Key is the presented key when it is known (even disabled or
	// expired); nil when it is not.
	Key       *domain.APIKey
	RequestID string
	Start     time.Time
	Route     Route
	Path      string // the raw path, when the route could not be classified
	Status    int
	ErrorType string
	ClientIP  netip.Addr
	Session   string
	Model     string
}

// Refused builds the usage record of a refused call: zero tokens, its
// status and error type. It is queued when the key is known and the
// refusal is a 4xx, so every refusal of a real key is visible in its logs;
// an unknown key's refusal is only returned (for the log line and metrics).
func (s *Service) Refused(ctx context.Context, r Refusal) domain.UsageRecord {
	rec := domain.UsageRecord{
		RequestID: r.RequestID, Time: r.Start, Model: r.Model, Path: r.Route.Path, Endpoint: r.Route.Endpoint.String(),
		Status: r.Status, ErrorType: r.ErrorType, ClientIP: clientIPString(r.ClientIP), SessionID: r.Session,
	}
	if rec.Path == "" {
		rec.Path = r.Path
	}
	if !r.Start.IsZero() {
		rec.Latency = s.cfg.Clock.Now().Sub(r.Start)
	}
	if r.Key != nil && r.Key.ID != uuid.Nil {
		rec.KeyID = r.Key.ID
		// The relay's own 5xx refusals (a full usage queue, a backend that
		// failed closed) are not the key's doing, and queueing a record
		// when the queue is what is full would only make it worse.
		if r.Status < 500 {
			s.record(context.WithoutCancel(ctx), rec)
		}
	}
	return rec
}
func (s *Service) reject(err error) error {
	s.cfg.Observer.Rejected(domain.ReasonOf(err))
	return err
}

// backendFailed applies policy to a backend error: nil to go on (fail open),
// or the 503 to answer (fail closed). It is the one log line of the failure.
func (s *Service) backendFailed(ctx context.Context, requestID string, c Concern, p FailurePolicy, err error) error {
	open := p == FailOpen
	s.cfg.Observer.BackendFailure(c, open)
	s.cfg.Log.LogAttrs(ctx, slog.LevelWarn, "admission backend failed",
		slog.String("request_id", requestID), slog.String("concern", string(c)), slog.Bool("fail_open", open),
		slog.String("error", err.Error()))
	if open {
		return nil
	}
	return s.reject(&domain.Error{Kind: domain.KindOverloaded, Reason: c.backendReason(), Err: err,
		Message: "the relay cannot check limits right now; retry shortly"})
}

// OwnedAmong returns those of ids (from an upstream listing) that key owns.
func (s *Service) OwnedAmong(ctx context.Context, key domain.APIKey, kind domain.ObjectKind, ids []string) ([]string, error) {
	if s.cfg.Objects == nil || len(ids) == 0 {
		return nil, nil
	}
	mine, err := s.cfg.Objects.OwnedAmong(ctx, kind, key.ID, ids)
	if err != nil {
		return nil, fmt.Errorf("filter %s listing: %w", kind, err)
	}
	return mine, nil
}
