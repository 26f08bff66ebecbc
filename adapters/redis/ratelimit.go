package redis

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// RateLimiter is a GCRA ports.RateLimiter on Redis.
type RateLimiter struct {
	rdb    goredis.UniversalClient
	prefix string
}

var _ ports.RateLimiter = (*RateLimiter)(nil)

// NewRateLimiter returns a limiter on rdb. Options: WithPrefix.
func NewRateLimiter(rdb goredis.UniversalClient, opts ...Option) *RateLimiter {
	o := buildOptions(opts)
	return &RateLimiter{rdb: rdb, prefix: o.prefix + "rate:"}
}

// gcraScript: KEYS tat; ARGV count, period_us, cost, mode ("a" allow, "p"
// peek, "c" charge). Times are integer microseconds, exact in a Lua double.
// Returns {allowed, remaining, reset_after_us, retry_after_us}.
//
// The cost of n units is rounded down to whole microseconds, so a burst of
// exactly count always fits; the error is under a microsecond per request.
var gcraScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local count = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local mode = ARGV[4]
local interval = period / count
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)

local function cost(k)
  if k <= 0 then
    return 0
  end
  local c = math.floor(k * interval)
  if c < 1 then
    c = 1
  end
  return c
end

local function remaining(at)
  if at <= now then
    return count
  end
  local free = period - (at - now)
  if free <= 0 then
    return 0
  end
  local r = math.floor(free / interval)
  if r > count then
    r = count
  end
  return r
end

local function store(newtat)
  local ms = math.ceil((newtat - now) / 1000)
  if ms > 0 then
    redis.call('SET', KEYS[1], string.format('%.0f', newtat), 'PX', ms)
  end
end

local base = math.max(tat, now)
if mode == 'c' then
  if n > 0 then
    store(base + cost(n))
  end
  return {1, 0, 0, 0}
end
local newtat = base + cost(n)
local allow_at = newtat - period
if mode == 'a' and allow_at <= now then
  store(newtat)
  return {1, remaining(newtat), newtat - now, 0}
end
local retry = allow_at - now
if retry < 0 then
  retry = 0
end
local reset = base - now
if mode == 'a' and n > count then
  retry = math.max(reset, period)
end
return {retry == 0 and 1 or 0, remaining(base), reset, retry}
`)

func (r *RateLimiter) run(ctx context.Context, key string, limit domain.Limit, cost int64, mode string) (domain.RateDecision, error) {
	if limit.Count < 1 || limit.Period <= 0 {
		return domain.RateDecision{}, domain.Invalidf("rate limit needs a positive count and period")
	}
	if cost < 0 {
		return domain.RateDecision{}, domain.Invalidf("rate limit cost must not be negative")
	}
	res, err := gcraScript.Run(ctx, r.rdb, []string{r.prefix + key},
		limit.Count, limit.Period.Microseconds(), cost, mode).Int64Slice()
	if err != nil {
		return domain.RateDecision{}, fmt.Errorf("redis rate limit: %w", err)
	}
	if len(res) != 4 {
		return domain.RateDecision{}, fmt.Errorf("redis rate limit: unexpected reply %v", res)
	}
	return domain.RateDecision{
		Allowed:    res[0] == 1,
		Limit:      limit.Count,
		Remaining:  res[1],
		ResetAfter: time.Duration(res[2]) * time.Microsecond,
		RetryAfter: time.Duration(res[3]) * time.Microsecond,
	}, nil
}

// Allow implements ports.RateLimiter. A cost above limit.Count can never be
// allowed; its RetryAfter is when the budget is next full.
func (r *RateLimiter) Allow(ctx context.Context, key string, limit domain.Limit, cost int64) (domain.RateDecision, error) {
	return r.run(ctx, key, limit, cost, "a")
}

// Peek implements ports.RateLimiter. It writes nothing.
func (r *RateLimiter) Peek(ctx context.Context, key string, limit domain.Limit) (domain.RateDecision, error) {
	return r.run(ctx, key, limit, 1, "p")
}

// Charge implements ports.RateLimiter.
func (r *RateLimiter) Charge(ctx context.Context, key string, limit domain.Limit, cost int64) error {
	if cost == 0 {
		return nil
	}
	_, err := r.run(ctx, key, limit, cost, "c")
	return err
}
