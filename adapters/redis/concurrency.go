package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// ConcurrencyLimiter is a ports.ConcurrencyLimiter on Redis: one sorted set
// of holders per key, scored by lease expiry.
type ConcurrencyLimiter struct {
	rdb            goredis.UniversalClient
	prefix         string
	log            *slog.Logger
	releaseTimeout time.Duration
	instance       string // makes holder ids unique across replicas
	next           atomic.Uint64
}

var _ ports.ConcurrencyLimiter = (*ConcurrencyLimiter)(nil)

// NewConcurrencyLimiter returns a limiter on rdb. Options: WithPrefix,
// WithLogger, WithReleaseTimeout.
func NewConcurrencyLimiter(rdb goredis.UniversalClient, opts ...Option) *ConcurrencyLimiter {
	o := buildOptions(opts)
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &ConcurrencyLimiter{rdb: rdb, prefix: o.prefix + "conc:", log: o.log,
		releaseTimeout: o.releaseTimeout, instance: hex.EncodeToString(b[:]) + ":"}
}

// acquireScript: KEYS holders; ARGV max, lease_ms, holder. Returns 1 when
// the slot is taken, 0 when the key is full. The set expires with its
// longest lease, so an abandoned key cleans itself up.
var acquireScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
local lease = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + lease, ARGV[3])
if redis.call('PTTL', KEYS[1]) < lease then
  redis.call('PEXPIRE', KEYS[1], lease)
end
return 1
`)

// inFlightScript: KEYS holders. Counts holders whose lease has not passed.
var inFlightScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
`)

// Acquire implements ports.ConcurrencyLimiter. The release func removes the
// holder with its own short deadline, detached from ctx, because it runs
// when the request is over; a failed release is logged and its lease frees
// the slot.
func (c *ConcurrencyLimiter) Acquire(ctx context.Context, key string, maxSlots int, lease time.Duration) (func(), bool, error) {
	if maxSlots < 1 || lease <= 0 {
		return nil, false, domain.Invalidf("concurrency limit needs a positive max and lease")
	}
	k := c.prefix + key
	holder := c.instance + strconv.FormatUint(c.next.Add(1), 36)
	ok, err := acquireScript.Run(ctx, c.rdb, []string{k}, maxSlots, max(ceilMS(lease), 1), holder).Int()
	if err != nil {
		return nil, false, fmt.Errorf("redis concurrency acquire: %w", err)
	}
	if ok != 1 {
		return nil, false, nil
	}
	var released atomic.Bool
	return func() {
		if released.Swap(true) {
			return
		}
		release := func() error {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.releaseTimeout)
			defer cancel()
			return c.rdb.ZRem(rctx, k, holder).Err()
		}
		if err := release(); err != nil {
			// A blip must not hold the slot for its whole lease: retry in the
			// background for about a minute (ZREM is idempotent).
			go func() {
				for attempt, wait := 1, 250*time.Millisecond; attempt <= 8; attempt, wait = attempt+1, min(2*wait, 15*time.Second) {
					time.Sleep(wait)
					if err = release(); err == nil {
						return
					}
				}
				c.log.Warn("redis concurrency release failed; the slot frees when its lease ends",
					"key", key, "lease", lease, "err", err)
			}()
		}
	}, true, nil
}

// InFlight implements ports.ConcurrencyLimiter.
func (c *ConcurrencyLimiter) InFlight(ctx context.Context, key string) (int, error) {
	n, err := inFlightScript.Run(ctx, c.rdb, []string{c.prefix + key}).Int()
	if err != nil {
		return 0, fmt.Errorf("redis concurrency in-flight: %w", err)
	}
	return n, nil
}
