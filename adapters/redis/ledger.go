package redis

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// Ledger is a ports.QuotaLedger on Redis, shared by every replica that uses
// the same prefix.
type Ledger struct {
	rdb       goredis.UniversalClient
	prefix    string
	retention int64 // ms
	idle      int64 // ms, 0 = never expire
}

var _ ports.QuotaLedger = (*Ledger)(nil)

// NewLedger returns a ledger on rdb. Options: WithPrefix, WithSettleRetention,
// WithIdleTTL.
func NewLedger(rdb goredis.UniversalClient, opts ...Option) *Ledger {
	o := buildOptions(opts)
	return &Ledger{rdb: rdb, prefix: o.prefix, retention: ceilMS(o.settleRetention), idle: ceilMS(o.idleTTL)}
}

func ceilMS(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

func (l *Ledger) keys(keyID uuid.UUID) []string {
	base := l.prefix + "quota:{" + keyID.String() + "}:"
	return []string{base + "used", base + "res", base + "exp", base + "done"}
}

// luaLedgerPrelude is shared by the scripts that seed and prune: it reads the
// server time, seeds used, drops expired reservations and forgotten
// settlements, and sums what is still reserved.
const luaLedgerPrelude = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('SET', KEYS[1], ARGV[1], 'NX')
local used = tonumber(redis.call('GET', KEYS[1]))
if tonumber(ARGV[1]) > used then
  -- persisted usage the ledger did not settle: never undercount it
  used = tonumber(ARGV[1])
  redis.call('SET', KEYS[1], ARGV[1])
end
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for i = 1, #expired do
  redis.call('HDEL', KEYS[2], expired[i])
end
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
local reserved = 0
local vals = redis.call('HVALS', KEYS[2])
for i = 1, #vals do
  reserved = reserved + tonumber(vals[i])
end
local function touch(ttl)
  if ttl > 0 then
    for i = 1, 4 do
      redis.call('PEXPIRE', KEYS[i], ttl)
    end
  end
end
`

// reserveScript: KEYS used, res, exp, done; ARGV seed, idle_ms, id,
// estimate, limit, lease_ms. Returns {status, used, reserved}: status 1
// reserved, 0 refused, 2 the id is already held or settled (no change).
var reserveScript = goredis.NewScript(luaLedgerPrelude + `
local id = ARGV[3]
local est = tonumber(ARGV[4])
local lease = tonumber(ARGV[6])
local status = 1
if redis.call('HEXISTS', KEYS[2], id) == 1 or redis.call('ZSCORE', KEYS[4], id) then
  status = 2
elseif used + reserved + est > tonumber(ARGV[5]) then
  status = 0
else
  redis.call('HSET', KEYS[2], id, est)
  redis.call('ZADD', KEYS[3], now + lease, id)
  reserved = reserved + est
end
local idle = tonumber(ARGV[2])
if idle > 0 and idle < lease then
  idle = lease
end
touch(idle)
return {status, used, reserved}
`)

// stateScript: KEYS as above; ARGV seed, idle_ms. Returns {used, reserved}.
var stateScript = goredis.NewScript(luaLedgerPrelude + `
touch(tonumber(ARGV[2]))
return {used, reserved}
`)

// settleScript: KEYS as above; ARGV id, actual, retention_ms, idle_ms.
// Returns 1 settled, 0 already settled, 2 the key has no ledger (left to
// the seed). A key without a ledger is not created: an unseeded counter
// would shadow the persisted tokens_used forever.
var settleScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id = ARGV[1]
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
if redis.call('ZSCORE', KEYS[4], id) then
  return 0
end
redis.call('HDEL', KEYS[2], id)
redis.call('ZREM', KEYS[3], id)
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 2
end
redis.call('INCRBY', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[4], now + tonumber(ARGV[3]), id)
local idle = tonumber(ARGV[4])
if idle > 0 then
  for i = 1, 4 do
    redis.call('PEXPIRE', KEYS[i], idle)
  end
end
return 1
`)

// extendScript: KEYS as above; ARGV id, lease_ms. Moves a held
// reservation's expiry to now+lease (never earlier) and keeps the keys
// alive at least as long. Returns 1 extended, 0 not held.
var extendScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id = ARGV[1]
if redis.call('HEXISTS', KEYS[2], id) == 0 then
  return 0
end
local exp = now + tonumber(ARGV[2])
local cur = tonumber(redis.call('ZSCORE', KEYS[3], id) or 0)
if exp > cur then
  redis.call('ZADD', KEYS[3], exp, id)
end
for i = 1, 4 do
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl >= 0 and ttl < tonumber(ARGV[2]) then
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
  end
end
return 1
`)

// Extend implements ports.QuotaLedger.
func (l *Ledger) Extend(ctx context.Context, keyID uuid.UUID, id string, lease time.Duration) error {
	if err := extendScript.Run(ctx, l.rdb, l.keys(keyID), id, max(ceilMS(lease), 1)).Err(); err != nil {
		return fmt.Errorf("redis quota extend: %w", err)
	}
	return nil
}

// Reserve implements ports.QuotaLedger. Reserving an id that is already held
// or already settled changes nothing and succeeds, so a retried Reserve is
// safe.
func (l *Ledger) Reserve(ctx context.Context, keyID uuid.UUID, id string, estimate, limit, seedUsed int64, lease time.Duration) (domain.QuotaState, error) {
	if estimate < 0 {
		return domain.QuotaState{}, domain.Invalidf("quota reservation must not be negative")
	}
	res, err := reserveScript.Run(ctx, l.rdb, l.keys(keyID),
		seedUsed, l.idle, id, estimate, limit, max(ceilMS(lease), 1)).Int64Slice()
	if err != nil {
		return domain.QuotaState{}, fmt.Errorf("redis quota reserve: %w", err)
	}
	if len(res) != 3 {
		return domain.QuotaState{}, fmt.Errorf("redis quota reserve: unexpected reply %v", res)
	}
	s := domain.QuotaState{Used: res[1], Reserved: res[2]}
	if res[0] == 0 {
		return s, quotaExceeded(s, estimate, limit)
	}
	return s, nil
}

// Settle implements ports.QuotaLedger. A key with no ledger in Redis (never
// seeded, Reset, or idle past its TTL) is left alone: it will be seeded from
// storage, which by then includes this usage.
func (l *Ledger) Settle(ctx context.Context, keyID uuid.UUID, id string, actual int64) error {
	if actual < 0 {
		return domain.Invalidf("settled usage must not be negative")
	}
	if err := settleScript.Run(ctx, l.rdb, l.keys(keyID), id, actual, l.retention, l.idle).Err(); err != nil {
		return fmt.Errorf("redis quota settle: %w", err)
	}
	return nil
}

// State implements ports.QuotaLedger.
func (l *Ledger) State(ctx context.Context, keyID uuid.UUID, seedUsed int64) (domain.QuotaState, error) {
	res, err := stateScript.Run(ctx, l.rdb, l.keys(keyID), seedUsed, l.idle).Int64Slice()
	if err != nil {
		return domain.QuotaState{}, fmt.Errorf("redis quota state: %w", err)
	}
	if len(res) != 2 {
		return domain.QuotaState{}, fmt.Errorf("redis quota state: unexpected reply %v", res)
	}
	return domain.QuotaState{Used: res[0], Reserved: res[1]}, nil
}

// Reset implements ports.QuotaLedger.
func (l *Ledger) Reset(ctx context.Context, keyID uuid.UUID) error {
	if err := l.rdb.Del(ctx, l.keys(keyID)...).Err(); err != nil {
		return fmt.Errorf("redis quota reset: %w", err)
	}
	return nil
}

// quotaExceeded is the refusal, worded as the memory adapter words it.
func quotaExceeded(s domain.QuotaState, estimate, limit int64) *domain.Error {
	e := domain.Errorf(domain.KindQuotaExceeded,
		"token quota exhausted: %d of %d tokens remain (%d reserved by in-flight requests), this request needs up to %d",
		s.Remaining(limit), limit, s.Reserved, estimate)
	e.Reason = domain.ReasonQuota
	return e
}
