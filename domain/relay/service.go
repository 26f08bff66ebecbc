package relay

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// FailurePolicy says what admission does when a limiter or ledger backend
// (Redis) cannot answer.
type FailurePolicy uint8

const (
	// FailDefault takes the concern's default: closed for the quota, open
	// for rate limits and concurrency.
	FailDefault FailurePolicy = iota
	// FailOpen admits the request without the check.
	FailOpen
	// FailClosed refuses the request with 503 overloaded_error.
	FailClosed
)

// Concern names an admission check whose backend can fail. Bounded, for
// metrics labels.
type Concern string

const (
	ConcernRequests    Concern = "requests"
	ConcernTokens      Concern = "tokens"
	ConcernConcurrency Concern = "concurrency"
	ConcernQuota       Concern = "quota"
	ConcernUsage       Concern = "usage"
)

// Observer is told what admission and settlement do, for metrics. The
// default does nothing.
type Observer interface {
	// Rejected: admission refused a request; reason is the domain error's
	// bounded Reason (or its kind).
	Rejected(reason string)
	// BackendFailure: a backend could not answer; failOpen says whether the
	// request went on without the check.
	BackendFailure(c Concern, failOpen bool)
}

// NopObserver ignores everything.
type NopObserver struct{}

func (NopObserver) Rejected(string)              {}
func (NopObserver) BackendFailure(Concern, bool) {}

// ServiceConfig wires a Service. Auth, Tiers, Rate, Concurrency and Usage
// are required; Ledger is required for keys with a token_limit.
type ServiceConfig struct {
	Auth        *Authenticator
	Tiers       *TierResolver
	Ledger      ports.QuotaLedger
	Rate        ports.RateLimiter
	Concurrency ports.ConcurrencyLimiter
	Usage       ports.UsageRecorder
	Clock       ports.Clock
	Log         *slog.Logger
	Observer    Observer

	// QuotaPolicy applies when the ledger fails (default FailClosed: a
	// quota that cannot be checked could be overspent).
	QuotaPolicy FailurePolicy
	// RatePolicy applies when the rate or concurrency limiter fails
	// (default FailOpen: availability over strictness).
	RatePolicy FailurePolicy
	// DefaultMaxTokens is reserved for output when a request names no
	// max_tokens (default 4096).
	DefaultMaxTokens int64
	// ReservationLease bounds how long a reservation of a crashed replica
	// holds quota (default 15 minutes). ConcurrencyLease likewise for
	// in-flight slots (default 15 minutes).
	ReservationLease time.Duration
	ConcurrencyLease time.Duration
	// FallbackTier is used when a key names a tier the store does not have
	// (default: the first of domain.DefaultTiers).
	FallbackTier *domain.Tier
}

// Service is the ForwardRequest use case's admission control and
// settlement, independent of HTTP.
type Service struct {
	cfg ServiceConfig

	// Settlements the ledger could not take (Redis away) wait here for a
	// single background retrier: Settle is idempotent per reservation id,
	// and without a retry the usage would be missing from the shared ledger.
	retryOnce sync.Once
	retries   chan pendingSettle
}

type pendingSettle struct {
	key    uuid.UUID
	id     string
	actual int64
}

// maxPendingSettles bounds the retry queue (about 2 MB).
const maxPendingSettles = 20_000

func (s *Service) retrySettle(p pendingSettle) {
	s.retryOnce.Do(func() {
		s.retries = make(chan pendingSettle, maxPendingSettles)
		go s.settleRetrier()
	})
	select {
	case s.retries <- p:
	default:
		s.cfg.Log.Error("quota settle retry queue full; the reservation expires with its lease",
			"request_id", p.id, "key_id", p.key.String())
	}
}

// settleRetrier retries queued settlements in order, backing off while the
// ledger keeps failing; each gets about two minutes before it is given up
// (its reservation then expires with its lease).
func (s *Service) settleRetrier() {
	for p := range s.retries {
		wait := 100 * time.Millisecond
		deadline := s.cfg.Clock.Now().Add(2 * time.Minute)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := s.cfg.Ledger.Settle(ctx, p.key, p.id, p.actual)
			cancel()
			if err == nil {
				break
			}
			if s.cfg.Clock.Now().After(deadline) {
				s.cfg.Log.Error("quota settle given up; the reservation expires with its lease",
					"request_id", p.id, "key_id", p.key.String(), "error", err.Error())
				break
			}
			time.Sleep(wait)
			wait = min(2*wait, 5*time.Second)
		}
	}
}

// NewService checks cfg and fills in defaults.
func NewService(cfg ServiceConfig) (*Service, error) {
	if cfg.Auth == nil || cfg.Tiers == nil || cfg.Rate == nil || cfg.Concurrency == nil || cfg.Usage == nil {
		return nil, fmt.Errorf("relay: ServiceConfig needs Auth, Tiers, Rate, Concurrency and Usage")
	}
	if cfg.Clock == nil {
		cfg.Clock = ports.SystemClock{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Observer == nil {
		cfg.Observer = NopObserver{}
	}
	if cfg.QuotaPolicy == FailDefault {
		cfg.QuotaPolicy = FailClosed
	}
	if cfg.RatePolicy == FailDefault {
		cfg.RatePolicy = FailOpen
	}
	if cfg.DefaultMaxTokens <= 0 {
		cfg.DefaultMaxTokens = 4096
	}
	if cfg.ReservationLease <= 0 {
		cfg.ReservationLease = 15 * time.Minute
	}
	if cfg.ConcurrencyLease <= 0 {
		cfg.ConcurrencyLease = 15 * time.Minute
	}
	if cfg.FallbackTier == nil {
		t := domain.DefaultTiers()[0]
		cfg.FallbackTier = &t
	}
	return &Service{cfg: cfg}, nil
}

// MaxReservableTokens bounds max_tokens and the input estimate of one
// request (2^30, beyond any model's context), so reservations never overflow.
const MaxReservableTokens = 1 << 30

// AdmitInput is one proxied request as admission sees it.
type AdmitInput struct {
	// RawKey is the presented proxy key (KeyFromHeaders).
	RawKey string
	// Authenticated, when set, is the key Service.Authenticate returned for
	// this request: Admit then skips steps 1-2 instead of repeating them.
	Authenticated *domain.APIKey
	// ClientIP is the resolved client address.
	ClientIP netip.Addr
	// Origin and Referer are the request's headers, for allowed_domains.
	Origin  string
	Referer string
	// RequestID names the quota reservation; it must be unique.
	RequestID string
	// Aux marks a token-free call (count_tokens, models): it counts against
	// the tier's separate aux budget and reserves and charges no tokens.
	Aux bool
	// Tokenless marks any other call that costs no tokens (message batches,
	// files, ...): the request budget applies, but no token budget and no
	// quota reservation.
	Tokenless bool
	// MaxTokens is the body's max_tokens (0 = absent: DefaultMaxTokens).
	MaxTokens int64
	// EstimateInput returns the request's input-token estimate. It is called
	// only when a reservation is made, since tokenising costs.
	EstimateInput func() int64
}

// Validate checks the input's own fields.
func (in AdmitInput) Validate() error {
	if in.RequestID == "" {
		return domain.Invalidf("admission needs a request id")
	}
	if in.MaxTokens < 0 {
		return domain.Invalidf("max_tokens must not be negative")
	}
	return nil
}

// Admission is an admitted request. Settle must be called exactly once
// when the response has ended (more calls are no-ops).
type Admission struct {
	Key  domain.APIKey
	Tier domain.Tier
	// Rate is the request-budget decision, for the x-ratelimit-*-requests
	// headers.
	Rate domain.RateDecision
	// RateChecked is false when the limiter failed open and Rate is empty.
	RateChecked bool
	// Reserved is the quota reservation, 0 if none was made.
	Reserved int64
	// Estimate is the token estimate, 0 if none was needed.
	Estimate int64

	svc       *Service
	requestID string
	aux       bool
	limited   bool // the key has a token_limit: settle in the ledger
	release   func()
	once      sync.Once
}

// Admit runs admission control for one proxied request. The steps run in
// this fixed order, and the first refusal ends admission; any step that took
// a resource (a concurrency slot, a reservation) gives it back when a later
// step refuses:
//
//  1. Authenticate the key (x-api-key or Authorization: Bearer): unknown,
//     disabled, deleted or expired keys get 401 authentication_error.
//  2. IP allow-list (inside Authenticate): 403 permission_error.
//  3. Origin allow-list: the key's allowed_domains against the Origin (or
//     Referer) host; exact or *.suffix on a label boundary, case-insensitive,
//     port ignored; an empty list allows any origin; 403 permission_error.
//  4. Usage-writer saturation: when usage records cannot be queued, 503
//     overloaded_error rather than serve traffic that cannot be accounted.
//  5. Request rate: the tier's requests per period (count_tokens and models
//     use the separate aux budget instead); 429 rate_limit_error with
//     retry-after.
//  6. Tokens per period, when the tier sets one (token-costing calls only):
//     429 while the budget is in debt.
//  7. Concurrency, when the tier sets max_concurrency: 429.
//  8. Quota reservation, when the key has a token_limit (token-costing calls
//     only): the input estimate plus max_tokens (or the default) is reserved
//     atomically; 429 rate_limit_error saying what remains.
//
// Backend failures in steps 5-8 follow the configured FailurePolicy.
func (s *Service) Admit(ctx context.Context, in AdmitInput) (*Admission, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	// 1-2, unless the caller already ran them with Authenticate.
	var key domain.APIKey
	if in.Authenticated != nil {
		key = *in.Authenticated
	} else {
		k, err := s.cfg.Auth.Authenticate(ctx, in.RawKey, in.ClientIP)
		if err != nil {
			return nil, s.reject(err)
		}
		key = k
	}
	// 3.
	if !OriginAllowed(key.AllowedDomains, in.Origin, in.Referer) {
		return nil, s.reject(&domain.Error{Kind: domain.KindForbidden, Reason: string(AuthOrigin),
			Message: "this API key may not be used from this origin"})
	}
	// 4.
	if s.cfg.Usage.Saturated() {
		return nil, s.reject(&domain.Error{Kind: domain.KindOverloaded, Reason: "usage_queue",
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
	a := &Admission{Key: key, Tier: tier, svc: s, requestID: in.RequestID, aux: in.Aux}
	// 5.
	rkey, rlimit := domain.RequestsLimiterKey(key.ID), tier.RequestLimit()
	if in.Aux {
		rkey, rlimit = domain.AuxLimiterKey(key.ID), tier.AuxLimit()
	}
	d, err := s.cfg.Rate.Allow(ctx, rkey, rlimit, 1)
	switch {
	case err != nil:
		if err := s.backendFailed(ctx, ConcernRequests, s.cfg.RatePolicy, err); err != nil {
			return nil, err
		}
	case !d.Allowed:
		return nil, s.reject(&domain.Error{Kind: domain.KindRateLimited, Reason: "requests", RetryAfter: d.RetryAfter,
			Message: fmt.Sprintf("rate limit exceeded: %d requests per %s", rlimit.Count, rlimit.Period)})
	default:
		a.Rate, a.RateChecked = d, true
	}
	// 6.
	if tl, ok := tier.TokenLimit(); ok && !in.Aux && !in.Tokenless {
		d, err := s.cfg.Rate.Peek(ctx, domain.TokensLimiterKey(key.ID), tl)
		switch {
		case err != nil:
			if err := s.backendFailed(ctx, ConcernTokens, s.cfg.RatePolicy, err); err != nil {
				return nil, err
			}
		case !d.Allowed:
			return nil, s.reject(&domain.Error{Kind: domain.KindRateLimited, Reason: "tokens", RetryAfter: d.RetryAfter,
				Message: fmt.Sprintf("token rate limit exceeded: %d tokens per %s", tl.Count, tl.Period)})
		}
	}
	// 7.
	if tier.MaxConcurrency != nil {
		rel, ok, err := s.cfg.Concurrency.Acquire(ctx, domain.ConcurrencyKey(key.ID), *tier.MaxConcurrency, s.cfg.ConcurrencyLease)
		switch {
		case err != nil:
			if err := s.backendFailed(ctx, ConcernConcurrency, s.cfg.RatePolicy, err); err != nil {
				return nil, err
			}
		case !ok:
			return nil, s.reject(&domain.Error{Kind: domain.KindRateLimited, Reason: "concurrency", RetryAfter: time.Second,
				Message: fmt.Sprintf("too many concurrent requests for this API key (at most %d)", *tier.MaxConcurrency)})
		default:
			a.release = rel
		}
	}
	// 8.
	if key.TokenLimit != nil && !in.Aux && !in.Tokenless {
		if s.cfg.Ledger == nil {
			a.releaseSlot()
			return nil, fmt.Errorf("relay: key %s has a token limit but no quota ledger is configured", key.ID)
		}
		maxTok := in.MaxTokens
		if maxTok <= 0 {
			maxTok = s.cfg.DefaultMaxTokens
		}
		if maxTok > MaxReservableTokens {
			// Far above any model's output limit; bounding it also keeps the
			// ledger's arithmetic from overflowing.
			a.releaseSlot()
			return nil, s.reject(&domain.Error{Kind: domain.KindInvalid, Reason: "invalid",
				Message: fmt.Sprintf("max_tokens must be at most %d", MaxReservableTokens)})
		}
		a.limited = true
		est := maxTok
		if in.EstimateInput != nil {
			est += min(max(in.EstimateInput(), 0), MaxReservableTokens)
		}
		a.Estimate = est
		_, err := s.cfg.Ledger.Reserve(ctx, key.ID, in.RequestID, est, *key.TokenLimit, key.TokensUsed, s.cfg.ReservationLease)
		switch {
		case err == nil:
			a.Reserved = est
		case domain.KindOf(err) == domain.KindInvalid:
			a.releaseSlot()
			return nil, s.reject(err)
		case domain.KindOf(err) == domain.KindQuotaExceeded:
			a.releaseSlot()
			de := *domain.AsError(err)
			if de.Reason == "" {
				de.Reason = "quota"
			}
			if de.Message == "" {
				de.Message = "token quota exhausted"
			}
			return nil, s.reject(&de)
		default:
			if err := s.backendFailed(ctx, ConcernQuota, s.cfg.QuotaPolicy, err); err != nil {
				a.releaseSlot()
				return nil, err
			}
		}
	}
	return a, nil
}

// Authenticate runs admission's first two steps alone (the key and its IP
// allow-list), so that the proxy can refuse a bad key before it reads, and
// buffers, a request body of up to 32 MB. Pass the key to Admit as
// AdmitInput.Authenticated so they are not repeated.
func (s *Service) Authenticate(ctx context.Context, raw string, client netip.Addr) (domain.APIKey, error) {
	k, err := s.cfg.Auth.Authenticate(ctx, raw, client)
	if err != nil {
		return domain.APIKey{}, s.reject(err)
	}
	return k, nil
}

func (s *Service) reject(err error) error {
	reason := domain.KindOf(err).String()
	if de := domain.AsError(err); de != nil && de.Reason != "" {
		reason = de.Reason
	}
	s.cfg.Observer.Rejected(reason)
	return err
}

// backendFailed applies policy to a backend error: nil to go on (fail open),
// or the 503 to answer (fail closed).
func (s *Service) backendFailed(ctx context.Context, c Concern, p FailurePolicy, err error) error {
	open := p == FailOpen
	s.cfg.Observer.BackendFailure(c, open)
	s.cfg.Log.LogAttrs(ctx, slog.LevelWarn, "admission backend failed",
		slog.String("concern", string(c)), slog.Bool("fail_open", open), slog.String("error", err.Error()))
	if open {
		return nil
	}
	return s.reject(&domain.Error{Kind: domain.KindOverloaded, Reason: string(c) + "_backend", Err: err,
		Message: "the relay cannot check limits right now; retry shortly"})
}

func (a *Admission) releaseSlot() {
	if a.release != nil {
		a.release()
		a.release = nil
	}
}

// SettleInput is the outcome of an admitted request.
type SettleInput struct {
	// Record is the usage record; Settle fills in KeyID. Its Usage is what
	// the key is charged (zero for an upstream error before any output).
	Record domain.UsageRecord
}

// Settle ends the admission exactly once, whatever path gets here first
// (the body's Close, an error handler, a recovered panic): it settles the
// quota reservation with the actual total (zero releases it), frees the
// concurrency slot, charges the tokens-per-period budget, and queues the
// usage record. It never blocks on storage and runs on a context that
// ignores the client's cancellation.
func (a *Admission) Settle(ctx context.Context, in SettleInput) {
	if a == nil {
		return
	}
	a.once.Do(func() { a.settle(context.WithoutCancel(ctx), in) })
}

func (a *Admission) settle(ctx context.Context, in SettleInput) {
	s := a.svc
	a.releaseSlot()
	rec := in.Record
	rec.KeyID = a.Key.ID
	if rec.RequestID == "" {
		rec.RequestID = a.requestID
	}
	var total int64
	if !a.aux {
		total = rec.Usage.Total()
	} else {
		rec.Usage = domain.Usage{}
	}
	if a.limited {
		if err := s.cfg.Ledger.Settle(ctx, a.Key.ID, a.requestID, total); err != nil {
			s.cfg.Observer.BackendFailure(ConcernQuota, false)
			s.cfg.Log.LogAttrs(ctx, slog.LevelWarn, "quota settle failed; retrying in the background",
				slog.String("request_id", a.requestID), slog.String("key_id", a.Key.ID.String()), slog.String("error", err.Error()))
			s.retrySettle(pendingSettle{key: a.Key.ID, id: a.requestID, actual: total})
		}
	}
	if tl, ok := a.Tier.TokenLimit(); ok && total > 0 {
		if err := s.cfg.Rate.Charge(ctx, domain.TokensLimiterKey(a.Key.ID), tl, total); err != nil {
			s.cfg.Observer.BackendFailure(ConcernTokens, true)
			s.cfg.Log.LogAttrs(ctx, slog.LevelWarn, "token budget charge failed",
				slog.String("request_id", a.requestID), slog.String("error", err.Error()))
		}
	}
	if err := s.cfg.Usage.Record(ctx, rec); err != nil {
		s.cfg.Observer.BackendFailure(ConcernUsage, false)
		s.cfg.Log.LogAttrs(ctx, slog.LevelError, "usage record dropped",
			slog.String("request_id", rec.RequestID), slog.String("key_id", a.Key.ID.String()),
			slog.Int64("tokens", total), slog.String("error", err.Error()))
	}
}

// OriginAllowed reports whether a request with these Origin and Referer
// headers may use a key with allowed domains patterns. An empty list allows
// everything. Otherwise the Origin's host (or, without an Origin, the
// Referer's) must equal a pattern or, for "*.example.com", be a subdomain of
// example.com; case and port are ignored. A request with neither header is
// refused: a key restricted to some sites cannot prove where it is used
// from otherwise.
func OriginAllowed(patterns []string, origin, referer string) bool {
	if len(patterns) == 0 {
		return true
	}
	src := origin
	if src == "" || src == "null" {
		src = referer
	}
	host := originHost(src)
	if host == "" {
		return false
	}
	for _, p := range patterns {
		if matchDomain(strings.ToLower(p), host) {
			return true
		}
	}
	return false
}

// originHost extracts the lower-cased host, without port, from an Origin or
// Referer value (scheme://host[:port][/path]).
func originHost(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.Index(v, "://"); i >= 0 {
		v = v[i+3:]
	} else {
		return ""
	}
	if i := strings.IndexAny(v, "/?#"); i >= 0 {
		v = v[:i]
	}
	if i := strings.LastIndexByte(v, '@'); i >= 0 {
		v = v[i+1:]
	}
	if strings.HasPrefix(v, "[") { // IPv6 literal
		if i := strings.IndexByte(v, ']'); i >= 0 {
			return strings.ToLower(v[1:i])
		}
		return ""
	}
	if i := strings.LastIndexByte(v, ':'); i >= 0 {
		v = v[:i]
	}
	return strings.TrimSuffix(strings.ToLower(v), ".")
}

func matchDomain(pattern, host string) bool {
	if suffix, ok := strings.CutPrefix(pattern, "*."); ok {
		return len(host) > len(suffix)+1 && strings.HasSuffix(host, suffix) && host[len(host)-len(suffix)-1] == '.'
	}
	return host == pattern
}
