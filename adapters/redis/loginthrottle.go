package redis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/relaystation/relay/ports"
)

// LoginThrottle is a ports.LoginThrottle on Redis, shared by every replica
// using the same prefix.
//
// Each counter is one string key, <prefix>login:{login}:<key>, holding
// "version count at_ns in_flight lease_ns" and expiring with its TTL. The
// shared hash tag keeps one decision's keys in one slot on a cluster (login
// traffic is small). An Update reads its keys and the server's TIME in one
// round trip, lets the policy decide, and writes with a compare-and-swap
// script that checks every key it read is unchanged; on a conflict it
// reads again. Refusals write nothing, so a flood of refused logins costs
// one read each.
type LoginThrottle struct {
	rdb    goredis.UniversalClient
	prefix string
}

var _ ports.LoginThrottle = (*LoginThrottle)(nil)

// NewLoginThrottle returns a store on rdb. Options: WithPrefix.
func NewLoginThrottle(rdb goredis.UniversalClient, opts ...Option) *LoginThrottle {
	o := buildOptions(opts)
	return &LoginThrottle{rdb: rdb, prefix: o.prefix + "login:{login}:"}
}

// loginSwapTries bounds the compare-and-swap retries of one Update. A
// conflict needs another replica's write to the same keys in between, and
// writes happen only for admitted attempts, so this is never reached but by
// a store gone wrong.
const loginSwapTries = 32

// loginSwapScript: KEYS every key read; ARGV the value each held when read
// ("" for none), then (key index, new value, ttl_ms) per write. Writes
// nothing and returns 0 when any key changed since.
var loginSwapScript = goredis.NewScript(`
local n = #KEYS
for i = 1, n do
  local cur = redis.call('GET', KEYS[i])
  if cur == false then
    cur = ''
  end
  if cur ~= ARGV[i] then
    return 0
  end
end
for j = n + 1, #ARGV, 3 do
  local k = KEYS[tonumber(ARGV[j])]
  local ttl = tonumber(ARGV[j + 2])
  if ttl > 0 then
    redis.call('SET', k, ARGV[j + 1], 'PX', ttl)
  else
    redis.call('DEL', k)
  end
end
return 1
`)

// Update implements ports.LoginThrottle.
func (t *LoginThrottle) Update(ctx context.Context, keys []string,
	decide func(time.Time, []ports.LoginCounter) []ports.LoginCounterUpdate) error {
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = t.prefix + k
	}
	for try := range loginSwapTries {
		if try > 2 {
			// Replicas racing for the same keys: let one of them win.
			time.Sleep(time.Duration(rand.Int64N(int64(try) * int64(time.Millisecond))))
		}
		now, raw, err := t.read(ctx, full)
		if err != nil {
			return err
		}
		cur := make([]ports.LoginCounter, len(keys))
		vers := make([]int64, len(keys))
		for i, v := range raw {
			if cur[i], vers[i], err = decodeLoginCounter(v); err != nil {
				return fmt.Errorf("redis login throttle: key %q: %w", full[i], err)
			}
		}
		ups := decide(now, cur)
		if len(ups) == 0 {
			return nil
		}
		args := make([]any, 0, len(keys)+3*len(ups))
		for _, v := range raw {
			args = append(args, v)
		}
		for _, u := range ups {
			i := slices.Index(keys, u.Key)
			if i < 0 {
				return fmt.Errorf("redis login throttle: update of %q, which was not read", u.Key)
			}
			args = append(args, i+1, encodeLoginCounter(u.Counter, vers[i]+1), ceilMS(u.TTL))
		}
		ok, err := loginSwapScript.Run(ctx, t.rdb, full, args...).Int()
		if err != nil {
			return fmt.Errorf("redis login throttle: %w", err)
		}
		if ok == 1 {
			return nil
		}
	}
	return fmt.Errorf("redis login throttle: %d conflicting updates in a row", loginSwapTries)
}

// read returns the server's time and the raw values of keys ("" for none),
// in one round trip.
func (t *LoginThrottle) read(ctx context.Context, keys []string) (time.Time, []string, error) {
	pipe := t.rdb.Pipeline()
	tc := pipe.Time(ctx)
	mc := pipe.MGet(ctx, keys...)
	if _, err := pipe.Exec(ctx); err != nil {
		return time.Time{}, nil, fmt.Errorf("redis login throttle: %w", err)
	}
	vals := mc.Val()
	if len(vals) != len(keys) {
		return time.Time{}, nil, fmt.Errorf("redis login throttle: MGET answered %d values for %d keys", len(vals), len(keys))
	}
	raw := make([]string, len(keys))
	for i, v := range vals {
		switch s := v.(type) {
		case nil:
		case string:
			raw[i] = s
		default:
			return time.Time{}, nil, fmt.Errorf("redis login throttle: unexpected value %T", v)
		}
	}
	return tc.Val(), raw, nil
}

func encodeLoginCounter(c ports.LoginCounter, ver int64) string {
	return strconv.FormatInt(ver, 10) + " " + strconv.FormatFloat(c.Count, 'g', -1, 64) + " " +
		strconv.FormatInt(unixNano(c.At), 10) + " " + strconv.Itoa(c.InFlight) + " " +
		strconv.FormatInt(unixNano(c.Lease), 10)
}

func decodeLoginCounter(s string) (ports.LoginCounter, int64, error) {
	if s == "" {
		return ports.LoginCounter{}, 0, nil
	}
	f := strings.Fields(s)
	if len(f) != 5 {
		return ports.LoginCounter{}, 0, fmt.Errorf("malformed counter %q", s)
	}
	ver, err1 := strconv.ParseInt(f[0], 10, 64)
	count, err2 := strconv.ParseFloat(f[1], 64)
	at, err3 := strconv.ParseInt(f[2], 10, 64)
	inflight, err4 := strconv.Atoi(f[3])
	lease, err5 := strconv.ParseInt(f[4], 10, 64)
	for _, err := range []error{err1, err2, err3, err4, err5} {
		if err != nil {
			return ports.LoginCounter{}, 0, fmt.Errorf("malformed counter %q: %w", s, err)
		}
	}
	return ports.LoginCounter{Count: count, At: fromUnixNano(at), InFlight: inflight, Lease: fromUnixNano(lease)}, ver, nil
}

// unixNano keeps the zero time distinct from the epoch.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
