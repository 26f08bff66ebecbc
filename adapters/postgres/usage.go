package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relaystation/relay/adapters/postgres/pgdb"
	"github.com/relaystation/relay/domain"
)

// maxTxAttempts bounds retries of a usage batch that lost a deadlock or
// serialisation race to a concurrent batch.
const maxTxAttempts = 8

// The batch path is hand-written rather than sqlc-generated: it copies into
// a per-connection temporary table, which sqlc cannot see in the schema. It
// is also shaped for round trips: parameterless statements go through the
// simple protocol, several to a message, so a batch costs three round trips
// (begin, copy, apply-and-commit) however large it is.
const (
	// beginUsageBatch opens the transaction and, the first time on each
	// connection, creates the staging table; ON COMMIT DELETE ROWS empties
	// it after every batch.
	beginUsageBatch = `BEGIN;
CREATE TEMP TABLE IF NOT EXISTS usage_in (LIKE usage_records INCLUDING DEFAULTS) ON COMMIT DELETE ROWS`

	// applyUsageBatch first takes the row locks of the batch's keys in id
	// order, so concurrent batches queue on shared keys instead of
	// deadlocking. It then inserts the staged records that are new and folds
	// exactly those into the daily rollup and the keys' counters, and commits.
	applyUsageBatch = `
SELECT 1 FROM api_keys WHERE id IN (SELECT key_id FROM usage_in) ORDER BY id FOR NO KEY UPDATE;
WITH ins AS (
    INSERT INTO usage_records
    SELECT * FROM usage_in
    ON CONFLICT (request_id) DO NOTHING
    RETURNING key_id, created_at, model, input_tokens, output_tokens,
        cache_creation_input_tokens, cache_read_input_tokens,
        cache_creation_5m_tokens, cache_creation_1h_tokens,
        web_search_requests, web_fetch_requests
), daily AS (
    INSERT INTO usage_daily AS d (
        key_id, day, model, requests, input_tokens, output_tokens,
        cache_creation_input_tokens, cache_read_input_tokens,
        cache_creation_5m_tokens, cache_creation_1h_tokens,
        web_search_requests, web_fetch_requests)
    SELECT key_id, (created_at AT TIME ZONE 'UTC')::date, model, count(*),
        sum(input_tokens), sum(output_tokens),
        sum(cache_creation_input_tokens), sum(cache_read_input_tokens),
        sum(cache_creation_5m_tokens), sum(cache_creation_1h_tokens),
        sum(web_search_requests), sum(web_fetch_requests)
    FROM ins
    GROUP BY 1, 2, 3
    ON CONFLICT (key_id, day, model) DO UPDATE SET
        requests = d.requests + excluded.requests,
        input_tokens = d.input_tokens + excluded.input_tokens,
        output_tokens = d.output_tokens + excluded.output_tokens,
        cache_creation_input_tokens = d.cache_creation_input_tokens + excluded.cache_creation_input_tokens,
        cache_read_input_tokens = d.cache_read_input_tokens + excluded.cache_read_input_tokens,
        cache_creation_5m_tokens = d.cache_creation_5m_tokens + excluded.cache_creation_5m_tokens,
        cache_creation_1h_tokens = d.cache_creation_1h_tokens + excluded.cache_creation_1h_tokens,
        web_search_requests = d.web_search_requests + excluded.web_search_requests,
        web_fetch_requests = d.web_fetch_requests + excluded.web_fetch_requests
), keys AS (
    UPDATE api_keys AS k SET
        tokens_used = k.tokens_used + s.total,
        last_used_at = GREATEST(k.last_used_at, s.last_used_at)
    FROM (
        SELECT key_id,
            sum(input_tokens + output_tokens + cache_creation_input_tokens + cache_read_input_tokens)::bigint AS total,
            max(created_at) AS last_used_at
        FROM ins
        GROUP BY key_id
    ) AS s
    WHERE k.id = s.key_id
)
SELECT count(*) FROM ins;
COMMIT`
)

var usageColumns = []string{
	"request_id", "key_id", "created_at", "model", "path", "status", "stream",
	"input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
	"cache_creation_5m_tokens", "cache_creation_1h_tokens", "estimated", "latency_us", "ttfb_us",
	"upstream_request_id", "upstream", "session_id", "client_ip", "error_type",
	"requested_model", "endpoint", "iterations", "web_search_requests", "web_fetch_requests",
	"service_tier", "speed", "inference_geo", "batch",
}

// InsertUsage writes recs and their aggregates in one transaction; request
// ids already stored are skipped and counted nowhere.
func (s *Store) InsertUsage(ctx context.Context, recs []domain.UsageRecord) error {
	if len(recs) == 0 {
		return nil
	}
	var err error
	for attempt := 1; ; attempt++ {
		err = s.insertUsageOnce(ctx, recs)
		if err == nil || !retryable(err) || attempt == maxTxAttempts {
			break
		}
		s.log.Debug("usage batch lost a lock race, retrying", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("insert usage: %w", ctx.Err())
		case <-time.After(time.Duration(attempt) * time.Duration(1+rand.IntN(5)) * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("insert usage batch of %d: %w", len(recs), err)
	}
	return nil
}

func (s *Store) insertUsageOnce(ctx context.Context, recs []domain.UsageRecord) (err error) {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection: %w", err)
	}
	defer pc.Release()
	conn := pc.Conn()
	if _, err := conn.Exec(ctx, beginUsageBatch); err != nil {
		return fmt.Errorf("begin usage batch: %w", err)
	}
	done := false
	defer func() {
		if done {
			return
		}
		// The transaction is open or aborted; a connection that cannot even
		// roll back is closed so the pool never hands it out mid-transaction.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, rerr := conn.Exec(rctx, "ROLLBACK"); rerr != nil {
			_ = conn.Close(rctx)
		}
	}()
	_, err = conn.CopyFrom(ctx, pgx.Identifier{"usage_in"}, usageColumns,
		pgx.CopyFromSlice(len(recs), func(i int) ([]any, error) {
			r := &recs[i]
			return []any{
				clean(r.RequestID), r.KeyID, r.Time, clean(r.Model), clean(r.Path), int32(r.Status), r.Stream,
				r.Usage.InputTokens, r.Usage.OutputTokens, r.Usage.CacheCreationInputTokens, r.Usage.CacheReadInputTokens,
				r.Usage.CacheCreation5mTokens, r.Usage.CacheCreation1hTokens, r.Estimated,
				r.Latency.Microseconds(), r.TTFB.Microseconds(),
				clean(r.UpstreamRequestID), clean(r.Upstream), clean(r.SessionID), clean(r.ClientIP), clean(r.ErrorType),
				clean(r.RequestedModel), clean(r.Endpoint), encodeIterations(r.Iterations), r.ServerTools.WebSearchRequests, r.ServerTools.WebFetchRequests,
				clean(r.ServiceTier), clean(r.Speed), clean(r.InferenceGeo), r.Batch,
			}, nil
		}))
	if err != nil {
		return fmt.Errorf("copy usage records: %w", err)
	}
	if _, err := conn.Exec(ctx, applyUsageBatch); err != nil {
		return fmt.Errorf("apply usage records: %w", err)
	}
	done = true
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
	var out []domain.UsageTotals
	if dayAligned(q.From) && dayAligned(q.To) {
		rows, err := s.q.UsageTotalsFromDaily(ctx, pgdb.UsageTotalsFromDailyParams{
			GroupBy: string(q.GroupBy),
			KeyID:   q.KeyID,
			FromDay: dayPtr(q.From),
			ToDay:   dayPtr(q.To),
		})
		if err != nil {
			return nil, fmt.Errorf("usage totals: %w", err)
		}
		for _, r := range rows {
			out = append(out, totals(r.Grp, r.Requests, r.InputTokens, r.OutputTokens, r.CacheCreationInputTokens,
				r.CacheReadInputTokens, r.CacheCreation5mTokens, r.CacheCreation1hTokens))
		}
	} else {
		rows, err := s.q.UsageTotalsFromRecords(ctx, pgdb.UsageTotalsFromRecordsParams{
			GroupBy:  string(q.GroupBy),
			KeyID:    q.KeyID,
			FromTime: timePtr(q.From),
			ToTime:   timePtr(q.To),
		})
		if err != nil {
			return nil, fmt.Errorf("usage totals: %w", err)
		}
		for _, r := range rows {
			out = append(out, totals(r.Grp, r.Requests, r.InputTokens, r.OutputTokens, r.CacheCreationInputTokens,
				r.CacheReadInputTokens, r.CacheCreation5mTokens, r.CacheCreation1hTokens))
		}
	}
	if q.GroupBy == domain.GroupNone && len(out) == 0 {
		out = append(out, domain.UsageTotals{})
	}
	return out, nil
}

// UsageLogs returns records newest first.
func (s *Store) UsageLogs(ctx context.Context, q domain.LogQuery) ([]domain.UsageRecord, error) {
	p := pgdb.UsageLogsParams{KeyID: q.KeyID, FromTime: q.From, ToTime: q.To, MaxRows: limit(q.Limit)}
	if q.Status != nil {
		st := int32(*q.Status)
		p.Status = &st
	}
	if q.After != nil {
		at, id := q.After.Time, q.After.RequestID
		p.AfterTime, p.AfterRequestID = &at, &id
	}
	rows, err := s.q.UsageLogs(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("usage logs: %w", err)
	}
	out := make([]domain.UsageRecord, len(rows))
	for i, r := range rows {
		its, err := decodeIterations(r.Iterations)
		if err != nil {
			return nil, fmt.Errorf("usage record %s: %w", r.RequestID, err)
		}
		out[i] = domain.UsageRecord{
			RequestID:      r.RequestID,
			KeyID:          r.KeyID,
			Time:           r.CreatedAt.UTC(),
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
		}
	}
	return out, nil
}

// clean makes s storable as PostgreSQL text, which refuses NUL bytes and
// invalid UTF-8. Usage text comes from clients (a model name in a JSON body)
// and must never make a batch fail: the writer would retry it forever.
func clean(s string) string {
	if storable(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

// iteration is the stored form of a domain.Iteration, one element of the
// usage_records.iterations JSON array. The SQLite adapter stores the same
// shape, so both engines hold the same text.
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

// encodeIterations returns the stored text of its: the empty string when
// there are none, which keeps the common record small.
func encodeIterations(its []domain.Iteration) string {
	if len(its) == 0 {
		return ""
	}
	out := make([]iteration, len(its))
	for i, it := range its {
		out[i] = iteration{
			Type:                     clean(it.Type),
			Model:                    clean(it.Model),
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

// decodeIterations reads what encodeIterations stored; an empty string or
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

// dayAligned reports whether t is unset or a UTC midnight, so that a range
// bounded by it can be answered from the daily rollup.
func dayAligned(t time.Time) bool {
	return t.IsZero() || t.Equal(t.Truncate(24*time.Hour))
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// dayPtr passes a UTC midnight as a date: pgx encodes a date from the
// value's own zone, which for a non-UTC zone is the wrong day.
func dayPtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	d := t.UTC()
	return &d
}

func totals(group string, requests, in, out, cc, cr, c5m, c1h int64) domain.UsageTotals {
	return domain.UsageTotals{
		Group:    group,
		Requests: requests,
		Usage: domain.Usage{
			InputTokens:              in,
			OutputTokens:             out,
			CacheCreationInputTokens: cc,
			CacheReadInputTokens:     cr,
			CacheCreation5mTokens:    c5m,
			CacheCreation1hTokens:    c1h,
		},
	}
}
