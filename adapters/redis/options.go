package redis

import (
	"log/slog"
	"time"

	"github.com/relaystation/relay/domain"
)

// Option configures a Ledger, RateLimiter or ConcurrencyLimiter. Options
// that do not apply to a type are ignored by its constructor.
type Option func(*options)

type options struct {
	prefix          string
	log             *slog.Logger
	settleRetention time.Duration
	idleTTL         time.Duration
	releaseTimeout  time.Duration
}

// Defaults.
const (
	DefaultPrefix         = "relay:"
	DefaultIdleTTL        = 24 * time.Hour
	DefaultReleaseTimeout = 2 * time.Second
)

func buildOptions(opts []Option) options {
	o := options{
		prefix:          DefaultPrefix,
		log:             slog.New(slog.DiscardHandler),
		settleRetention: domain.DefaultSettleRetention,
		idleTTL:         DefaultIdleTTL,
		releaseTimeout:  DefaultReleaseTimeout,
	}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithPrefix puts every key under prefix (default "relay:").
func WithPrefix(prefix string) Option {
	return func(o *options) { o.prefix = prefix }
}

// WithLogger sets the logger for failures nobody else sees: a concurrency
// slot release that could not reach Redis.
func WithLogger(log *slog.Logger) Option {
	return func(o *options) {
		if log != nil {
			o.log = log
		}
	}
}

// WithSettleRetention sets how long the ledger remembers a settled
// reservation id, so a repeated Settle is a no-op (default
// domain.DefaultSettleRetention).
func WithSettleRetention(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.settleRetention = d
		}
	}
}

// WithIdleTTL sets how long a key's ledger survives without any activity;
// zero keeps it forever. It must be well above the usage writer's worst
// delay, because an expired ledger is re-seeded from storage.
func WithIdleTTL(d time.Duration) Option {
	return func(o *options) {
		if d >= 0 {
			o.idleTTL = d
		}
	}
}

// WithReleaseTimeout bounds the Redis call a concurrency slot's release
// func makes; a release that fails is logged and its lease frees the slot.
func WithReleaseTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.releaseTimeout = d
		}
	}
}
