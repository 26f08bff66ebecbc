package memory

import (
	"time"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// Option configures a Ledger, RateLimiter or ConcurrencyLimiter. Options that
// do not apply to a type are ignored by its constructor.
type Option func(*options)

type options struct {
	clock           ports.Clock
	sweepInterval   time.Duration
	settleRetention time.Duration
}

func buildOptions(opts []Option) options {
	o := options{clock: ports.SystemClock{}, settleRetention: domain.DefaultSettleRetention}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithClock substitutes the clock, for tests.
func WithClock(c ports.Clock) Option {
	return func(o *options) {
		if c != nil {
			o.clock = c
		}
	}
}

// WithSweepInterval starts a background sweeper that drops expired
// reservations (Ledger), idle buckets (RateLimiter) and expired slots
// (ConcurrencyLimiter) of keys nobody touches any more. Without it, expired
// state is still dropped on the next touch of its key; the sweeper only bounds
// memory and keeps State readers exact for idle keys. Stop it with Close.
func WithSweepInterval(d time.Duration) Option {
	return func(o *options) { o.sweepInterval = d }
}

// WithSettleRetention sets how long settled reservation ids are remembered
// for idempotency (default domain.DefaultSettleRetention). A Settle repeated
// after this is counted again.
func WithSettleRetention(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.settleRetention = d
		}
	}
}
