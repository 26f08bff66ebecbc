package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
)

// usageRow is a usage_records row. The engines write records with their own
// batch insert (Engine.InsertUsage); the Store only reads them.
type usageRow = struct {
	RequestID                string
	KeyID                    uuid.UUID
	CreatedAt                Time
	Model                    string
	Path                     string
	Status                   int64
	Stream                   bool
	InputTokens              int64
	OutputTokens             int64
	CacheCreationInputTokens int64
	CacheReadInputTokens     int64
	CacheCreation5mTokens    int64
	CacheCreation1hTokens    int64
	Estimated                bool
	LatencyUs                int64
	TtfbUs                   int64
	UpstreamRequestID        string
	Upstream                 string
	SessionID                string
	ClientIp                 string
	ErrorType                string
	RequestedModel           string
	Endpoint                 string
	Iterations               string
	WebSearchRequests        int64
	WebFetchRequests         int64
	ServiceTier              string
	Speed                    string
	InferenceGeo             string
	Batch                    bool
}

type usageLogsParams = struct {
	KeyID          *uuid.UUID
	FromTime       *Time
	ToTime         *Time
	Status         *int64
	AfterTime      *Time
	AfterRequestID string
	MaxRows        int64
}

// recordTotalsParams select raw records by time; dailyTotalsParams select
// rollup rows by UTC day, "YYYY-MM-DD".
type recordTotalsParams = struct {
	GroupBy  string
	KeyID    *uuid.UUID
	FromTime *Time
	ToTime   *Time
}

type dailyTotalsParams = struct {
	GroupBy string
	KeyID   *uuid.UUID
	FromDay *string
	ToDay   *string
}

// totalsRow is a row of either totals query.
type totalsRow = struct {
	Grp                      string
	Requests                 int64
	InputTokens              int64
	OutputTokens             int64
	CacheCreationInputTokens int64
	CacheReadInputTokens     int64
	CacheCreation5mTokens    int64
	CacheCreation1hTokens    int64
}

// usageSQL is an engine's sqlc queries on usage_records and usage_daily.
type usageSQL[Row ~usageRow, Logs ~usageLogsParams, Records ~recordTotalsParams, RecordsRow ~totalsRow, Daily ~dailyTotalsParams, DailyRow ~totalsRow] interface {
	UsageLogs(ctx context.Context, arg Logs) ([]Row, error)
	UsageTotalsFromRecords(ctx context.Context, arg Records) ([]RecordsRow, error)
	UsageTotalsFromDaily(ctx context.Context, arg Daily) ([]DailyRow, error)
}

// UsageQueries are an engine's usage queries in domain terms.
type UsageQueries struct {
	logs         func(ctx context.Context, q domain.LogQuery) ([]domain.UsageRecord, error)
	recordTotals func(ctx context.Context, q domain.UsageQuery) ([]domain.UsageTotals, error)
	dailyTotals  func(ctx context.Context, q domain.UsageQuery) ([]domain.UsageTotals, error)
}

// BindUsage binds an engine's sqlc queries on usage.
func BindUsage[Row ~usageRow, Logs ~usageLogsParams, Records ~recordTotalsParams, RecordsRow ~totalsRow, Daily ~dailyTotalsParams, DailyRow ~totalsRow](
	q usageSQL[Row, Logs, Records, RecordsRow, Daily, DailyRow],
) UsageQueries {
	return UsageQueries{
		logs: func(ctx context.Context, lq domain.LogQuery) ([]domain.UsageRecord, error) {
			rows, err := q.UsageLogs(ctx, logsArgs(lq))
			return mapRows(rows, err, func(r Row) (domain.UsageRecord, error) { return usageFromRow(r) })
		},
		recordTotals: func(ctx context.Context, uq domain.UsageQuery) ([]domain.UsageTotals, error) {
			rows, err := q.UsageTotalsFromRecords(ctx, recordTotalsParams{
				GroupBy:  string(uq.GroupBy),
				KeyID:    uq.KeyID,
				FromTime: timeOrNil(uq.From),
				ToTime:   timeOrNil(uq.To),
			})
			return totalsFromRows(rows, err)
		},
		dailyTotals: func(ctx context.Context, uq domain.UsageQuery) ([]domain.UsageTotals, error) {
			rows, err := q.UsageTotalsFromDaily(ctx, dailyTotalsParams{
				GroupBy: string(uq.GroupBy),
				KeyID:   uq.KeyID,
				FromDay: dayOrNil(uq.From),
				ToDay:   dayOrNil(uq.To),
			})
			return totalsFromRows(rows, err)
		},
	}
}

// InsertUsage writes recs and their aggregates in one transaction; request
// ids already stored are skipped and counted nowhere.
func (s *Store) InsertUsage(ctx context.Context, recs []domain.UsageRecord) error {
	if len(recs) == 0 {
		return nil
	}
	if err := s.engine.InsertUsage(ctx, recs); err != nil {
		return fmt.Errorf("insert usage batch of %d: %w", len(recs), err)
	}
	return nil
}

// UsageTotals sums usage over [q.From, q.To). A day-aligned range is read
// from the daily rollup, anything else from the records themselves.
func (s *Store) UsageTotals(ctx context.Context, q domain.UsageQuery) ([]domain.UsageTotals, error) {
	switch q.GroupBy {
	case domain.GroupNone, domain.GroupKey, domain.GroupDay, domain.GroupModel:
	default:
		return nil, domain.Invalidf("unknown usage grouping %q", q.GroupBy)
	}
	totals := s.read.Usage.recordTotals
	if dayAligned(q.From) && dayAligned(q.To) {
		totals = s.read.Usage.dailyTotals
	}
	out, err := totals(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("usage totals: %w", err)
	}
	if q.GroupBy == domain.GroupNone && len(out) == 0 {
		out = append(out, domain.UsageTotals{})
	}
	return out, nil
}

// UsageLogs returns records newest first.
func (s *Store) UsageLogs(ctx context.Context, q domain.LogQuery) ([]domain.UsageRecord, error) {
	recs, err := s.read.Usage.logs(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("usage logs: %w", err)
	}
	return recs, nil
}

// dayAligned reports whether t is unset or a UTC midnight, so that a range
// bounded by it can be answered from the daily rollup.
func dayAligned(t time.Time) bool {
	return t.IsZero() || t.Equal(t.Truncate(24*time.Hour))
}

// timeOrNil is an optional bound: nil when unset.
func timeOrNil(t time.Time) *Time {
	if t.IsZero() {
		return nil
	}
	st := Time(t)
	return &st
}

// dayOrNil is an optional day bound as the rollup stores it: the UTC date.
func dayOrNil(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	d := t.UTC().Format(time.DateOnly)
	return &d
}

func logsArgs(q domain.LogQuery) usageLogsParams {
	p := usageLogsParams{KeyID: q.KeyID, FromTime: (*Time)(q.From), ToTime: (*Time)(q.To), MaxRows: limit(q.Limit)}
	if q.Status != nil {
		st := int64(*q.Status)
		p.Status = &st
	}
	if q.After != nil {
		at := Time(q.After.Time)
		p.AfterTime, p.AfterRequestID = &at, q.After.RequestID
	}
	return p
}

func usageFromRow(r usageRow) (domain.UsageRecord, error) {
	its, err := decodeIterations(r.Iterations)
	if err != nil {
		return domain.UsageRecord{}, fmt.Errorf("usage record %s: %w", r.RequestID, err)
	}
	return domain.UsageRecord{
		RequestID:      r.RequestID,
		KeyID:          r.KeyID,
		Time:           time.Time(r.CreatedAt),
		Model:          r.Model,
		RequestedModel: r.RequestedModel,
		Path:           r.Path,
		Endpoint:       r.Endpoint,
		Status:         int(r.Status),
		Stream:         r.Stream,
		Usage: domain.Usage{
			InputTokens:              r.InputTokens,
			OutputTokens:             r.OutputTokens,
			CacheCreationInputTokens: r.CacheCreationInputTokens,
			CacheReadInputTokens:     r.CacheReadInputTokens,
			CacheCreation5mTokens:    r.CacheCreation5mTokens,
			CacheCreation1hTokens:    r.CacheCreation1hTokens,
		},
		Iterations: its,
		ServerTools: domain.ServerToolUse{
			WebSearchRequests: r.WebSearchRequests,
			WebFetchRequests:  r.WebFetchRequests,
		},
		ServiceTier:       r.ServiceTier,
		Speed:             r.Speed,
		InferenceGeo:      r.InferenceGeo,
		Estimated:         r.Estimated,
		Batch:             r.Batch,
		Latency:           time.Duration(r.LatencyUs) * time.Microsecond,
		TTFB:              time.Duration(r.TtfbUs) * time.Microsecond,
		UpstreamRequestID: r.UpstreamRequestID,
		Upstream:          r.Upstream,
		SessionID:         r.SessionID,
		ClientIP:          r.ClientIp,
		ErrorType:         r.ErrorType,
	}, nil
}

// totalsFromRows maps either totals query's rows; no rows is nil.
func totalsFromRows[R ~totalsRow](rows []R, err error) ([]domain.UsageTotals, error) {
	if err != nil {
		return nil, err
	}
	var out []domain.UsageTotals
	for _, row := range rows {
		r := totalsRow(row)
		out = append(out, domain.UsageTotals{
			Group:    r.Grp,
			Requests: r.Requests,
			Usage: domain.Usage{
				InputTokens:              r.InputTokens,
				OutputTokens:             r.OutputTokens,
				CacheCreationInputTokens: r.CacheCreationInputTokens,
				CacheReadInputTokens:     r.CacheReadInputTokens,
				CacheCreation5mTokens:    r.CacheCreation5mTokens,
				CacheCreation1hTokens:    r.CacheCreation1hTokens,
			},
		})
	}
	return out, nil
}

// iteration is the stored form of a domain.Iteration, one element of the
// usage_records.iterations JSON array; both engines store the same text.
type iteration struct {
	Type                     string `json:"type"`
	Model                    string `json:"model"`
	InputTokens              int64  `json:"input_tokens"`
	OutputTokens             int64  `json:"output_tokens"`
	CacheCreationInputTokens int64  `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64  `json:"cache_read_input_tokens"`
	CacheCreation5mTokens    int64  `json:"cache_creation_5m_tokens"`
	CacheCreation1hTokens    int64  `json:"cache_creation_1h_tokens"`
}

// EncodeIterations returns the stored text of its: the empty string when
// there are none, which keeps the common record small.
func EncodeIterations(its []domain.Iteration) string {
	if len(its) == 0 {
		return ""
	}
	out := make([]iteration, len(its))
	for i, it := range its {
		out[i] = iteration{
			Type:                     Clean(it.Type),
			Model:                    Clean(it.Model),
			InputTokens:              it.Usage.InputTokens,
			OutputTokens:             it.Usage.OutputTokens,
			CacheCreationInputTokens: it.Usage.CacheCreationInputTokens,
			CacheReadInputTokens:     it.Usage.CacheReadInputTokens,
			CacheCreation5mTokens:    it.Usage.CacheCreation5mTokens,
			CacheCreation1hTokens:    it.Usage.CacheCreation1hTokens,
		}
	}
	b, _ := json.Marshal(out) // cannot fail: only strings and integers
	return string(b)
}

// decodeIterations reads what EncodeIterations stored; an empty string or
// an empty array is none.
func decodeIterations(s string) ([]domain.Iteration, error) {
	if s == "" {
		return nil, nil
	}
	var in []iteration
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, fmt.Errorf("stored iterations: %w", err)
	}
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]domain.Iteration, len(in))
	for i, it := range in {
		out[i] = domain.Iteration{
			Type:  it.Type,
			Model: it.Model,
			Usage: domain.Usage{
				InputTokens:              it.InputTokens,
				OutputTokens:             it.OutputTokens,
				CacheCreationInputTokens: it.CacheCreationInputTokens,
				CacheReadInputTokens:     it.CacheReadInputTokens,
				CacheCreation5mTokens:    it.CacheCreation5mTokens,
				CacheCreation1hTokens:    it.CacheCreation1hTokens,
			},
		}
	}
	return out, nil
}
