// Package memory implements the admission ports in process, for a single
// replica: QuotaLedger, RateLimiter and ConcurrencyLimiter.
//
// The ledger is authoritative for its replica: counters are seeded lazily
// from the persisted tokens_used the first time a key is touched, and from
// then on every reservation and settlement goes through memory only. State is
// sharded by key, and each key has its own mutex, so unrelated keys never
// contend on the admission hot path.
//
// The rate limiter is GCRA (the generic cell rate algorithm): a budget of
// Count per Period allows a burst of Count and then one unit every
// Period/Count. Unlike a fixed window it never admits two bursts back to back
// at a window edge: in any interval of length d at most Count + d*Count/Period
// units pass.
package memory
