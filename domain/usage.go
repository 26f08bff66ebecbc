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

// UsageRecord is one proxied request, as recorded for billing and audit.
// RequestID is unique: writing the same record twice counts it once.
type UsageRecord struct {
	RequestID         string
	KeyID             uuid.UUID
	Time              time.Time // when the request arrived
	Model             string
	Path              string
	Status            int
	Stream            bool
	Usage             Usage
	Estimated         bool // some counts were estimated, not reported (interrupted stream)
	Latency           time.Duration
	TTFB              time.Duration
	UpstreamRequestID string
	Upstream          string // upstream name, e.g. "primary"
	SessionID         string // X-Claude-Code-Session-Id
	ClientIP          string
	ErrorType         string
}

// GroupBy selects how usage totals are grouped.
type GroupBy string

const (
	GroupNone  GroupBy = ""
	GroupKey   GroupBy = "key"
	GroupDay   GroupBy = "day"
	GroupModel GroupBy = "model"
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
}

// LogQuery selects request logs, newest first, with cursor pagination.
type LogQuery struct {
	KeyID  *uuid.UUID
	From   *time.Time
	To     *time.Time
	Status *int
	After  *LogCursor
	Limit  int
}

// LogCursor is the position after which a log listing continues.
type LogCursor struct {
	Time      time.Time
	RequestID string
}
