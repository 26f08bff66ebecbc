package domain

import (
	"math"
	"time"

	"github.com/google/uuid"
)

// Usage is the token usage of one request, as the upstream reported it.
type Usage struct {
	InputTokens              int64
	OutputTokens             int64
	CacheCreationInputTokens int64
	CacheReadInputTokens     int64
	// The split of cache writes by TTL, when the upstream reports it.
	CacheCreation5mTokens int64
	CacheCreation1hTokens int64
}

// Total is input + output + cache_creation + cache_read: what a key's
// tokens_used counts.
func (u Usage) Total() int64 {
	return u.InputTokens + u.OutputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens
}

// Add returns u + v.
func (u Usage) Add(v Usage) Usage {
	return Usage{
		InputTokens:              u.InputTokens + v.InputTokens,
		OutputTokens:             u.OutputTokens + v.OutputTokens,
		CacheCreationInputTokens: u.CacheCreationInputTokens + v.CacheCreationInputTokens,
		CacheReadInputTokens:     u.CacheReadInputTokens + v.CacheReadInputTokens,
		CacheCreation5mTokens:    u.CacheCreation5mTokens + v.CacheCreation5mTokens,
		CacheCreation1hTokens:    u.CacheCreation1hTokens + v.CacheCreation1hTokens,
	}
}

// ServerToolUse counts the server-side tool calls of one request, which
// Anthropic bills per call (web search per 1,000 requests).
type ServerToolUse struct {
	WebSearchRequests int64
	WebFetchRequests  int64
}

// IsZero reports whether no server tool was used.
func (s ServerToolUse) IsZero() bool { return s == ServerToolUse{} }

// Iteration is one sampling step of a request that ran several (compaction,
// advisor): Anthropic bills each step once, and the top-level usage counts
// only the final "message" step.
type Iteration struct {
	// Type is the upstream's iteration type: "message", "compaction",
	// "advisor_message", ...
	Type string
	// Model is the step's model when it differs from the request's (the
	// advisor's), else "".
	Model string
	Usage Usage
}

// BilledUsage is what a reply with these top-level counts and iterations
// bills: the sum of the iterations when there are any (the top-level counts
// are the final "message" iteration and are added only when no iteration of
// that type is listed), else the top-level counts.
func BilledUsage(top Usage, its []Iteration) Usage {
	if len(its) == 0 {
		return top
	}
	var sum Usage
	sawMessage := false
	for _, it := range its {
		sum = sum.Add(it.Usage)
		if it.Type == "message" {
			sawMessage = true
		}
	}
	if !sawMessage {
		sum = sum.Add(top)
	}
	return sum
}

// UsageRecord is one proxied request, as recorded for billing and audit.
// RequestID is unique: writing the same record twice counts it once.
type UsageRecord struct {
	RequestID string
	KeyID     uuid.UUID
	Time      time.Time // when the request arrived
	// Model is the model that served the request (the upstream's answer
	// names it; after a server-side fallback it differs from the request's).
	Model string
	// RequestedModel is the model the client asked for, when it differs
	// from Model.
	RequestedModel string
	Path           string
	// Endpoint is the catalogue name of the endpoint (relay.Endpoint).
	Endpoint string
	Status   int
	Stream   bool
	// Usage is what the key is charged: for a reply with iterations, their
	// sum (BilledUsage).
	Usage Usage
	// Iterations are the reply's usage.iterations, when it had any.
	Iterations []Iteration
	// ServerTools counts billed server-tool calls (web search, web fetch).
	ServerTools ServerToolUse
	// ServiceTier, Speed and InferenceGeo are the reply's usage fields of
	// the same names ("standard"/"priority"/"batch", "fast", "us"/...).
	ServiceTier  string
	Speed        string
	InferenceGeo string
	// Estimated: some counts were estimated, not reported (an interrupted
	// stream, an abandoned call, an unreadable reply).
	Estimated bool
	// Batch: usage of a Message Batch request, billed at the batch rate.
	Batch             bool
	Latency           time.Duration
	TTFB              time.Duration
	UpstreamRequestID string
	Upstream          string // the id of the upstream that served it, e.g. "primary"
	SessionID         string // X-Claude-Code-Session-Id
	ClientIP          string
	ErrorType         string
	// Attempts is how many upstream attempts the request made (retries and
	// failovers included); 0 when the relay refused it before sending.
	Attempts int
	// TriedUpstreams are the ids of the upstreams tried before the one that
	// served the request (Upstream), in order; usually none.
	TriedUpstreams []string
	// Cost is what the record cost, priced when it was recorded (or
	// repriced since); PriceVersion "" when it never was.
	Cost RecordCost
}

// RefusedByRelay reports whether the relay refused the request itself: a
// status of 400 or more that no upstream answered. It is what
// LogQuery.RefusalsOnly keeps and StatusCounts.Refused counts.
func (r *UsageRecord) RefusedByRelay() bool { return IsRefusal(r.Status, r.Upstream) }

// IsRefusal is RefusedByRelay for a record's status and upstream.
func IsRefusal(status int, upstream string) bool { return status >= 400 && upstream == "" }

// ErrorTypeBatchUnreadable marks the usage record of a Message Batch the
// relay could not read (its id in the create answer, or its results): it
// is billed its reservation, in tokens and money, which no price table
// can recompute.
const ErrorTypeBatchUnreadable = "batch_unreadable"

// GroupBy selects how usage totals are grouped.
type GroupBy string

const (
	GroupNone  GroupBy = ""
	GroupKey   GroupBy = "key"
	GroupDay   GroupBy = "day"
	GroupModel GroupBy = "model"
	// GroupUpstream groups by the upstream that served the request.
	GroupUpstream GroupBy = "upstream"
)

// UsageQuery selects usage for totals. From is inclusive, To exclusive.
type UsageQuery struct {
	KeyID   *uuid.UUID
	From    time.Time
	To      time.Time
	GroupBy GroupBy
}

// UsageTotals is the sum of usage over a group of requests. Group holds the
// key id, the day (YYYY-MM-DD, UTC), the model or the upstream, per the
// query's GroupBy.
type UsageTotals struct {
	Group string
	// KeyName is the key's name when grouped by key (a deleted key's too);
	// "" for a key the store does not know, and for other groupings.
	KeyName  string
	Requests int64
	Usage    Usage
	// Cost sums the records' costs per class (and what their cache reads
	// saved, Cost.CacheSaved); CostTotal is their total.
	Cost      CostBreakdown
	CostTotal Nanodollars
}

// LogQuery selects request logs, newest first, with cursor pagination.
type LogQuery struct {
	KeyID  *uuid.UUID
	From   *time.Time
	To     *time.Time
	Status *int
	// Model and Upstream match exactly when set.
	Model    *string
	Upstream *string
	// RefusalsOnly keeps the requests the relay refused itself: a status
	// of 400 or more that no upstream answered (Upstream is empty).
	RefusalsOnly bool
	After        *LogCursor
	Limit        int
}

// LogCursor is the position after which a log listing continues.
type LogCursor struct {
	Time      time.Time
	RequestID string
}

// StatusClass is the class of a request's final status the dashboard
// counts error rates by.
type StatusClass uint8

const (
	StatusOK          StatusClass = iota // below 400 (0 too: no status was recorded)
	StatusClientError                    // 4xx except 429
	StatusRateLimited                    // 429
	StatusServerError                    // 5xx except 529, and anything from 600
	StatusOverloaded                     // 529
)

// StatusClassOf is the class of an HTTP status.
func StatusClassOf(status int) StatusClass {
	switch {
	case status < 400:
		return StatusOK
	case status == 429:
		return StatusRateLimited
	case status < 500:
		return StatusClientError
	case status == 529:
		return StatusOverloaded
	}
	return StatusServerError
}

// StatusCounts counts requests by StatusClass. Refused counts the requests
// the relay refused itself (RefusedByRelay) and overlaps the classes: a
// refusal is also counted in its status's class.
type StatusCounts struct {
	OK          int64
	ClientError int64
	RateLimited int64
	ServerError int64
	Overloaded  int64
	Refused     int64
}

// Count adds one request with this status and serving upstream.
func (c *StatusCounts) Count(status int, upstream string) {
	switch StatusClassOf(status) {
	case StatusOK:
		c.OK++
	case StatusClientError:
		c.ClientError++
	case StatusRateLimited:
		c.RateLimited++
	case StatusServerError:
		c.ServerError++
	case StatusOverloaded:
		c.Overloaded++
	}
	if IsRefusal(status, upstream) {
		c.Refused++
	}
}

// Add returns c + o.
func (c StatusCounts) Add(o StatusCounts) StatusCounts {
	return StatusCounts{
		OK: c.OK + o.OK, ClientError: c.ClientError + o.ClientError, RateLimited: c.RateLimited + o.RateLimited,
		ServerError: c.ServerError + o.ServerError, Overloaded: c.Overloaded + o.Overloaded, Refused: c.Refused + o.Refused,
	}
}

// Total is the number of requests counted (Refused overlaps the classes
// and is not added again).
func (c StatusCounts) Total() int64 {
	return c.OK + c.ClientError + c.RateLimited + c.ServerError + c.Overloaded
}

// TTFBBucketBounds are the inclusive upper bounds of the time-to-first-byte
// histogram's buckets, five per decade from 10 ms to 63 s; a last bucket,
// TTFBBuckets-1, holds everything above (+Inf). Bucket i holds a TTFB t
// with TTFBBucketBounds[i-1] < t <= TTFBBucketBounds[i]. The stores keep
// one column per bucket, so the bounds are part of the schema: changing
// them needs a migration.
var TTFBBucketBounds = [...]time.Duration{
	10 * time.Millisecond, 16 * time.Millisecond, 25 * time.Millisecond, 40 * time.Millisecond, 63 * time.Millisecond,
	100 * time.Millisecond, 160 * time.Millisecond, 250 * time.Millisecond, 400 * time.Millisecond, 630 * time.Millisecond,
	1 * time.Second, 1600 * time.Millisecond, 2500 * time.Millisecond, 4 * time.Second, 6300 * time.Millisecond,
	10 * time.Second, 16 * time.Second, 25 * time.Second, 40 * time.Second, 63 * time.Second,
}

// TTFBBuckets is the number of histogram buckets, the +Inf one included.
const TTFBBuckets = len(TTFBBucketBounds) + 1

// TTFBBucket is the histogram bucket of a time to first byte; false when
// there was none (t <= 0: the request never got a first byte), which the
// histogram does not count.
func TTFBBucket(t time.Duration) (int, bool) {
	if t <= 0 {
		return 0, false
	}
	for i, b := range TTFBBucketBounds {
		if t <= b {
			return i, true
		}
	}
	return TTFBBuckets - 1, true
}

// SeriesQuery selects usage over [From, To) in steps of an hour or of a
// UTC day.
type SeriesQuery struct {
	From, To time.Time
	// Step is time.Hour or 24*time.Hour.
	Step time.Duration
}

// The longest series a query may ask for, per step.
const (
	MaxHourlySeries = 92 * 24 * time.Hour
	maxDailyYears   = 3
)

// Validate checks that the range is non-empty, starts and ends on whole
// UTC hours, and is at most MaxHourlySeries long in hour steps, three
// years in day steps.
func (q SeriesQuery) Validate() error {
	switch {
	case q.From.IsZero() || q.To.IsZero():
		return Invalidf("usage series: from and to are required")
	case !q.From.Before(q.To):
		return Invalidf("usage series: from must be before to")
	case !q.From.Equal(q.From.Truncate(time.Hour)) || !q.To.Equal(q.To.Truncate(time.Hour)):
		return Invalidf("usage series: from and to must be whole hours")
	}
	switch q.Step {
	case time.Hour:
		if q.To.Sub(q.From) > MaxHourlySeries {
			return Invalidf("usage series: at most %d days in hour steps", int(MaxHourlySeries/(24*time.Hour)))
		}
	case 24 * time.Hour:
		if q.To.After(q.From.AddDate(maxDailyYears, 0, 0)) {
			return Invalidf("usage series: at most %d years in day steps", maxDailyYears)
		}
	default:
		return Invalidf("usage series: the step must be an hour or a day")
	}
	return nil
}

// SeriesPoint is the usage of one hour or UTC day of a series, across all
// keys. A day's first and last points hold only the hours inside the
// query's range.
type SeriesPoint struct {
	// Start is the hour's or the day's start, in UTC.
	Start    time.Time
	Requests int64
	Usage    Usage
	// Cost is what the requests cost in total; CacheSaved what their cache
	// reads saved against the input price.
	Cost       Nanodollars
	CacheSaved Nanodollars
	Status     StatusCounts
	// TTFB counts the requests that had a first byte per histogram bucket
	// (TTFBBucketBounds); it has TTFBBuckets elements.
	TTFB []int64
}

// TTFBSamples is the number of requests in the TTFB histogram.
func (p SeriesPoint) TTFBSamples() int64 {
	var n int64
	for _, c := range p.TTFB {
		n += c
	}
	return n
}

// TTFBQuantile estimates the q-quantile (0 <= q <= 1, clamped) of the
// time to first byte from the histogram, the way Prometheus's
// histogram_quantile does: it finds the bucket holding the quantile's rank
// and interpolates linearly between the bucket's bounds (the first bucket
// starts at 0). A quantile in the +Inf bucket is reported as the highest
// finite bound, 63 s. It is 0 when there are no samples.
func (p SeriesPoint) TTFBQuantile(q float64) time.Duration {
	total := p.TTFBSamples()
	if total == 0 {
		return 0
	}
	if math.IsNaN(q) {
		q = 0
	}
	q = min(max(q, 0), 1)
	rank := q * float64(total)
	last := TTFBBucketBounds[len(TTFBBucketBounds)-1]
	var cum int64
	for i, n := range p.TTFB {
		if n <= 0 {
			continue
		}
		if float64(cum+n) >= rank {
			if i >= len(TTFBBucketBounds) {
				return last
			}
			var lower time.Duration
			if i > 0 {
				lower = TTFBBucketBounds[i-1]
			}
			upper := TTFBBucketBounds[i]
			frac := (rank - float64(cum)) / float64(n)
			return lower + time.Duration(frac*float64(upper-lower))
		}
		cum += n
	}
	return last
}
