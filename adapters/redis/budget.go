package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/budget"
	"github.com/relaystation/relay/domain/pricing"
	"github.com/relaystation/relay/ports"
)

// BudgetLedger is a ports.BudgetLedger on Redis, shared by every replica
// that uses the same prefix. Each operation is one Lua script over the
// key's four keys, so a reservation is checked against every window and
// made in all of them, or in none, atomically across replicas.
//
// Per key K, under the hash tag {K}:
//
//	<prefix>budget:{K}:spend  hash    m:<i> q:<i> h:<i> d:<i> bucket sums (5-minute,
//	                                  15-minute, hour, UTC day; i is the bucket index
//	                                  since the epoch), t the total, at the latest request
//	                                  time in Unix seconds, lo1..lo4 the lowest index left
//	                                  per level. Its existence means "seeded".
//	<prefix>budget:{K}:res    hash    reservation id -> "<nanodollars>:<5-minute bucket>"
//	<prefix>budget:{K}:exp    zset    reservation id, scored by lease expiry (server ms)
//	<prefix>budget:{K}:done   zset    settled id, scored by when it is forgotten
//
// Leases and retention follow the server's TIME; windows follow the
// request times callers pass. The Go side computes which buckets make each
// window (the time-zone math) and the script sums them, so Lua never sees
// a zone. Bucket sums are exact integers in Redis (HINCRBY); the script
// compares them as doubles, which is exact below 2⁵³ nanodollars, and no
// limit is above that (budget.MaxLimit). A key is forgotten after
// WithIdleTTL without activity, and then seeded again.
type BudgetLedger struct {
	rdb       goredis.UniversalClient
	prefix    string
	retention int64 // ms
	idle      int64 // ms, 0 = never expire
}

var _ ports.BudgetLedger = (*BudgetLedger)(nil)

// NewBudgetLedger returns a ledger on rdb. Options: WithPrefix,
// WithSettleRetention, WithIdleTTL.
func NewBudgetLedger(rdb goredis.UniversalClient, opts ...Option) *BudgetLedger {
	o := buildOptions(opts)
	return &BudgetLedger{rdb: rdb, prefix: o.prefix, retention: ceilMS(o.settleRetention), idle: ceilMS(o.idleTTL)}
}

func (l *BudgetLedger) keys(keyID uuid.UUID) []string {
	base := l.prefix + "budget:{" + keyID.String() + "}:"
	return []string{base + "spend", base + "res", base + "exp", base + "done"}
}

// luaBudgetPrelude: KEYS spend, res, exp, done. It reads the server time,
// drops expired reservations and forgotten settlements, and defines
// advance (record a request time, capped at the server's time plus
// budget.MaxAhead; prune buckets past retention; return the cutoffs: the
// Lua twin of budget.Cutoffs) and touch (keep the keys at
// least ttl ms; callers touch only when an idle TTL is set, so keys without
// one never get one).
var luaBudgetPrelude = fmt.Sprintf(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for i = 1, #expired do
  redis.call('HDEL', KEYS[2], expired[i])
end
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
local PREFIX = {'m:', 'q:', 'h:', 'd:'}
local SIZE = {300, 900, 3600, 86400}
local function fmt(n)
  return string.format('%%d', n)
end
local function advance(at)
  at = math.min(at, math.floor(now / 1000) + %d)
  local seen = redis.call('HGET', KEYS[1], 'at')
  local latest = at
  if seen and tonumber(seen) > at then
    latest = tonumber(seen)
  end
  if not seen or latest ~= tonumber(seen) then
    redis.call('HSET', KEYS[1], 'at', fmt(latest))
  end
  local fine = latest - %d
  local coarse = latest - %d
  local cut = {math.floor(fine / 900) * 3, math.floor(coarse / 900), math.floor(coarse / 3600), math.floor(coarse / 86400)}
  for l = 1, 4 do
    local lo = redis.call('HGET', KEYS[1], 'lo' .. l)
    if not lo then
      redis.call('HSET', KEYS[1], 'lo' .. l, fmt(cut[l]))
    elseif tonumber(lo) < cut[l] then
      lo = tonumber(lo)
      if cut[l] - lo > 4096 then
        local fields = redis.call('HKEYS', KEYS[1])
        for i = 1, #fields do
          local f = fields[i]
          if string.sub(f, 1, 2) == PREFIX[l] and tonumber(string.sub(f, 3)) < cut[l] then
            redis.call('HDEL', KEYS[1], f)
          end
        end
      else
        for i = lo, cut[l] - 1 do
          redis.call('HDEL', KEYS[1], PREFIX[l] .. fmt(i))
        end
      end
      redis.call('HSET', KEYS[1], 'lo' .. l, fmt(cut[l]))
    end
  end
  return cut
end
local function touch(ttl)
  if ttl > 0 then
    for i = 1, 4 do
      local cur = redis.call('PTTL', KEYS[i])
      if cur == -1 or (cur >= 0 and cur < ttl) then
        redis.call('PEXPIRE', KEYS[i], ttl)
      end
    end
  end
end
`, int64(budget.MaxAhead/time.Second), int64(budget.FineRetention/time.Second), int64(budget.CoarseRetention/time.Second))

// luaBudgetMeasure reads the windows described from ARGV[p] on: per
// budget limit, roll (1 for 5h), the reservation bucket range [lo, hi),
// the number of bucket fields nf and the fields. measures[b] holds used,
// reserved and, for 5h, the per-bucket amounts.
const luaBudgetMeasure = `
local ramt, rbkt = {}, {}
local rs = redis.call('HGETALL', KEYS[2])
for i = 1, #rs, 2 do
  local v = rs[i + 1]
  local c = string.find(v, ':', 1, true)
  ramt[#ramt + 1] = tonumber(string.sub(v, 1, c - 1))
  rbkt[#rbkt + 1] = tonumber(string.sub(v, c + 1))
end
local function measure(p, n)
  local ms = {}
  for b = 1, n do
    local m = {limit = tonumber(ARGV[p]), roll = ARGV[p + 1] == '1', lo = tonumber(ARGV[p + 2]),
      hi = tonumber(ARGV[p + 3]), nf = tonumber(ARGV[p + 4]), used = 0, reserved = 0, bk = {}}
    if m.nf > 0 then
      local vals = redis.call('HMGET', KEYS[1], unpack(ARGV, p + 5, p + 4 + m.nf))
      for i = 1, m.nf do
        local v = tonumber(vals[i] or 0) or 0
        m.used = m.used + v
        if m.roll then
          m.bk[i] = v
        end
      end
    end
    for j = 1, #ramt do
      if rbkt[j] >= m.lo and rbkt[j] < m.hi then
        m.reserved = m.reserved + ramt[j]
        if m.roll then
          local k = math.min(rbkt[j] - m.lo + 1, m.nf)
          m.bk[k] = m.bk[k] + ramt[j]
        end
      end
    end
    ms[b] = m
    p = p + 5 + m.nf
  end
  return ms
end
local function reply(status, ms)
  local out = {status}
  for b = 1, #ms do
    local m = ms[b]
    out[#out + 1] = m.used
    out[#out + 1] = m.reserved
    out[#out + 1] = #m.bk
    for i = 1, #m.bk do
      out[#out + 1] = m.bk[i]
    end
  end
  return out
end
`

// budgetReserveScript: ARGV id, amount, at (s), lease_ms, idle_ms, n, then
// the windows. Returns {status, windows...}: status 1 reserved, 0 refused,
// 2 the id is already held or settled (no change), -1 not seeded.
var budgetReserveScript = goredis.NewScript(luaBudgetPrelude + luaBudgetMeasure + `
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {-1}
end
local id, amount, at, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
advance(at)
local status = 1
if redis.call('HEXISTS', KEYS[2], id) == 1 or redis.call('ZSCORE', KEYS[4], id) then
  status = 2
end
local ms = measure(7, tonumber(ARGV[6]))
if status == 1 then
  for b = 1, #ms do
    local m = ms[b]
    if m.used + m.reserved + amount > m.limit then
      status = 0
    end
  end
end
if status == 1 then
  local mine = math.floor(at / 300)
  redis.call('HSET', KEYS[2], id, ARGV[2] .. ':' .. fmt(mine))
  redis.call('ZADD', KEYS[3], now + lease, id)
  for b = 1, #ms do
    local m = ms[b]
    if mine >= m.lo and mine < m.hi then
      m.reserved = m.reserved + amount
      if m.roll then
        local k = math.min(mine - m.lo + 1, m.nf)
        m.bk[k] = m.bk[k] + amount
      end
    end
  end
end
if tonumber(ARGV[5]) > 0 then
  touch(math.max(tonumber(ARGV[5]), lease))
end
return reply(status, ms)
`)

// budgetStateScript: ARGV at (s), idle_ms, n, then the windows. Returns
// {1, windows...}, or {-1} when not seeded.
var budgetStateScript = goredis.NewScript(luaBudgetPrelude + luaBudgetMeasure + `
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {-1}
end
advance(tonumber(ARGV[1]))
local ms = measure(4, tonumber(ARGV[3]))
touch(tonumber(ARGV[2]))
return reply(1, ms)
`)

// budgetSettleScript: ARGV id, actual, at (s), retention_ms, idle_ms.
// Returns 1 settled, 0 already settled, 2 not seeded (left to the seed).
// A key without spend is not created: an unseeded ledger would shadow the
// persisted spend.
var budgetSettleScript = goredis.NewScript(luaBudgetPrelude + `
local id = ARGV[1]
if redis.call('ZSCORE', KEYS[4], id) then
  return 0
end
redis.call('HDEL', KEYS[2], id)
redis.call('ZREM', KEYS[3], id)
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 2
end
local at = tonumber(ARGV[3])
local cut = advance(at)
if ARGV[2] ~= '0' then
  for l = 1, 4 do
    local idx = math.floor(at / SIZE[l])
    if idx >= cut[l] then
      redis.call('HINCRBY', KEYS[1], PREFIX[l] .. fmt(idx), ARGV[2])
    end
  end
  redis.call('HINCRBY', KEYS[1], 't', ARGV[2])
end
redis.call('ZADD', KEYS[4], now + tonumber(ARGV[4]), id)
touch(tonumber(ARGV[5]))
return 1
`)

// budgetSeedScript: ARGV as_of (s), total, idle_ms, then pairs of
// 5-minute bucket index and amount. Each bucket is merged by maximum at
// the finest level still kept for it, and what it raises is added to the
// coarser levels and the total; then the total is raised to the history's.
var budgetSeedScript = goredis.NewScript(luaBudgetPrelude + `
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 't', '0')
end
local cut = advance(tonumber(ARGV[1]))
local function raise(l0, sec, d)
  for l = l0, 4 do
    local idx = math.floor(sec / SIZE[l])
    if idx >= cut[l] then
      redis.call('HINCRBY', KEYS[1], PREFIX[l] .. fmt(idx), fmt(d))
    end
  end
  redis.call('HINCRBY', KEYS[1], 't', fmt(d))
end
local quarters, qorder = {}, {}
for i = 4, #ARGV, 2 do
  local idx, v = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  if idx >= cut[1] then
    local cur = tonumber(redis.call('HGET', KEYS[1], 'm:' .. fmt(idx)) or 0)
    if v > cur then
      raise(1, idx * 300, v - cur)
    end
  else
    local q = math.floor(idx / 3)
    if q >= cut[2] then
      if quarters[q] == nil then
        quarters[q] = 0
        qorder[#qorder + 1] = q
      end
      quarters[q] = quarters[q] + v
    end
  end
end
for _, q in ipairs(qorder) do
  local cur = tonumber(redis.call('HGET', KEYS[1], 'q:' .. fmt(q)) or 0)
  if quarters[q] > cur then
    raise(2, q * 900, quarters[q] - cur)
  end
end
if tonumber(ARGV[2]) > tonumber(redis.call('HGET', KEYS[1], 't')) then
  redis.call('HSET', KEYS[1], 't', ARGV[2])
end
touch(tonumber(ARGV[3]))
return 1
`)

// budgetExtendScript: ARGV id, lease_ms, idle_ms. Moves a held reservation's expiry
// to now+lease (never earlier) and keeps the keys alive at least as long.
// Returns 1 extended, 0 not held.
var budgetExtendScript = goredis.NewScript(luaBudgetPrelude + `
local id = ARGV[1]
if redis.call('HEXISTS', KEYS[2], id) == 0 then
  return 0
end
local exp = now + tonumber(ARGV[2])
local cur = tonumber(redis.call('ZSCORE', KEYS[3], id) or 0)
if exp > cur then
  redis.call('ZADD', KEYS[3], exp, id)
end
if tonumber(ARGV[3]) > 0 then
  touch(math.max(tonumber(ARGV[3]), tonumber(ARGV[2])))
end
return 1
`)

// windowArgs appends, per budget, what the measure script reads: the
// limit, whether it is rolling, the range of reservation buckets that
// count in the window, and the bucket fields that sum to its spend.
func windowArgs(args []any, budgets []budget.Budget, at time.Time) []any {
	const far = 1_000_000_000_000_000 // beyond any bucket index, exact in a double
	for _, b := range budgets {
		switch b.Window {
		case budget.Total:
			args = append(args, int64(b.Limit), 0, -far, far, 1, "t")
		case budget.Rolling5h:
			first, last := budget.RollingRange(at)
			args = append(args, int64(b.Limit), 1, first, far, budget.RollingBuckets)
			for i := first; i <= last; i++ {
				args = append(args, "m:"+strconv.FormatInt(i, 10))
			}
		default:
			start, end, cover := b.SpanCover(at)
			lo, hi := budget.Level5m.Index(start), budget.Level5m.Index(end.Add(-time.Nanosecond))+1
			args = append(args, int64(b.Limit), 0, lo, hi, len(cover))
			for _, bk := range cover {
				args = append(args, bucketField(bk))
			}
		}
	}
	return args
}

var levelPrefix = [...]string{budget.Level5m: "m:", budget.Level15m: "q:", budget.LevelHour: "h:", budget.LevelDay: "d:"}

func bucketField(b budget.Bucket) string {
	return levelPrefix[b.Level] + strconv.FormatInt(b.Index, 10)
}

// decodeWindows reads the windows of a measure reply (after the status)
// and checks them with amount; check=false only builds the statuses.
func decodeWindows(res []int64, budgets []budget.Budget, at time.Time, amount pricing.Nanodollars, check bool) ([]budget.Status, []budget.Shortfall, error) {
	sts := make([]budget.Status, len(budgets))
	var short []budget.Shortfall
	p := 1
	for i, b := range budgets {
		if p+3 > len(res) {
			return nil, nil, fmt.Errorf("unexpected reply %v", res)
		}
		m := budget.Measure{Used: pricing.Nanodollars(res[p]), Reserved: pricing.Nanodollars(res[p+1])}
		nb := int(res[p+2])
		p += 3
		if nb < 0 || p+nb > len(res) {
			return nil, nil, fmt.Errorf("unexpected reply %v", res)
		}
		if nb > 0 {
			m.Buckets = make([]pricing.Nanodollars, nb)
			for j := range nb {
				m.Buckets[j] = pricing.Nanodollars(res[p+j])
			}
		}
		p += nb
		if check {
			st, sf := b.Check(at, m, amount)
			sts[i] = st
			if sf != nil {
				short = append(short, *sf)
			}
		} else {
			sts[i] = b.Status(at, m)
		}
	}
	return sts, short, nil
}

func validBudgetCall(budgets []budget.Budget, at time.Time) error {
	if err := budget.ValidateList(budgets); err != nil {
		return err
	}
	if at.IsZero() {
		return domain.Invalidf("the request time is required")
	}
	return nil
}

// Reserve implements ports.BudgetLedger.
func (l *BudgetLedger) Reserve(ctx context.Context, keyID uuid.UUID, id string, budgets []budget.Budget, amount pricing.Nanodollars, at time.Time, lease time.Duration) ([]budget.Status, error) {
	if err := validBudgetCall(budgets, at); err != nil {
		return nil, err
	}
	if err := budget.ValidAmount("a budget reservation", amount); err != nil {
		return nil, err
	}
	args := windowArgs([]any{id, int64(amount), at.Unix(), max(ceilMS(lease), 1), l.idle, len(budgets)}, budgets, at)
	res, err := budgetReserveScript.Run(ctx, l.rdb, l.keys(keyID), args...).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("redis budget reserve: %w", err)
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("redis budget reserve: empty reply")
	}
	if res[0] == -1 {
		return nil, ports.ErrUnseeded
	}
	sts, short, err := decodeWindows(res, budgets, at, amount, res[0] == 0)
	if err != nil {
		return nil, fmt.Errorf("redis budget reserve: %w", err)
	}
	if res[0] == 0 {
		if len(short) == 0 {
			return sts, fmt.Errorf("redis budget reserve: refused, but no window is short in %v", res)
		}
		return sts, budget.Refuse(at, short)
	}
	return sts, nil
}

// Settle implements ports.BudgetLedger. A key with no spend in Redis (never
// seeded, Reset, or idle past its TTL) is left alone: it will be seeded
// from storage, which by then includes this cost.
func (l *BudgetLedger) Settle(ctx context.Context, keyID uuid.UUID, id string, actual pricing.Nanodollars, at time.Time) error {
	if err := budget.ValidAmount("a settled cost", actual); err != nil {
		return err
	}
	if at.IsZero() {
		return domain.Invalidf("the request time is required")
	}
	if err := budgetSettleScript.Run(ctx, l.rdb, l.keys(keyID), id, int64(actual), at.Unix(), l.retention, l.idle).Err(); err != nil {
		return fmt.Errorf("redis budget settle: %w", err)
	}
	return nil
}

// Extend implements ports.BudgetLedger.
func (l *BudgetLedger) Extend(ctx context.Context, keyID uuid.UUID, id string, lease time.Duration) error {
	if err := budgetExtendScript.Run(ctx, l.rdb, l.keys(keyID), id, max(ceilMS(lease), 1), l.idle).Err(); err != nil {
		return fmt.Errorf("redis budget extend: %w", err)
	}
	return nil
}

// State implements ports.BudgetLedger.
func (l *BudgetLedger) State(ctx context.Context, keyID uuid.UUID, budgets []budget.Budget, at time.Time) ([]budget.Status, error) {
	if err := validBudgetCall(budgets, at); err != nil {
		return nil, err
	}
	args := windowArgs([]any{at.Unix(), l.idle, len(budgets)}, budgets, at)
	res, err := budgetStateScript.Run(ctx, l.rdb, l.keys(keyID), args...).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("redis budget state: %w", err)
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("redis budget state: empty reply")
	}
	if res[0] == -1 {
		return nil, ports.ErrUnseeded
	}
	sts, _, err := decodeWindows(res, budgets, at, 0, false)
	if err != nil {
		return nil, fmt.Errorf("redis budget state: %w", err)
	}
	return sts, nil
}

// Seed implements ports.BudgetLedger.
func (l *BudgetLedger) Seed(ctx context.Context, keyID uuid.UUID, h budget.History) error {
	if err := h.Validate(); err != nil {
		return err
	}
	args := make([]any, 0, 3+2*len(h.Buckets))
	args = append(args, h.AsOf.Unix(), int64(h.Total), l.idle)
	// Summed here so that the script merges each bucket once.
	sums := make(map[int64]int64, len(h.Buckets))
	for _, s := range h.Buckets {
		sums[budget.Level5m.Index(s.Start)] += int64(s.Amount)
	}
	for idx, v := range sums {
		args = append(args, idx, v)
	}
	if err := budgetSeedScript.Run(ctx, l.rdb, l.keys(keyID), args...).Err(); err != nil {
		return fmt.Errorf("redis budget seed: %w", err)
	}
	return nil
}

// Reset implements ports.BudgetLedger.
func (l *BudgetLedger) Reset(ctx context.Context, keyID uuid.UUID) error {
	if err := l.rdb.Del(ctx, l.keys(keyID)...).Err(); err != nil {
		return fmt.Errorf("redis budget reset: %w", err)
	}
	return nil
}
