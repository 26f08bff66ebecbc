package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

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

	// applyUsageBatch (see applyUsageSQL) first takes the row locks of the
	// batch's keys in id
	// order, so concurrent batches queue on shared keys instead of
	// deadlocking. It then inserts the staged records that are new and folds
	// exactly those into the daily rollups (per key and model, per upstream
	// and key; per month and key), the rollups of every key (per hour; per
	// day, model and upstream: rows that batches of other keys share, which
	// the lock on the keys does not cover, so each is upserted in the order
	// of its primary key and two batches wait for each other rather than
	// deadlock) and the keys' counters, and commits.
	applyUsageBatch = `
SELECT 1 FROM api_keys WHERE id IN (SELECT key_id FROM usage_in) ORDER BY id FOR NO KEY UPDATE;
WITH ins AS (
    INSERT INTO usage_records
    SELECT * FROM usage_in
    ON CONFLICT (request_id) DO NOTHING
    RETURNING key_id, created_at, model, upstream, status, ttfb_us, input_tokens,
        output_tokens, cache_creation_input_tokens, cache_read_input_tokens,
        cache_creation_5m_tokens, cache_creation_1h_tokens, web_search_requests,
        web_fetch_requests, cost_total, cost_input, cost_output, cost_cache_write_5m,
        cost_cache_write_1h, cost_cache_read, cost_web_search, cost_web_fetch,
        cost_cache_saved
), fine AS (
    -- The batch summed once at the grain of the rollups per key (key, UTC
    -- day, model, upstream); they sum these few rows in turn.
    SELECT key_id, (created_at AT TIME ZONE 'UTC')::date AS day, model, upstream,
        count(*) AS requests,
        sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
        sum(cache_creation_input_tokens) AS cache_creation_input_tokens,
        sum(cache_read_input_tokens) AS cache_read_input_tokens,
        sum(cache_creation_5m_tokens) AS cache_creation_5m_tokens,
        sum(cache_creation_1h_tokens) AS cache_creation_1h_tokens,
        sum(web_search_requests) AS web_search_requests,
        sum(web_fetch_requests) AS web_fetch_requests, sum(cost_total) AS cost_total,
        sum(cost_input) AS cost_input, sum(cost_output) AS cost_output,
        sum(cost_cache_write_5m) AS cost_cache_write_5m,
        sum(cost_cache_write_1h) AS cost_cache_write_1h,
        sum(cost_cache_read) AS cost_cache_read,
        sum(cost_web_search) AS cost_web_search, sum(cost_web_fetch) AS cost_web_fetch,
        sum(cost_cache_saved) AS cost_cache_saved,
        max(created_at) AS last_used_at
    FROM ins
    GROUP BY 1, 2, 3, 4
), daily AS (
    INSERT INTO usage_daily AS d (
        key_id, day, model, requests, input_tokens, output_tokens,
        cache_creation_input_tokens, cache_read_input_tokens, cache_creation_5m_tokens,
        cache_creation_1h_tokens, web_search_requests, web_fetch_requests, cost_total,
        cost_input, cost_output, cost_cache_write_5m, cost_cache_write_1h,
        cost_cache_read, cost_web_search, cost_web_fetch, cost_cache_saved)
    SELECT key_id, day, model,
        sum(requests), sum(input_tokens), sum(output_tokens),
        sum(cache_creation_input_tokens), sum(cache_read_input_tokens),
        sum(cache_creation_5m_tokens), sum(cache_creation_1h_tokens),
        sum(web_search_requests), sum(web_fetch_requests), sum(cost_total),
        sum(cost_input), sum(cost_output), sum(cost_cache_write_5m),
        sum(cost_cache_write_1h), sum(cost_cache_read), sum(cost_web_search),
        sum(cost_web_fetch), sum(cost_cache_saved)
    FROM fine
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
        cost_web_fetch = d.cost_web_fetch + excluded.cost_web_fetch,
        cost_cache_saved = d.cost_cache_saved + excluded.cost_cache_saved
), daily_upstream AS (
    INSERT INTO usage_daily_upstream AS u (
        day, upstream, key_id, requests, input_tokens, output_tokens,
        cache_creation_input_tokens, cache_read_input_tokens, cache_creation_5m_tokens,
        cache_creation_1h_tokens, cost_total, cost_input, cost_output,
        cost_cache_write_5m, cost_cache_write_1h, cost_cache_read, cost_web_search,
        cost_web_fetch, cost_cache_saved)
    SELECT day, upstream, key_id,
        sum(requests), sum(input_tokens), sum(output_tokens),
        sum(cache_creation_input_tokens), sum(cache_read_input_tokens),
        sum(cache_creation_5m_tokens), sum(cache_creation_1h_tokens), sum(cost_total),
        sum(cost_input), sum(cost_output), sum(cost_cache_write_5m),
        sum(cost_cache_write_1h), sum(cost_cache_read), sum(cost_web_search),
        sum(cost_web_fetch), sum(cost_cache_saved)
    FROM fine
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
        cost_web_fetch = u.cost_web_fetch + excluded.cost_web_fetch,
        cost_cache_saved = u.cost_cache_saved + excluded.cost_cache_saved
), monthly_key AS (
    INSERT INTO usage_monthly_key AS m (
        month, key_id, requests, input_tokens, output_tokens,
        cache_creation_input_tokens, cache_read_input_tokens, cache_creation_5m_tokens,
        cache_creation_1h_tokens, cost_total, cost_input, cost_output,
        cost_cache_write_5m, cost_cache_write_1h, cost_cache_read, cost_web_search,
        cost_web_fetch, cost_cache_saved)
    SELECT date_trunc('month', day)::date, key_id,
        sum(requests), sum(input_tokens), sum(output_tokens),
        sum(cache_creation_input_tokens), sum(cache_read_input_tokens),
        sum(cache_creation_5m_tokens), sum(cache_creation_1h_tokens), sum(cost_total),
        sum(cost_input), sum(cost_output), sum(cost_cache_write_5m),
        sum(cost_cache_write_1h), sum(cost_cache_read), sum(cost_web_search),
        sum(cost_web_fetch), sum(cost_cache_saved)
    FROM fine
    GROUP BY 1, 2
    ON CONFLICT (month, key_id) DO UPDATE SET
        requests = m.requests + excluded.requests,
        input_tokens = m.input_tokens + excluded.input_tokens,
        output_tokens = m.output_tokens + excluded.output_tokens,
        cache_creation_input_tokens = m.cache_creation_input_tokens + excluded.cache_creation_input_tokens,
        cache_read_input_tokens = m.cache_read_input_tokens + excluded.cache_read_input_tokens,
        cache_creation_5m_tokens = m.cache_creation_5m_tokens + excluded.cache_creation_5m_tokens,
        cache_creation_1h_tokens = m.cache_creation_1h_tokens + excluded.cache_creation_1h_tokens,
        cost_total = m.cost_total + excluded.cost_total,
        cost_input = m.cost_input + excluded.cost_input,
        cost_output = m.cost_output + excluded.cost_output,
        cost_cache_write_5m = m.cost_cache_write_5m + excluded.cost_cache_write_5m,
        cost_cache_write_1h = m.cost_cache_write_1h + excluded.cost_cache_write_1h,
        cost_cache_read = m.cost_cache_read + excluded.cost_cache_read,
        cost_web_search = m.cost_web_search + excluded.cost_web_search,
        cost_web_fetch = m.cost_web_fetch + excluded.cost_web_fetch,
        cost_cache_saved = m.cost_cache_saved + excluded.cost_cache_saved
), daily_global AS (
    INSERT INTO usage_daily_global AS g (
        day, model, upstream, requests, input_tokens, output_tokens,
        cache_creation_input_tokens, cache_read_input_tokens, cache_creation_5m_tokens,
        cache_creation_1h_tokens, cost_total, cost_input, cost_output,
        cost_cache_write_5m, cost_cache_write_1h, cost_cache_read, cost_web_search,
        cost_web_fetch, cost_cache_saved)
    SELECT day, model, upstream,
        sum(requests), sum(input_tokens), sum(output_tokens),
        sum(cache_creation_input_tokens), sum(cache_read_input_tokens),
        sum(cache_creation_5m_tokens), sum(cache_creation_1h_tokens), sum(cost_total),
        sum(cost_input), sum(cost_output), sum(cost_cache_write_5m),
        sum(cost_cache_write_1h), sum(cost_cache_read), sum(cost_web_search),
        sum(cost_web_fetch), sum(cost_cache_saved)
    FROM fine
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (day, model, upstream) DO UPDATE SET
        requests = g.requests + excluded.requests,
        input_tokens = g.input_tokens + excluded.input_tokens,
        output_tokens = g.output_tokens + excluded.output_tokens,
        cache_creation_input_tokens = g.cache_creation_input_tokens + excluded.cache_creation_input_tokens,
        cache_read_input_tokens = g.cache_read_input_tokens + excluded.cache_read_input_tokens,
        cache_creation_5m_tokens = g.cache_creation_5m_tokens + excluded.cache_creation_5m_tokens,
        cache_creation_1h_tokens = g.cache_creation_1h_tokens + excluded.cache_creation_1h_tokens,
        cost_total = g.cost_total + excluded.cost_total,
        cost_input = g.cost_input + excluded.cost_input,
        cost_output = g.cost_output + excluded.cost_output,
        cost_cache_write_5m = g.cost_cache_write_5m + excluded.cost_cache_write_5m,
        cost_cache_write_1h = g.cost_cache_write_1h + excluded.cost_cache_write_1h,
        cost_cache_read = g.cost_cache_read + excluded.cost_cache_read,
        cost_web_search = g.cost_web_search + excluded.cost_web_search,
        cost_web_fetch = g.cost_web_fetch + excluded.cost_web_fetch,
        cost_cache_saved = g.cost_cache_saved + excluded.cost_cache_saved
), hourly_fine AS (
    -- The inserted records per hour, status class (ok, 4xx, 429, 5xx,
    -- 529), refusal and TTFB bucket of domain.TTFBBucketBounds (upper
    -- bounds in ms, inclusive: width_bucket's thresholds are each bound +
    -- 1 µs; -1 without a first byte), pivoted into usage_hourly's columns
    -- below.
    SELECT date_trunc('hour', created_at, 'UTC') AS hour,
        CASE WHEN status < 400 THEN 0 WHEN status = 429 THEN 2 WHEN status < 500 THEN 1
            WHEN status = 529 THEN 4 ELSE 3 END AS cls,
        status >= 400 AND upstream = '' AS refused,
        CASE WHEN ttfb_us > 0 THEN width_bucket(ttfb_us, ARRAY[10001, 16001, 25001, 40001, 63001, 100001, 160001, 250001, 400001, 630001, 1000001, 1600001, 2500001, 4000001, 6300001, 10000001, 16000001, 25000001, 40000001, 63000001]::bigint[])
            ELSE -1 END AS b,
        count(*) AS requests,
        sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
        sum(cache_creation_input_tokens) AS cache_creation_input_tokens,
        sum(cache_read_input_tokens) AS cache_read_input_tokens,
        sum(cache_creation_5m_tokens) AS cache_creation_5m_tokens,
        sum(cache_creation_1h_tokens) AS cache_creation_1h_tokens,
        sum(web_search_requests) AS web_search_requests,
        sum(web_fetch_requests) AS web_fetch_requests, sum(cost_total) AS cost_total,
        sum(cost_input) AS cost_input, sum(cost_output) AS cost_output,
        sum(cost_cache_write_5m) AS cost_cache_write_5m,
        sum(cost_cache_write_1h) AS cost_cache_write_1h,
        sum(cost_cache_read) AS cost_cache_read,
        sum(cost_web_search) AS cost_web_search, sum(cost_web_fetch) AS cost_web_fetch,
        sum(cost_cache_saved) AS cost_cache_saved
    FROM ins
    GROUP BY 1, 2, 3, 4
), hourly_slow AS (
    -- Only when some records of the batch were stored already: the hours
    -- of those inserted. (PostgreSQL then computes hourly_fine; otherwise
    -- it never reads it.)
    INSERT INTO usage_hourly AS h (
        hour, requests, input_tokens, output_tokens, cache_creation_input_tokens,
        cache_read_input_tokens, cache_creation_5m_tokens, cache_creation_1h_tokens,
        web_search_requests, web_fetch_requests, cost_total, cost_input, cost_output,
        cost_cache_write_5m, cost_cache_write_1h, cost_cache_read, cost_web_search,
        cost_web_fetch, cost_cache_saved, status_ok, status_client_error,
        status_rate_limited, status_server_error, status_overloaded, refused, ttfb_b00,
        ttfb_b01, ttfb_b02, ttfb_b03, ttfb_b04, ttfb_b05, ttfb_b06, ttfb_b07, ttfb_b08,
        ttfb_b09, ttfb_b10, ttfb_b11, ttfb_b12, ttfb_b13, ttfb_b14, ttfb_b15, ttfb_b16,
        ttfb_b17, ttfb_b18, ttfb_b19, ttfb_b20, ttfb_count)
    SELECT hour,
        sum(requests), sum(input_tokens), sum(output_tokens),
        sum(cache_creation_input_tokens), sum(cache_read_input_tokens),
        sum(cache_creation_5m_tokens), sum(cache_creation_1h_tokens),
        sum(web_search_requests), sum(web_fetch_requests), sum(cost_total),
        sum(cost_input), sum(cost_output), sum(cost_cache_write_5m),
        sum(cost_cache_write_1h), sum(cost_cache_read), sum(cost_web_search),
        sum(cost_web_fetch), sum(cost_cache_saved),
        coalesce(sum(requests) FILTER (WHERE cls = 0), 0),
        coalesce(sum(requests) FILTER (WHERE cls = 1), 0),
        coalesce(sum(requests) FILTER (WHERE cls = 2), 0),
        coalesce(sum(requests) FILTER (WHERE cls = 3), 0),
        coalesce(sum(requests) FILTER (WHERE cls = 4), 0),
        coalesce(sum(requests) FILTER (WHERE refused), 0),
        coalesce(sum(requests) FILTER (WHERE b = 0), 0),
        coalesce(sum(requests) FILTER (WHERE b = 1), 0),
        coalesce(sum(requests) FILTER (WHERE b = 2), 0),
        coalesce(sum(requests) FILTER (WHERE b = 3), 0),
        coalesce(sum(requests) FILTER (WHERE b = 4), 0),
        coalesce(sum(requests) FILTER (WHERE b = 5), 0),
        coalesce(sum(requests) FILTER (WHERE b = 6), 0),
        coalesce(sum(requests) FILTER (WHERE b = 7), 0),
        coalesce(sum(requests) FILTER (WHERE b = 8), 0),
        coalesce(sum(requests) FILTER (WHERE b = 9), 0),
        coalesce(sum(requests) FILTER (WHERE b = 10), 0),
        coalesce(sum(requests) FILTER (WHERE b = 11), 0),
        coalesce(sum(requests) FILTER (WHERE b = 12), 0),
        coalesce(sum(requests) FILTER (WHERE b = 13), 0),
        coalesce(sum(requests) FILTER (WHERE b = 14), 0),
        coalesce(sum(requests) FILTER (WHERE b = 15), 0),
        coalesce(sum(requests) FILTER (WHERE b = 16), 0),
        coalesce(sum(requests) FILTER (WHERE b = 17), 0),
        coalesce(sum(requests) FILTER (WHERE b = 18), 0),
        coalesce(sum(requests) FILTER (WHERE b = 19), 0),
        coalesce(sum(requests) FILTER (WHERE b = 20), 0),
        coalesce(sum(requests) FILTER (WHERE b >= 0), 0)
    FROM hourly_fine
    WHERE (SELECT count(*) FROM ins) <> {{records}}
    GROUP BY 1
    ORDER BY 1
    ON CONFLICT (hour) DO UPDATE SET
        requests = h.requests + excluded.requests,
        input_tokens = h.input_tokens + excluded.input_tokens,
        output_tokens = h.output_tokens + excluded.output_tokens,
        cache_creation_input_tokens = h.cache_creation_input_tokens + excluded.cache_creation_input_tokens,
        cache_read_input_tokens = h.cache_read_input_tokens + excluded.cache_read_input_tokens,
        cache_creation_5m_tokens = h.cache_creation_5m_tokens + excluded.cache_creation_5m_tokens,
        cache_creation_1h_tokens = h.cache_creation_1h_tokens + excluded.cache_creation_1h_tokens,
        web_search_requests = h.web_search_requests + excluded.web_search_requests,
        web_fetch_requests = h.web_fetch_requests + excluded.web_fetch_requests,
        cost_total = h.cost_total + excluded.cost_total,
        cost_input = h.cost_input + excluded.cost_input,
        cost_output = h.cost_output + excluded.cost_output,
        cost_cache_write_5m = h.cost_cache_write_5m + excluded.cost_cache_write_5m,
        cost_cache_write_1h = h.cost_cache_write_1h + excluded.cost_cache_write_1h,
        cost_cache_read = h.cost_cache_read + excluded.cost_cache_read,
        cost_web_search = h.cost_web_search + excluded.cost_web_search,
        cost_web_fetch = h.cost_web_fetch + excluded.cost_web_fetch,
        cost_cache_saved = h.cost_cache_saved + excluded.cost_cache_saved,
        status_ok = h.status_ok + excluded.status_ok,
        status_client_error = h.status_client_error + excluded.status_client_error,
        status_rate_limited = h.status_rate_limited + excluded.status_rate_limited,
        status_server_error = h.status_server_error + excluded.status_server_error,
        status_overloaded = h.status_overloaded + excluded.status_overloaded,
        refused = h.refused + excluded.refused,
        ttfb_b00 = h.ttfb_b00 + excluded.ttfb_b00,
        ttfb_b01 = h.ttfb_b01 + excluded.ttfb_b01,
        ttfb_b02 = h.ttfb_b02 + excluded.ttfb_b02,
        ttfb_b03 = h.ttfb_b03 + excluded.ttfb_b03,
        ttfb_b04 = h.ttfb_b04 + excluded.ttfb_b04,
        ttfb_b05 = h.ttfb_b05 + excluded.ttfb_b05,
        ttfb_b06 = h.ttfb_b06 + excluded.ttfb_b06,
        ttfb_b07 = h.ttfb_b07 + excluded.ttfb_b07,
        ttfb_b08 = h.ttfb_b08 + excluded.ttfb_b08,
        ttfb_b09 = h.ttfb_b09 + excluded.ttfb_b09,
        ttfb_b10 = h.ttfb_b10 + excluded.ttfb_b10,
        ttfb_b11 = h.ttfb_b11 + excluded.ttfb_b11,
        ttfb_b12 = h.ttfb_b12 + excluded.ttfb_b12,
        ttfb_b13 = h.ttfb_b13 + excluded.ttfb_b13,
        ttfb_b14 = h.ttfb_b14 + excluded.ttfb_b14,
        ttfb_b15 = h.ttfb_b15 + excluded.ttfb_b15,
        ttfb_b16 = h.ttfb_b16 + excluded.ttfb_b16,
        ttfb_b17 = h.ttfb_b17 + excluded.ttfb_b17,
        ttfb_b18 = h.ttfb_b18 + excluded.ttfb_b18,
        ttfb_b19 = h.ttfb_b19 + excluded.ttfb_b19,
        ttfb_b20 = h.ttfb_b20 + excluded.ttfb_b20,
        ttfb_count = h.ttfb_count + excluded.ttfb_count
), hourly AS (
    -- Every record of the batch was inserted (nearly always): the hours
    -- summed in Go (sqlstore.HourlyRollup), in order.
    INSERT INTO usage_hourly AS h (
        hour, requests, input_tokens, output_tokens, cache_creation_input_tokens,
        cache_read_input_tokens, cache_creation_5m_tokens, cache_creation_1h_tokens,
        web_search_requests, web_fetch_requests, cost_total, cost_input, cost_output,
        cost_cache_write_5m, cost_cache_write_1h, cost_cache_read, cost_web_search,
        cost_web_fetch, cost_cache_saved, status_ok, status_client_error,
        status_rate_limited, status_server_error, status_overloaded, refused, ttfb_b00,
        ttfb_b01, ttfb_b02, ttfb_b03, ttfb_b04, ttfb_b05, ttfb_b06, ttfb_b07, ttfb_b08,
        ttfb_b09, ttfb_b10, ttfb_b11, ttfb_b12, ttfb_b13, ttfb_b14, ttfb_b15, ttfb_b16,
        ttfb_b17, ttfb_b18, ttfb_b19, ttfb_b20, ttfb_count)
    SELECT * FROM (VALUES
        {{hours}}
    ) AS v
    WHERE (SELECT count(*) FROM ins) = {{records}}
    ON CONFLICT (hour) DO UPDATE SET
        requests = h.requests + excluded.requests,
        input_tokens = h.input_tokens + excluded.input_tokens,
        output_tokens = h.output_tokens + excluded.output_tokens,
        cache_creation_input_tokens = h.cache_creation_input_tokens + excluded.cache_creation_input_tokens,
        cache_read_input_tokens = h.cache_read_input_tokens + excluded.cache_read_input_tokens,
        cache_creation_5m_tokens = h.cache_creation_5m_tokens + excluded.cache_creation_5m_tokens,
        cache_creation_1h_tokens = h.cache_creation_1h_tokens + excluded.cache_creation_1h_tokens,
        web_search_requests = h.web_search_requests + excluded.web_search_requests,
        web_fetch_requests = h.web_fetch_requests + excluded.web_fetch_requests,
        cost_total = h.cost_total + excluded.cost_total,
        cost_input = h.cost_input + excluded.cost_input,
        cost_output = h.cost_output + excluded.cost_output,
        cost_cache_write_5m = h.cost_cache_write_5m + excluded.cost_cache_write_5m,
        cost_cache_write_1h = h.cost_cache_write_1h + excluded.cost_cache_write_1h,
        cost_cache_read = h.cost_cache_read + excluded.cost_cache_read,
        cost_web_search = h.cost_web_search + excluded.cost_web_search,
        cost_web_fetch = h.cost_web_fetch + excluded.cost_web_fetch,
        cost_cache_saved = h.cost_cache_saved + excluded.cost_cache_saved,
        status_ok = h.status_ok + excluded.status_ok,
        status_client_error = h.status_client_error + excluded.status_client_error,
        status_rate_limited = h.status_rate_limited + excluded.status_rate_limited,
        status_server_error = h.status_server_error + excluded.status_server_error,
        status_overloaded = h.status_overloaded + excluded.status_overloaded,
        refused = h.refused + excluded.refused,
        ttfb_b00 = h.ttfb_b00 + excluded.ttfb_b00,
        ttfb_b01 = h.ttfb_b01 + excluded.ttfb_b01,
        ttfb_b02 = h.ttfb_b02 + excluded.ttfb_b02,
        ttfb_b03 = h.ttfb_b03 + excluded.ttfb_b03,
        ttfb_b04 = h.ttfb_b04 + excluded.ttfb_b04,
        ttfb_b05 = h.ttfb_b05 + excluded.ttfb_b05,
        ttfb_b06 = h.ttfb_b06 + excluded.ttfb_b06,
        ttfb_b07 = h.ttfb_b07 + excluded.ttfb_b07,
        ttfb_b08 = h.ttfb_b08 + excluded.ttfb_b08,
        ttfb_b09 = h.ttfb_b09 + excluded.ttfb_b09,
        ttfb_b10 = h.ttfb_b10 + excluded.ttfb_b10,
        ttfb_b11 = h.ttfb_b11 + excluded.ttfb_b11,
        ttfb_b12 = h.ttfb_b12 + excluded.ttfb_b12,
        ttfb_b13 = h.ttfb_b13 + excluded.ttfb_b13,
        ttfb_b14 = h.ttfb_b14 + excluded.ttfb_b14,
        ttfb_b15 = h.ttfb_b15 + excluded.ttfb_b15,
        ttfb_b16 = h.ttfb_b16 + excluded.ttfb_b16,
        ttfb_b17 = h.ttfb_b17 + excluded.ttfb_b17,
        ttfb_b18 = h.ttfb_b18 + excluded.ttfb_b18,
        ttfb_b19 = h.ttfb_b19 + excluded.ttfb_b19,
        ttfb_b20 = h.ttfb_b20 + excluded.ttfb_b20,
        ttfb_count = h.ttfb_count + excluded.ttfb_count
), keys AS (
    UPDATE api_keys AS k SET
        tokens_used = k.tokens_used + s.total,
        last_used_at = GREATEST(k.last_used_at, s.last_used_at)
    FROM (
        SELECT key_id,
            sum(input_tokens + output_tokens + cache_creation_input_tokens + cache_read_input_tokens)::bigint AS total,
            max(last_used_at) AS last_used_at
        FROM fine
        GROUP BY key_id
    ) AS s
    -- The array makes PostgreSQL find the batch's keys by their index: it
    -- expects the batch to hold far more keys than it does, and would scan
    -- every key of a relay with many (8 ms a batch at 10,000 keys).
    WHERE k.id = s.key_id AND k.id = ANY (ARRAY(SELECT key_id FROM fine))
)
SELECT count(*) FROM ins;
COMMIT`
)

// applyUsageSQL is applyUsageBatch for recs: the hours they add to
// usage_hourly, summed in Go (all of them, as if none was stored already),
// and how many they are, so that the statement can tell whether those
// sums hold. Only integers and timestamps are written into the text.
func applyUsageSQL(recs []domain.UsageRecord) string {
	hours := sqlstore.HourlyRollup{}
	for i := range recs {
		hours.AddRecord(&recs[i])
	}
	values := hours.ValuesSQL(func(t time.Time) string { return "'" + t.Format(time.RFC3339) + "'::timestamptz" })
	return strings.NewReplacer("{{hours}}", values, "{{records}}", strconv.Itoa(len(recs))).Replace(applyUsageBatch)
}

var usageColumns = []string{
	"request_id", "key_id", "created_at", "model", "path", "status", "stream",
	"input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
	"cache_creation_5m_tokens", "cache_creation_1h_tokens", "estimated", "latency_us", "ttfb_us",
	"upstream_request_id", "upstream", "session_id", "client_ip", "error_type",
	"requested_model", "endpoint", "iterations", "web_search_requests", "web_fetch_requests",
	"service_tier", "speed", "inference_geo", "batch",
	"cost_total", "cost_input", "cost_output", "cost_cache_write_5m", "cost_cache_write_1h", "cost_cache_read",
	"cost_web_search", "cost_web_fetch", "price_version", "cost_fallback_5m", "cost_unpriced", "cost_detail",
	"cost_cache_saved", "attempts", "tried_upstreams",
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
				// The key id as pgtype.UUID: google/uuid's driver.Valuer
				// would format it as text for pgx to parse back.
				clean(r.RequestID), pgtype.UUID{Bytes: r.KeyID, Valid: true}, r.Time, clean(r.Model), clean(r.Path), int32(r.Status), r.Stream,
				r.Usage.InputTokens, r.Usage.OutputTokens, r.Usage.CacheCreationInputTokens, r.Usage.CacheReadInputTokens,
				r.Usage.CacheCreation5mTokens, r.Usage.CacheCreation1hTokens, r.Estimated,
				r.Latency.Microseconds(), r.TTFB.Microseconds(),
				clean(r.UpstreamRequestID), clean(r.Upstream), clean(r.SessionID), clean(r.ClientIP), clean(r.ErrorType),
				clean(r.RequestedModel), clean(r.Endpoint), sqlstore.EncodeIterations(r.Iterations), r.ServerTools.WebSearchRequests, r.ServerTools.WebFetchRequests,
				clean(r.ServiceTier), clean(r.Speed), clean(r.InferenceGeo), r.Batch,
				int64(c.Total), int64(c.Input), int64(c.Output), int64(c.CacheWrite5m), int64(c.CacheWrite1h), int64(c.CacheRead),
				int64(c.WebSearch), int64(c.WebFetch), clean(c.PriceVersion), c.Fallback5m, c.Unpriced, sqlstore.EncodeCostDetail(c.Detail),
				int64(c.CacheSaved), sqlstore.StoredAttempts(r.Attempts), sqlstore.EncodeTriedUpstreams(r.TriedUpstreams),
			}, nil
		}))
	if err != nil {
		return fmt.Errorf("copy usage records: %w", err)
	}
	if _, err := conn.Exec(ctx, applyUsageSQL(recs)); err != nil {
		return fmt.Errorf("apply usage records: %w", err)
	}
	done = true
	return nil
}
