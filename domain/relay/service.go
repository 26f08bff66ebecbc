package relay

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/billing"
	"github.com/relaystation/relay/ports"
)

// FailurePolicy says what admission does when a limiter or ledger backend
// (Redis) cannot answer. Its text form is "fail_open" or "fail_closed".
type FailurePolicy uint8

const (
	// FailDefault takes the concern's default: DefaultQuotaPolicy for the
	// quota, DefaultRatePolicy for rate limits and concurrency.
	FailDefault FailurePolicy = iota
	// FailOpen admits the request without the check.
	FailOpen
	// FailClosed refuses the request with 503 overloaded_error.
	FailClosed
)

// The defaults of a Service: the relay's configuration defaults are these.
const (
	// DefaultQuotaPolicy: a quota that cannot be checked could be overspent.
	DefaultQuotaPolicy = FailClosed
	// DefaultRatePolicy: availability over strictness.
	DefaultRatePolicy = FailOpen
	// DefaultLease bounds how long a crashed replica's reservations and
	// concurrency slots hold: longer than a 64k-token stream takes.
	DefaultLease = 30 * time.Minute
	// DefaultBatchPoll is how often an unfinished batch is polled.
	DefaultBatchPoll = time.Minute
	// DefaultBatchLease is how long a batch's reservation holds if it is
	// never settled: batches end within 24 hours.
	DefaultBatchLease = 30 * time.Hour
	// DefaultTierTTL is how stale a TierResolver's snapshot may be: a tier
	// changed through the admin API applies within it, on every replica.
	DefaultTierTTL = 2 * time.Second
)

func (p FailurePolicy) String() string {
	switch p {
	case FailOpen:
		return "fail_open"
	case FailClosed:
		return "fail_closed"
	}
	return "default"
}

// MarshalText writes the policy as fail_open or fail_closed.
func (p FailurePolicy) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads fail_open or fail_closed.
func (p *FailurePolicy) UnmarshalText(b []byte) error {
	switch string(b) {
	case "fail_open":
		*p = FailOpen
	case "fail_closed":
		*p = FailClosed
	default:
		return fmt.Errorf("%q is not fail_open or fail_closed", b)
	}
	return nil
}

// Concern names an admission check whose backend can fail. Bounded, for
// metrics labels.
type Concern string

const (
	ConcernRequests    Concern = "requests"
	ConcernTokens      Concern = "tokens"
	ConcernConcurrency Concern = "concurrency"
	ConcernQuota       Concern = "quota"
	ConcernBudget      Concern = "budget"
	ConcernUsage       Concern = "usage"
)

// backendReason is the reason of a refusal because c's backend failed closed.
func (c Concern) backendReason() domain.Reason {
	switch c {
	case ConcernRequests:
		return domain.ReasonRequestsBackend
	case ConcernTokens:
		return domain.ReasonTokensBackend
	case ConcernConcurrency:
		return domain.ReasonConcurrencyBackend
	case ConcernQuota:
		return domain.ReasonQuotaBackend
	case ConcernBudget:
		return domain.ReasonBudgetBackend
	}
	return domain.ReasonNone
}

// Observer is told what admission and settlement do, for metrics. The
// default does nothing.
type Observer interface {
	// Rejected: admission refused a request; reason is the domain error's
	// Reason (ReasonNone for an error without one, such as an internal one).
	Rejected(reason domain.Reason)
	// BackendFailure: a backend could not answer; failOpen says whether the
	// request went on without the check.
	BackendFailure(c Concern, failOpen bool)
}

// NopObserver ignores everything.
type NopObserver struct{}

func (NopObserver) Rejected(domain.Reason)       {}
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

	// QuotaPolicy applies when the ledger fails (default
	// DefaultQuotaPolicy).
	QuotaPolicy FailurePolicy
	// RatePolicy applies when the rate or concurrency limiter fails
	// (default DefaultRatePolicy).
	RatePolicy FailurePolicy
	// DefaultMaxTokens is reserved for output when a request names no
	// max_tokens (default DefaultMaxTokens).
	DefaultMaxTokens int64
	// ReservationLease bounds how long a reservation of a crashed replica
	// holds quota (default DefaultLease). ConcurrencyLease likewise for
	// in-flight slots (default DefaultLease).
	ReservationLease time.Duration
	ConcurrencyLease time.Duration
	// FallbackTier is used when a key names a tier the store does not have
	// (default: the first of domain.DefaultTiers).
	FallbackTier *domain.Tier

	// Parser reads the money-deciding fields of request bodies strictly,
	// and Estimator bounds their input tokens. Both are required.
	Parser    ports.RequestParser
	Estimator ports.TokenEstimator
	// Objects records who owns batches and files; required for the batch
	// and file endpoints (without it they are refused).
	Objects ports.ObjectStore
	// BatchLease is how long a batch's reservation holds quota before the
	// ledger lets it go if the reconciler never settles it (default
	// DefaultBatchLease).
	BatchLease time.Duration
	// Batches reads batch results upstream, and Store takes their usage
	// records directly (synchronously, idempotent per request id); both
	// are required for the batch reconciler.
	Batches ports.BatchUpstream
	Store   ports.UsageStore
	// BatchPoll is how often an unfinished batch is polled (default
	// DefaultBatchPoll).
	BatchPoll time.Duration

	// Prices prices every usage record; without it records carry no cost
	// and keys with money budgets are refused. Budgets is the money-budget
	// ledger, required for keys with budgets (its backend failures follow
	// QuotaPolicy).
	Prices  *billing.Prices
	Budgets *billing.Budgets
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
	// money: a budget settlement of cost at time at, not a token one.
	money bool
	cost  domain.Nanodollars
	at    time.Time
}

func (s *Service) settleOnce(ctx context.Context, p pendingSettle) error {
	if p.money {
		return s.cfg.Budgets.Settle(ctx, p.key, p.id, p.cost, p.at)
	}
	return s.cfg.Ledger.Settle(ctx, p.key, p.id, p.actual)
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
			err := s.settleOnce(ctx, p)
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
	if cfg.Auth == nil || cfg.Tiers == nil || cfg.Rate == nil || cfg.Concurrency == nil || cfg.Usage == nil ||
		cfg.Parser == nil || cfg.Estimator == nil {
		return nil, fmt.Errorf("relay: ServiceConfig needs Auth, Tiers, Rate, Concurrency, Usage, Parser and Estimator")
	}
	if cfg.BatchPoll <= 0 {
		cfg.BatchPoll = DefaultBatchPoll
	}
	if cfg.BatchLease <= 0 {
		cfg.BatchLease = DefaultBatchLease
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
		cfg.QuotaPolicy = DefaultQuotaPolicy
	}
	if cfg.RatePolicy == FailDefault {
		cfg.RatePolicy = DefaultRatePolicy
	}
	if cfg.DefaultMaxTokens <= 0 {
		cfg.DefaultMaxTokens = DefaultMaxTokens
	}
	if cfg.ReservationLease <= 0 {
		cfg.ReservationLease = DefaultLease
	}
	if cfg.ConcurrencyLease <= 0 {
		cfg.ConcurrencyLease = DefaultLease
	}
	if cfg.FallbackTier == nil {
		t := domain.DefaultTiers()[0]
		cfg.FallbackTier = &t
	}
	return &Service{cfg: cfg}, nil
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
