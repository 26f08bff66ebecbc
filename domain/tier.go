package domain

import "time"

// DefaultTierName is the tier keys get when none is named, and the first
// of DefaultTiers.
const DefaultTierName = "basic"

// DefaultTiers are used when the configuration names none: the seed's example.
func DefaultTiers() []Tier {
	return []Tier{
		{Name: DefaultTierName, Requests: 100, Period: 60 * time.Second},
		{Name: "premium", Requests: 1000, Period: 60 * time.Second},
	}
}

// Bounds of a tier's fields. Requests and MaxConcurrency are stored as 32-bit
// integers, and AuxLimit multiplies Requests by ten, so both stay well below
// 2^31 / 10.
const (
	MaxTierRequests    = 100_000_000
	MaxTierConcurrency = 100_000_000
	MaxTierPeriod      = 30 * 24 * time.Hour
)

// Tier is a named set of rate limits a key is subject to.
type Tier struct {
	Name     string
	Requests int           // requests allowed per Period
	Period   time.Duration // whole seconds
	// Tokens, when set, caps total tokens per Period.
	Tokens *int64
	// MaxConcurrency, when set, caps in-flight requests per key.
	MaxConcurrency *int
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Validate checks the tier's own fields.
func (t Tier) Validate() error {
	switch {
	case !ValidTierName(t.Name):
		return Invalidf("tier name must be 1-64 characters of a-z, 0-9, '-' or '_'")
	case t.Requests < 1 || t.Requests > MaxTierRequests:
		return Invalidf("requests must be between 1 and %d", MaxTierRequests)
	case t.Period < time.Second || t.Period%time.Second != 0:
		return Invalidf("period must be a whole number of seconds, at least 1")
	case t.Period > MaxTierPeriod:
		return Invalidf("period must be at most %d seconds (30 days)", int64(MaxTierPeriod/time.Second))
	case t.Tokens != nil && *t.Tokens < 1:
		return Invalidf("tokens must be at least 1 when set")
	case t.MaxConcurrency != nil && (*t.MaxConcurrency < 1 || *t.MaxConcurrency > MaxTierConcurrency):
		return Invalidf("max_concurrency must be between 1 and %d when set", MaxTierConcurrency)
	}
	return nil
}

// ValidTierName reports whether s can name a tier.
func ValidTierName(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// RequestLimit is the tier's request budget.
func (t Tier) RequestLimit() Limit { return Limit{Count: int64(t.Requests), Period: t.Period} }

// TokenLimit is the tier's token budget, if it has one.
func (t Tier) TokenLimit() (Limit, bool) {
	if t.Tokens == nil {
		return Limit{}, false
	}
	return Limit{Count: *t.Tokens, Period: t.Period}, true
}

// AuxLimit is the budget for token-free calls (count_tokens, models): ten
// times the request budget, so an IDE's start-up burst passes but abuse does not.
func (t Tier) AuxLimit() Limit { return Limit{Count: int64(t.Requests) * 10, Period: t.Period} }
