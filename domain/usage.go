package domain

import (
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
	// Cost is what the record cost, priced when it was recorded (or
	// repriced since); PriceVersion "" when it never was.
	Cost RecordCost
}

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
// key id, the day (YYYY-MM-DD, UTC) or the model, per the query's GroupBy.
type UsageTotals struct {
	Group    string
	Requests int64
	Usage    Usage
	// Cost sums the records' costs per class; CostTotal is their total.
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
