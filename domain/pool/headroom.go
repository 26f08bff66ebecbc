package pool

import "time"

// Limits are the anthropic-ratelimit-* headers of one response, parsed by
// the transport. Anthropic reports the limits of the request's model class.
type Limits struct {
	Requests     Budget // anthropic-ratelimit-requests-*
	InputTokens  Budget // anthropic-ratelimit-input-tokens-*
	OutputTokens Budget // anthropic-ratelimit-output-tokens-*
}

// Budget is one limit's -limit, -remaining and -reset headers. It counts
// only when Limit is positive: Anthropic sends the three together, and a
// remaining count means nothing without the limit it is a share of.
type Budget struct {
	Limit     int64
	Remaining int64
	Reset     time.Time // when the limit is fully replenished
}

// readingLapse is how long a reading without a reset time counts:
// Anthropic's limits replenish continuously, fully within a minute.
const readingLapse = time.Minute

// level ranks an upstream's headroom for Pick; lower is better.
type level uint8

const (
	roomy level = iota
	low
	exhausted
)

func (l Limits) any() bool {
	return l.Requests.Limit > 0 || l.InputTokens.Limit > 0 || l.OutputTokens.Limit > 0
}

// level is the worst of the budgets still in force at now, read at readAt;
// tight names the tightest budget.
func (l Limits) level(now, readAt time.Time, lowShare float64) (lv level, tight string, until time.Time) {
	for _, b := range [...]struct {
		name string
		b    Budget
	}{{"requests", l.Requests}, {"input_tokens", l.InputTokens}, {"output_tokens", l.OutputTokens}} {
		if b.b.Limit <= 0 {
			continue
		}
		end := b.b.Reset
		if end.IsZero() {
			end = readAt.Add(readingLapse)
		}
		if !now.Before(end) {
			continue
		}
		var this level
		switch {
		case b.b.Remaining <= 0:
			this = exhausted
		case float64(b.b.Remaining) < lowShare*float64(b.b.Limit):
			this = low
		default:
			continue
		}
		if this > lv {
			lv, tight, until = this, b.name, end
		}
	}
	return lv, tight, until
}

// exhaustedReset is when the last limit that ran out is replenished: the
// "matching reset header" of a 429 that sent no retry-after.
func (l Limits) exhaustedReset() time.Time {
	var t time.Time
	for _, b := range [...]Budget{l.Requests, l.InputTokens, l.OutputTokens} {
		if b.Limit > 0 && b.Remaining <= 0 && b.Reset.After(t) {
			t = b.Reset
		}
	}
	return t
}
