package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relaystation/relay/adapters/sqlstore"
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
	// exactly those into the daily rollups (per key and model, per upstream
	// and key) and the keys' counters, and commits.
	applyUsageBatch = `
SELECT 1 FROM api_keys WHERE id IN (SELECT key_id FROM usage_in) ORDER BY id FOR NO KEY UPDATE;
WITH ins AS (
    INSERT INTO usage_records
    SELECT * FROM usage_in
    ON CONFLICT (request_id) DO NOTHING
    RETURNING key_id, created_at, model, upstream, input_tokens, output_tokens,
        cache_creation_input_tokens, cache_read_input_tokens,
        cache_creation_5m_tokens, cache_creation_1h_tokens,
        web_search_requests, web_fetch_requests,
        cost_total, cost_input, cost_output, cost_cache_write_5m,
        cost_cache_write_1h, cost_cache_read, cost_web_search, cost_web_fetch
), daily AS (
    INSERT INTO usage_daily AS d (
        key_id, day, model, requests, input_tokens, output_tokens,
        cache_creation_input_tokens, cache_read_input_tokens,
        cache_creation_5m_tokens, cache_creation_1h_tokens,
        web_search_requests, web_fetch_requests,
        cost_total, cost_input, cost_output, cost_cache_write_5m,
        cost_cache_write_1h, cost_cache_read, cost_web_search, cost_web_fetch)
    SELECT key_id, (created_at AT TIME ZONE 'UTC')::date, model, count(*),
        sum(input_tokens), sum(output_tokens),
        sum(cache_creation_input_tokens), sum(cache_read_input_tokens),
        sum(cache_creation_5m_tokens), sum(cache_creation_1h_tokens),
        sum(web_search_requests), sum(web_fetch_requests),
        sum(cost_total), sum(cost_input), sum(cost_output), sum(cost_cache_write_5m),
        sum(cost_cache_write_1h), sum(cost_cache_read), sum(cost_web_search), sum(cost_web_fetch)
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
        web_fetch_requests = d.web_fetch_requests + excluded.web_fetch_requests,
        cost_total = d.cost_total + excluded.cost_total,
        cost_input = d.cost_input + excluded.cost_input,
        cost_output = d.cost_output + excluded.cost_output,
        cost_cache_write_5m = d.cost_cache_write_5m + excluded.cost_cache_write_5m,
        cost_cache_write_1h = d.cost_cache_write_1h + excluded.cost_cache_write_1h,
        cost_cache_read = d.cost_cache_read + excluded.cost_cache_read,
        cost_web_search = d.cost_web_search + excluded.cost_web_search,
        cost_web_fetch = d.cost_web_fetch + excluded.cost_web_fetch
), daily_upstream AS (
    INSERT INTO usage_daily_upstream AS u (
        day, upstream, key_id, requests, input_tokens, output_tokens,
        cache_creation_input_tokens, cache_read_input_tokens,
        cache_creation_5m_tokens, cache_creation_1h_tokens,
        cost_total, cost_input, cost_output, cost_cache_write_5m,
        cost_cache_write_1h, cost_cache_read, cost_web_search, cost_web_fetch)
    SELECT (created_at AT TIME ZONE 'UTC')::date, upstream, key_id, count(*),
        sum(input_tokens), sum(output_tokens),
        sum(cache_creation_input_tokens), sum(cache_read_input_tokens),
        sum(cache_creation_5m_tokens), sum(cache_creation_1h_tokens),
        sum(cost_total), sum(cost_input), sum(cost_output), sum(cost_cache_write_5m),
        sum(cost_cache_write_1h), sum(cost_cache_read), sum(cost_web_search), sum(cost_web_fetch)
    FROM ins
    GROUP BY 1, 2, 3
    ON CONFLICT (day, upstream, key_id) DO UPDATE SET
        requests = u.requests + excluded.requests,
        input_tokens = u.input_tokens + excluded.input_tokens,
        output_tokens = u.output_tokens + excluded.output_tokens,
        cache_creation_input_tokens = u.cache_creation_input_tokens + excluded.cache_creation_input_tokens,
        cache_read_input_tokens = u.cache_read_input_tokens + excluded.cache_read_input_tokens,
        cache_creation_5m_tokens = u.cache_creation_5m_tokens + excluded.cache_creation_5m_tokens,
        cache_creation_1h_tokens = u.cache_creation_1h_tokens + excluded.cache_creation_1h_tokens,
        cost_total = u.cost_total + excluded.cost_total,
        cost_input = u.cost_input + excluded.cost_input,
        cost_output = u.cost_output + excluded.cost_output,
        cost_cache_write_5m = u.cost_cache_write_5m + excluded.cost_cache_write_5m,
        cost_cache_write_1h = u.cost_cache_write_1h + excluded.cost_cache_write_1h,
        cost_cache_read = u.cost_cache_read + excluded.cost_cache_read,
        cost_web_search = u.cost_web_search + excluded.cost_web_search,
        cost_web_fetch = u.cost_web_fetch + excluded.cost_web_fetch
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
	"cost_total", "cost_input", "cost_output", "cost_cache_write_5m", "cost_cache_write_1h", "cost_cache_read",
	"cost_web_search", "cost_web_fetch", "price_version", "cost_fallback_5m", "cost_unpriced", "cost_detail",
}

// InsertUsage writes recs and their aggregates in one transaction, retrying
// a batch that lost a lock race to a concurrent one.
func (e *engine) InsertUsage(ctx context.Context, recs []domain.UsageRecord) error {
	for attempt := 1; ; attempt++ {
		err := e.insertUsageOnce(ctx, recs)
		if err == nil || !retryable(err) || attempt == maxTxAttempts {
			return err
		}
		e.log.Debug("usage batch lost a lock race, retrying", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt) * time.Duration(1+rand.IntN(5)) * time.Millisecond):
		}
	}
}

func (e *engine) insertUsageOnce(ctx context.Context, recs []domain.UsageRecord) (err error) {
	pc, err := e.pool.Acquire(ctx)
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
	clean := sqlstore.Clean
	_, err = conn.CopyFrom(ctx, pgx.Identifier{"usage_in"}, usageColumns,
		pgx.CopyFromSlice(len(recs), func(i int) ([]any, error) {
			r := &recs[i]
			c := &r.Cost
			return []any{
				clean(r.RequestID), r.KeyID, r.Time, clean(r.Model), clean(r.Path), int32(r.Status), r.Stream,
				r.Usage.InputTokens, r.Usage.OutputTokens, r.Usage.CacheCreationInputTokens, r.Usage.CacheReadInputTokens,
				r.Usage.CacheCreation5mTokens, r.Usage.CacheCreation1hTokens, r.Estimated,
				r.Latency.Microseconds(), r.TTFB.Microseconds(),
				clean(r.UpstreamRequestID), clean(r.Upstream), clean(r.SessionID), clean(r.ClientIP), clean(r.ErrorType),
				clean(r.RequestedModel), clean(r.Endpoint), sqlstore.EncodeIterations(r.Iterations), r.ServerTools.WebSearchRequests, r.ServerTools.WebFetchRequests,
				clean(r.ServiceTier), clean(r.Speed), clean(r.InferenceGeo), r.Batch,
				int64(c.Total), int64(c.Input), int64(c.Output), int64(c.CacheWrite5m), int64(c.CacheWrite1h), int64(c.CacheRead),
				int64(c.WebSearch), int64(c.WebFetch), clean(c.PriceVersion), c.Fallback5m, c.Unpriced, sqlstore.EncodeCostDetail(c.Detail),
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
