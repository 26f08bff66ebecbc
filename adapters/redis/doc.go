// Package redis implements the admission ports on Redis, for several
// replicas sharing one budget: QuotaLedger, RateLimiter and
// ConcurrencyLimiter.
//
// Every decision is one Lua script, so it is atomic across replicas, and
// every script takes the time from the Redis server (TIME), so replica clocks
// never disagree about a lease or a bucket. All keys live under a
// configurable prefix (WithPrefix).
//
// Errors from Redis are returned wrapped and undecided: whether an
// unreachable Redis admits or refuses (fail_open or fail_closed) is the
// caller's policy, not this package's.
//
// # Quota ledger
//
// Per key K, four keys share the hash tag {K}, so they stay together on a
// cluster:
//
//	<prefix>quota:{K}:used  string  settled tokens, seeded with SET NX
//	<prefix>quota:{K}:res   hash    reservation id -> reserved tokens
//	<prefix>quota:{K}:exp   zset    reservation id, scored by lease expiry (ms)
//	<prefix>quota:{K}:done  zset    settled id, scored by when it is forgotten
//
// A reservation whose lease has passed is dropped by the next script that
// touches the key, so a crashed replica's reservations stop counting. All
// four keys expire together after WithIdleTTL of inactivity; the next
// request then re-seeds from storage, which by then holds every record.
//
// # Rate limiter
//
// The limiter is GCRA in a Lua script of its own rather than
// github.com/go-redis/redis_rate: the port needs Charge (taking tokens known
// only after a response, even past the limit) and a Peek that writes nothing,
// which redis_rate does not offer. The key stores the theoretical arrival
// time in integer microseconds; it expires when the bucket is full again.
//
// # Concurrency limiter
//
// Each key is a sorted set of slot holders scored by lease expiry. Acquire
// drops expired holders and adds itself only below the cap, atomically.
package redis
