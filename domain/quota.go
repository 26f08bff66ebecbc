package domain

import (
	"time"

	"github.com/google/uuid"
)

// DefaultSettleRetention is how long a quota ledger remembers a settled
// reservation id, so that a repeated Settle is a no-op: well past the two
// minutes for which the relay retries a settlement that failed. The memory
// and Redis ledgers both default to it.
const DefaultSettleRetention = 10 * time.Minute

// QuotaState is a key's token ledger at one moment.
type QuotaState struct {
	Used     int64 // settled tokens
	Reserved int64 // tokens held by in-flight requests
}

// Remaining is what is left of limit after used and reserved tokens.
func (s QuotaState) Remaining(limit int64) int64 {
	r := limit - s.Used - s.Reserved
	if r < 0 {
		return 0
	}
	return r
}

// Limit is a request or token budget per period.
type Limit struct {
	Count  int64
	Period time.Duration
}

// RateDecision is the outcome of a rate-limit check.
type RateDecision struct {
	Allowed    bool
	Limit      int64
	Remaining  int64
	ResetAfter time.Duration // until the budget is full again
	RetryAfter time.Duration // until a retry can succeed; zero when allowed
}

// Limiter keys: the relay and the key-holder views must agree on them.
const (
	limiterRequests = "req:"
	limiterTokens   = "tok:"
	limiterAux      = "aux:" // count_tokens / models: a separate, generous budget
	limiterInflight = "conc:"
)

// RequestsLimiterKey names the key's request budget in the RateLimiter.
func RequestsLimiterKey(id uuid.UUID) string { return limiterRequests + id.String() }

// TokensLimiterKey names the key's tokens-per-period budget.
func TokensLimiterKey(id uuid.UUID) string { return limiterTokens + id.String() }

// AuxLimiterKey names the key's budget for token-free calls (count_tokens, models).
func AuxLimiterKey(id uuid.UUID) string { return limiterAux + id.String() }

// ConcurrencyKey names the key's in-flight slots in the ConcurrencyLimiter.
func ConcurrencyKey(id uuid.UUID) string { return limiterInflight + id.String() }
