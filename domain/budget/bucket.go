package budget

import (
	"time"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/pricing"
)

// A ledger records each key's settled spend in buckets of four sizes, all
// aligned to the Unix epoch (so to UTC), whatever budgets the key has: every
// window can then be measured at once, including one added a moment ago.
//
//   - 5-minute buckets make the rolling window.
//   - 15-minute buckets are the edges of calendar windows: every zone in use
//     has offsets in whole quarter hours (+5:30, +5:45, −3:30), so every
//     local midnight starts one. An edge off the quarter hour (only
//     historical offsets have one) is measured from the quarter before it,
//     which can only count a little more.
//   - Hour and UTC-day buckets keep a month's sum short: Cover reads at
//     most about 80 buckets for any span.
//
// Every amount is added to the four buckets holding its time and to the
// key's total.

// Level is a bucket size.
type Level uint8

const (
	Level5m Level = iota
	Level15m
	LevelHour
	LevelDay
)

// Levels lists every level, finest first.
var Levels = [...]Level{Level5m, Level15m, LevelHour, LevelDay}

var levelSeconds = [...]int64{300, 900, 3600, 86400}

// Seconds is the bucket size in seconds.
func (l Level) Seconds() int64 { return levelSeconds[l] }

// Index is the level's bucket holding t: it covers [Index·size, (Index+1)·size)
// in Unix seconds.
func (l Level) Index(t time.Time) int64 { return floorDiv(t.Unix(), l.Seconds()) }

// Retention: how long a ledger keeps buckets, measured back from the latest
// request time it has been given, but never one more than MaxAhead past its
// own clock: a caller whose clock runs behind cannot prune early, nor one
// running ahead by up to MaxAhead, and one further ahead prunes as if it
// were MaxAhead ahead.
const (
	// FineRetention keeps 5-minute buckets for the rolling window (5h05m)
	// plus some 55 minutes for clocks of replicas that run behind.
	FineRetention = 6 * time.Hour
	// CoarseRetention keeps the other buckets: a month window reaches back
	// at most 31 days and an hour, and HistorySpan plus a day of margin.
	CoarseRetention = 33 * 24 * time.Hour
	// HistorySpan is how far back a seed must reach (see History).
	HistorySpan = 32 * 24 * time.Hour
	// MaxAhead is the margin FineRetention leaves beyond the rolling window.
	MaxAhead = FineRetention - RollingSpan
)

// Cutoffs are, per level, the lowest bucket index a ledger keeps when the
// latest time it has seen is latest. The 5-minute cutoff is on a quarter
// hour, so each 15-minute bucket either has all its 5-minute buckets or
// none: a seed is merged at the finest level kept.
func Cutoffs(latest time.Time) [len(Levels)]int64 {
	fine := latest.Add(-FineRetention).Unix()
	coarse := latest.Add(-CoarseRetention).Unix()
	return [len(Levels)]int64{
		Level5m:   floorDiv(fine, 900) * 3,
		Level15m:  floorDiv(coarse, 900),
		LevelHour: floorDiv(coarse, 3600),
		LevelDay:  floorDiv(coarse, 86400),
	}
}

// Bucket names one bucket.
type Bucket struct {
	Level Level
	Index int64
}

// Cover is the fewest buckets of levels 15m, hour and day whose union is
// [start, end): quarters up to the first whole hour, hours up to the first
// UTC midnight, days, then hours and quarters again. A start or end off the
// quarter hour is moved out to it.
func Cover(start, end time.Time) []Bucket {
	a := floorDiv(start.Unix(), 900) * 900
	b := -floorDiv(-end.Unix(), 900) * 900
	var out []Bucket
	step := func(l Level, cond func(x int64) bool) {
		n := l.Seconds()
		for a+n <= b && cond(a) {
			out = append(out, Bucket{Level: l, Index: a / n})
			a += n
		}
	}
	misaligned := func(n int64) func(int64) bool { return func(x int64) bool { return x%n != 0 } }
	always := func(int64) bool { return true }
	step(Level15m, misaligned(3600))
	step(LevelHour, misaligned(86400))
	step(LevelDay, always)
	step(LevelHour, always)
	step(Level15m, always)
	return out
}

// History is a key's persisted spend, read from storage to seed a ledger
// that does not know the key (after a restart, after its state expired or
// was reset). It must be read from one consistent snapshot.
type History struct {
	// AsOf is when the history was read.
	AsOf time.Time
	// Buckets hold the cost of every stored usage record of the key whose
	// time (UsageRecord.Time, the request's arrival) is at or after
	// AsOf − HistorySpan, summed per 5-minute bucket: Start is the
	// bucket's start, a multiple of 5 minutes since the epoch. Empty
	// buckets may be left out; a bucket listed twice is summed.
	Buckets []Spend
	// Total is the cost of every stored usage record of the key.
	Total pricing.Nanodollars
}

// Spend is an amount in one 5-minute bucket.
type Spend struct {
	Start  time.Time
	Amount pricing.Nanodollars
}

// Validate checks that h is well formed.
func (h History) Validate() error {
	if h.AsOf.IsZero() {
		return domain.Invalidf("spend history: as_of is required")
	}
	if h.Total < 0 {
		return domain.Invalidf("spend history: total must not be negative")
	}
	for _, s := range h.Buckets {
		if s.Start.Unix()%bucketSeconds != 0 || s.Start.Nanosecond() != 0 {
			return domain.Invalidf("spend history: bucket %s does not start on a 5-minute boundary", s.Start.Format(time.RFC3339Nano))
		}
		if s.Amount < 0 || s.Amount > MaxLimit {
			return domain.Invalidf("spend history: bucket %s: amount out of range", s.Start.Format(time.RFC3339))
		}
	}
	return nil
}

// ValidAmount checks an amount a ledger reserves or settles: not negative,
// at most MaxLimit (no single request costs $9 million; a larger figure is
// a bug upstream of the ledger).
func ValidAmount(what string, n pricing.Nanodollars) error {
	if n < 0 || n > MaxLimit {
		return domain.Invalidf("%s must be between 0 and %s, got %s", what, FormatUSD(MaxLimit), pricing.FormatUSD(n))
	}
	return nil
}
