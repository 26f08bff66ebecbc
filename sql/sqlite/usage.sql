-- name: UpsertUsageDaily :exec
INSERT INTO usage_daily (
    key_id, day, model, requests, input_tokens, output_tokens,
    cache_creation_input_tokens, cache_read_input_tokens,
    cache_creation_5m_tokens, cache_creation_1h_tokens,
    web_search_requests, web_fetch_requests,
    cost_total, cost_input, cost_output, cost_cache_write_5m,
    cost_cache_write_1h, cost_cache_read, cost_web_search, cost_web_fetch,
    cost_cache_saved
) VALUES (
    ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
)
ON CONFLICT (key_id, day, model) DO UPDATE SET
    requests = requests + excluded.requests,
    input_tokens = input_tokens + excluded.input_tokens,
    output_tokens = output_tokens + excluded.output_tokens,
    cache_creation_input_tokens = cache_creation_input_tokens + excluded.cache_creation_input_tokens,
    cache_read_input_tokens = cache_read_input_tokens + excluded.cache_read_input_tokens,
    cache_creation_5m_tokens = cache_creation_5m_tokens + excluded.cache_creation_5m_tokens,
    cache_creation_1h_tokens = cache_creation_1h_tokens + excluded.cache_creation_1h_tokens,
    web_search_requests = web_search_requests + excluded.web_search_requests,
    web_fetch_requests = web_fetch_requests + excluded.web_fetch_requests,
    cost_total = cost_total + excluded.cost_total,
    cost_input = cost_input + excluded.cost_input,
    cost_output = cost_output + excluded.cost_output,
    cost_cache_write_5m = cost_cache_write_5m + excluded.cost_cache_write_5m,
    cost_cache_write_1h = cost_cache_write_1h + excluded.cost_cache_write_1h,
    cost_cache_read = cost_cache_read + excluded.cost_cache_read,
    cost_web_search = cost_web_search + excluded.cost_web_search,
    cost_web_fetch = cost_web_fetch + excluded.cost_web_fetch,
    cost_cache_saved = cost_cache_saved + excluded.cost_cache_saved;

-- usage_daily_upstream, usage_daily_global and usage_monthly_key are
-- upserted many rows per statement by adapters/sqlite (upsertSums): sqlc
-- cannot express a VALUES list of variable length.

-- UpsertUsageHourly adds one hour's sums of a batch to the hourly rollup.
-- name: UpsertUsageHourly :exec
INSERT INTO usage_hourly (
    hour, requests, input_tokens, output_tokens, cache_creation_input_tokens,
    cache_read_input_tokens, cache_creation_5m_tokens,
    cache_creation_1h_tokens, web_search_requests, web_fetch_requests,
    cost_total, cost_input, cost_output, cost_cache_write_5m,
    cost_cache_write_1h, cost_cache_read, cost_web_search, cost_web_fetch,
    cost_cache_saved, status_ok, status_client_error, status_rate_limited,
    status_server_error, status_overloaded, refused, ttfb_b00, ttfb_b01,
    ttfb_b02, ttfb_b03, ttfb_b04, ttfb_b05, ttfb_b06, ttfb_b07, ttfb_b08,
    ttfb_b09, ttfb_b10, ttfb_b11, ttfb_b12, ttfb_b13, ttfb_b14, ttfb_b15,
    ttfb_b16, ttfb_b17, ttfb_b18, ttfb_b19, ttfb_b20, ttfb_count
) VALUES (
    ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
)
ON CONFLICT (hour) DO UPDATE SET
    requests = requests + excluded.requests,
    input_tokens = input_tokens + excluded.input_tokens,
    output_tokens = output_tokens + excluded.output_tokens,
    cache_creation_input_tokens = cache_creation_input_tokens + excluded.cache_creation_input_tokens,
    cache_read_input_tokens = cache_read_input_tokens + excluded.cache_read_input_tokens,
    cache_creation_5m_tokens = cache_creation_5m_tokens + excluded.cache_creation_5m_tokens,
    cache_creation_1h_tokens = cache_creation_1h_tokens + excluded.cache_creation_1h_tokens,
    web_search_requests = web_search_requests + excluded.web_search_requests,
    web_fetch_requests = web_fetch_requests + excluded.web_fetch_requests,
    cost_total = cost_total + excluded.cost_total,
    cost_input = cost_input + excluded.cost_input,
    cost_output = cost_output + excluded.cost_output,
    cost_cache_write_5m = cost_cache_write_5m + excluded.cost_cache_write_5m,
    cost_cache_write_1h = cost_cache_write_1h + excluded.cost_cache_write_1h,
    cost_cache_read = cost_cache_read + excluded.cost_cache_read,
    cost_web_search = cost_web_search + excluded.cost_web_search,
    cost_web_fetch = cost_web_fetch + excluded.cost_web_fetch,
    cost_cache_saved = cost_cache_saved + excluded.cost_cache_saved,
    status_ok = status_ok + excluded.status_ok,
    status_client_error = status_client_error + excluded.status_client_error,
    status_rate_limited = status_rate_limited + excluded.status_rate_limited,
    status_server_error = status_server_error + excluded.status_server_error,
    status_overloaded = status_overloaded + excluded.status_overloaded,
    refused = refused + excluded.refused,
    ttfb_b00 = ttfb_b00 + excluded.ttfb_b00,
    ttfb_b01 = ttfb_b01 + excluded.ttfb_b01,
    ttfb_b02 = ttfb_b02 + excluded.ttfb_b02,
    ttfb_b03 = ttfb_b03 + excluded.ttfb_b03,
    ttfb_b04 = ttfb_b04 + excluded.ttfb_b04,
    ttfb_b05 = ttfb_b05 + excluded.ttfb_b05,
    ttfb_b06 = ttfb_b06 + excluded.ttfb_b06,
    ttfb_b07 = ttfb_b07 + excluded.ttfb_b07,
    ttfb_b08 = ttfb_b08 + excluded.ttfb_b08,
    ttfb_b09 = ttfb_b09 + excluded.ttfb_b09,
    ttfb_b10 = ttfb_b10 + excluded.ttfb_b10,
    ttfb_b11 = ttfb_b11 + excluded.ttfb_b11,
    ttfb_b12 = ttfb_b12 + excluded.ttfb_b12,
    ttfb_b13 = ttfb_b13 + excluded.ttfb_b13,
    ttfb_b14 = ttfb_b14 + excluded.ttfb_b14,
    ttfb_b15 = ttfb_b15 + excluded.ttfb_b15,
    ttfb_b16 = ttfb_b16 + excluded.ttfb_b16,
    ttfb_b17 = ttfb_b17 + excluded.ttfb_b17,
    ttfb_b18 = ttfb_b18 + excluded.ttfb_b18,
    ttfb_b19 = ttfb_b19 + excluded.ttfb_b19,
    ttfb_b20 = ttfb_b20 + excluded.ttfb_b20,
    ttfb_count = ttfb_count + excluded.ttfb_count;

-- UsageLogs and its variants return a page of records, newest first. The
-- time range and the cursor are always bound (the store passes the widest
-- ones when the caller sets none), so they are ranges of the index a
-- variant scans. The variants differ only in the one condition they repeat
-- as a plain equality, which names the index that drives them: SQLite plans
-- a statement once, and cannot use an index for a condition that is
-- written `x IS NULL OR ...`. The store picks the variant (see
-- sqlstore.UsageQueries). This one scans usage_records_time_idx.
-- name: UsageLogs :many
SELECT * FROM usage_records
WHERE (CAST(sqlc.narg(key_id) AS UUID) IS NULL OR key_id = sqlc.narg(key_id))
  AND (CAST(sqlc.narg(status) AS INTEGER) IS NULL OR status = sqlc.narg(status))
  AND (CAST(sqlc.narg(model) AS TEXT) IS NULL OR model = sqlc.narg(model))
  AND (CAST(sqlc.narg(upstream) AS TEXT) IS NULL OR upstream = sqlc.narg(upstream))
  AND (NOT CAST(sqlc.arg(refusals_only) AS BOOLEAN) OR (status >= 400 AND upstream = ''))
  AND created_at >= CAST(sqlc.arg(from_time) AS TIMESTAMP)
  AND (created_at, request_id) < (CAST(sqlc.arg(before_time) AS TIMESTAMP), CAST(sqlc.arg(before_request_id) AS TEXT))
ORDER BY created_at DESC, request_id DESC
LIMIT sqlc.arg(max_rows);

-- UsageLogsByKey scans usage_records_key_time_idx.
-- name: UsageLogsByKey :many
SELECT * FROM usage_records
WHERE (CAST(sqlc.narg(key_id) AS UUID) IS NULL OR key_id = sqlc.narg(key_id))
  AND (CAST(sqlc.narg(status) AS INTEGER) IS NULL OR status = sqlc.narg(status))
  AND (CAST(sqlc.narg(model) AS TEXT) IS NULL OR model = sqlc.narg(model))
  AND (CAST(sqlc.narg(upstream) AS TEXT) IS NULL OR upstream = sqlc.narg(upstream))
  AND (NOT CAST(sqlc.arg(refusals_only) AS BOOLEAN) OR (status >= 400 AND upstream = ''))
  AND created_at >= CAST(sqlc.arg(from_time) AS TIMESTAMP)
  AND (created_at, request_id) < (CAST(sqlc.arg(before_time) AS TIMESTAMP), CAST(sqlc.arg(before_request_id) AS TEXT))
  AND key_id = sqlc.narg(key_id)
ORDER BY created_at DESC, request_id DESC
LIMIT sqlc.arg(max_rows);

-- UsageLogsByModel scans usage_records_model_time_idx.
-- name: UsageLogsByModel :many
SELECT * FROM usage_records
WHERE (CAST(sqlc.narg(key_id) AS UUID) IS NULL OR key_id = sqlc.narg(key_id))
  AND (CAST(sqlc.narg(status) AS INTEGER) IS NULL OR status = sqlc.narg(status))
  AND (CAST(sqlc.narg(model) AS TEXT) IS NULL OR model = sqlc.narg(model))
  AND (CAST(sqlc.narg(upstream) AS TEXT) IS NULL OR upstream = sqlc.narg(upstream))
  AND (NOT CAST(sqlc.arg(refusals_only) AS BOOLEAN) OR (status >= 400 AND upstream = ''))
  AND created_at >= CAST(sqlc.arg(from_time) AS TIMESTAMP)
  AND (created_at, request_id) < (CAST(sqlc.arg(before_time) AS TIMESTAMP), CAST(sqlc.arg(before_request_id) AS TEXT))
  AND model = sqlc.narg(model)
ORDER BY created_at DESC, request_id DESC
LIMIT sqlc.arg(max_rows);

-- UsageLogsByUpstream scans usage_records_upstream_time_idx.
-- name: UsageLogsByUpstream :many
SELECT * FROM usage_records
WHERE (CAST(sqlc.narg(key_id) AS UUID) IS NULL OR key_id = sqlc.narg(key_id))
  AND (CAST(sqlc.narg(status) AS INTEGER) IS NULL OR status = sqlc.narg(status))
  AND (CAST(sqlc.narg(model) AS TEXT) IS NULL OR model = sqlc.narg(model))
  AND (CAST(sqlc.narg(upstream) AS TEXT) IS NULL OR upstream = sqlc.narg(upstream))
  AND (NOT CAST(sqlc.arg(refusals_only) AS BOOLEAN) OR (status >= 400 AND upstream = ''))
  AND created_at >= CAST(sqlc.arg(from_time) AS TIMESTAMP)
  AND (created_at, request_id) < (CAST(sqlc.arg(before_time) AS TIMESTAMP), CAST(sqlc.arg(before_request_id) AS TEXT))
  AND upstream = sqlc.narg(upstream)
ORDER BY created_at DESC, request_id DESC
LIMIT sqlc.arg(max_rows);

-- UsageLogsByStatus scans the partial usage_records_status_time_idx, for
-- a status other than 200.
-- name: UsageLogsByStatus :many
SELECT * FROM usage_records
WHERE (CAST(sqlc.narg(key_id) AS UUID) IS NULL OR key_id = sqlc.narg(key_id))
  AND (CAST(sqlc.narg(status) AS INTEGER) IS NULL OR status = sqlc.narg(status))
  AND (CAST(sqlc.narg(model) AS TEXT) IS NULL OR model = sqlc.narg(model))
  AND (CAST(sqlc.narg(upstream) AS TEXT) IS NULL OR upstream = sqlc.narg(upstream))
  AND (NOT CAST(sqlc.arg(refusals_only) AS BOOLEAN) OR (status >= 400 AND upstream = ''))
  AND created_at >= CAST(sqlc.arg(from_time) AS TIMESTAMP)
  AND (created_at, request_id) < (CAST(sqlc.arg(before_time) AS TIMESTAMP), CAST(sqlc.arg(before_request_id) AS TEXT))
  AND status = sqlc.narg(status) AND status <> 200
ORDER BY created_at DESC, request_id DESC
LIMIT sqlc.arg(max_rows);

-- UsageLogsRefusals scans the partial usage_records_refused_time_idx.
-- name: UsageLogsRefusals :many
SELECT * FROM usage_records
WHERE (CAST(sqlc.narg(key_id) AS UUID) IS NULL OR key_id = sqlc.narg(key_id))
  AND (CAST(sqlc.narg(status) AS INTEGER) IS NULL OR status = sqlc.narg(status))
  AND (CAST(sqlc.narg(model) AS TEXT) IS NULL OR model = sqlc.narg(model))
  AND (CAST(sqlc.narg(upstream) AS TEXT) IS NULL OR upstream = sqlc.narg(upstream))
  AND (NOT CAST(sqlc.arg(refusals_only) AS BOOLEAN) OR (status >= 400 AND upstream = ''))
  AND created_at >= CAST(sqlc.arg(from_time) AS TIMESTAMP)
  AND (created_at, request_id) < (CAST(sqlc.arg(before_time) AS TIMESTAMP), CAST(sqlc.arg(before_request_id) AS TEXT))
  AND status >= 400 AND upstream = ''
ORDER BY created_at DESC, request_id DESC
LIMIT sqlc.arg(max_rows);

-- The totals queries sum usage over a range, grouped by key, day, model
-- or upstream (or not at all), each group with its key's name when grouped
-- by key (a deleted key's too: keys are never removed), joined to the few
-- groups rather than to every row. Each has a variant for one key, with
-- the key as a plain equality that names the index to read by (SQLite
-- plans a statement once and cannot use an index for `x IS NULL OR ...`).
-- The store adds up what they return (sqlstore.Store.UsageTotals).
--
-- UsageTotalsFromRecords sums the records of a range bound at both ends
-- (the partial days at the ends of a longer range, or a range without a
-- whole day), a range of usage_records_time_idx.
-- name: UsageTotalsFromRecords :many
SELECT t.grp, CAST(coalesce(k.name, '') AS TEXT) AS key_name, t.requests,
    t.input_tokens, t.output_tokens, t.cache_creation_input_tokens, t.cache_read_input_tokens,
    t.cache_creation_5m_tokens, t.cache_creation_1h_tokens,
    t.cost_total, t.cost_input, t.cost_output, t.cost_cache_write_5m, t.cost_cache_write_1h,
    t.cost_cache_read, t.cost_web_search, t.cost_web_fetch, t.cost_cache_saved
FROM (
    SELECT
        CAST(CASE CAST(sqlc.arg(group_by) AS TEXT)
            WHEN 'key' THEN key_id
            WHEN 'day' THEN strftime('%Y-%m-%d', created_at / 1000000, 'unixepoch')
            WHEN 'model' THEN model
            WHEN 'upstream' THEN upstream
            ELSE ''
        END AS TEXT) AS grp,
        CAST(count(*) AS INTEGER) AS requests,
        CAST(sum(input_tokens) AS INTEGER) AS input_tokens,
        CAST(sum(output_tokens) AS INTEGER) AS output_tokens,
        CAST(sum(cache_creation_input_tokens) AS INTEGER) AS cache_creation_input_tokens,
        CAST(sum(cache_read_input_tokens) AS INTEGER) AS cache_read_input_tokens,
        CAST(sum(cache_creation_5m_tokens) AS INTEGER) AS cache_creation_5m_tokens,
        CAST(sum(cache_creation_1h_tokens) AS INTEGER) AS cache_creation_1h_tokens,
        CAST(sum(cost_total) AS INTEGER) AS cost_total,
        CAST(sum(cost_input) AS INTEGER) AS cost_input,
        CAST(sum(cost_output) AS INTEGER) AS cost_output,
        CAST(sum(cost_cache_write_5m) AS INTEGER) AS cost_cache_write_5m,
        CAST(sum(cost_cache_write_1h) AS INTEGER) AS cost_cache_write_1h,
        CAST(sum(cost_cache_read) AS INTEGER) AS cost_cache_read,
        CAST(sum(cost_web_search) AS INTEGER) AS cost_web_search,
        CAST(sum(cost_web_fetch) AS INTEGER) AS cost_web_fetch,
        CAST(sum(cost_cache_saved) AS INTEGER) AS cost_cache_saved
    FROM usage_records
    WHERE created_at >= CAST(sqlc.arg(from_time) AS TIMESTAMP)
      AND created_at < CAST(sqlc.arg(to_time) AS TIMESTAMP)
    GROUP BY 1
) AS t
LEFT JOIN api_keys AS k ON CAST(sqlc.arg(group_by) AS TEXT) = 'key' AND k.id = t.grp
ORDER BY t.grp;

-- UsageTotalsFromRecordsByKey reads usage_records_key_time_idx.
-- name: UsageTotalsFromRecordsByKey :many
SELECT t.grp, CAST(coalesce(k.name, '') AS TEXT) AS key_name, t.requests,
    t.input_tokens, t.output_tokens, t.cache_creation_input_tokens, t.cache_read_input_tokens,
    t.cache_creation_5m_tokens, t.cache_creation_1h_tokens,
    t.cost_total, t.cost_input, t.cost_output, t.cost_cache_write_5m, t.cost_cache_write_1h,
    t.cost_cache_read, t.cost_web_search, t.cost_web_fetch, t.cost_cache_saved
FROM (
    SELECT
        CAST(CASE CAST(sqlc.arg(group_by) AS TEXT)
            WHEN 'key' THEN key_id
            WHEN 'day' THEN strftime('%Y-%m-%d', created_at / 1000000, 'unixepoch')
            WHEN 'model' THEN model
            WHEN 'upstream' THEN upstream
            ELSE ''
        END AS TEXT) AS grp,
        CAST(count(*) AS INTEGER) AS requests,
        CAST(sum(input_tokens) AS INTEGER) AS input_tokens,
        CAST(sum(output_tokens) AS INTEGER) AS output_tokens,
        CAST(sum(cache_creation_input_tokens) AS INTEGER) AS cache_creation_input_tokens,
        CAST(sum(cache_read_input_tokens) AS INTEGER) AS cache_read_input_tokens,
        CAST(sum(cache_creation_5m_tokens) AS INTEGER) AS cache_creation_5m_tokens,
        CAST(sum(cache_creation_1h_tokens) AS INTEGER) AS cache_creation_1h_tokens,
        CAST(sum(cost_total) AS INTEGER) AS cost_total,
        CAST(sum(cost_input) AS INTEGER) AS cost_input,
        CAST(sum(cost_output) AS INTEGER) AS cost_output,
        CAST(sum(cost_cache_write_5m) AS INTEGER) AS cost_cache_write_5m,
        CAST(sum(cost_cache_write_1h) AS INTEGER) AS cost_cache_write_1h,
        CAST(sum(cost_cache_read) AS INTEGER) AS cost_cache_read,
        CAST(sum(cost_web_search) AS INTEGER) AS cost_web_search,
        CAST(sum(cost_web_fetch) AS INTEGER) AS cost_web_fetch,
        CAST(sum(cost_cache_saved) AS INTEGER) AS cost_cache_saved
    FROM usage_records
    WHERE key_id = sqlc.arg(key_id)
      AND created_at >= CAST(sqlc.arg(from_time) AS TIMESTAMP)
      AND created_at < CAST(sqlc.arg(to_time) AS TIMESTAMP)
    GROUP BY 1
) AS t
LEFT JOIN api_keys AS k ON CAST(sqlc.arg(group_by) AS TEXT) = 'key' AND k.id = t.grp
ORDER BY t.grp;

-- UsageTotalsFromDailyByKey reads the rollup's primary key.
-- name: UsageTotalsFromDailyByKey :many
SELECT t.grp, CAST(coalesce(k.name, '') AS TEXT) AS key_name, t.requests,
    t.input_tokens, t.output_tokens, t.cache_creation_input_tokens, t.cache_read_input_tokens,
    t.cache_creation_5m_tokens, t.cache_creation_1h_tokens,
    t.cost_total, t.cost_input, t.cost_output, t.cost_cache_write_5m, t.cost_cache_write_1h,
    t.cost_cache_read, t.cost_web_search, t.cost_web_fetch, t.cost_cache_saved
FROM (
    SELECT
        CAST(CASE CAST(sqlc.arg(group_by) AS TEXT)
            WHEN 'key' THEN key_id
            WHEN 'day' THEN day
            WHEN 'model' THEN model
            ELSE ''
        END AS TEXT) AS grp,
        CAST(sum(requests) AS INTEGER) AS requests,
        CAST(sum(input_tokens) AS INTEGER) AS input_tokens,
        CAST(sum(output_tokens) AS INTEGER) AS output_tokens,
        CAST(sum(cache_creation_input_tokens) AS INTEGER) AS cache_creation_input_tokens,
        CAST(sum(cache_read_input_tokens) AS INTEGER) AS cache_read_input_tokens,
        CAST(sum(cache_creation_5m_tokens) AS INTEGER) AS cache_creation_5m_tokens,
        CAST(sum(cache_creation_1h_tokens) AS INTEGER) AS cache_creation_1h_tokens,
        CAST(sum(cost_total) AS INTEGER) AS cost_total,
        CAST(sum(cost_input) AS INTEGER) AS cost_input,
        CAST(sum(cost_output) AS INTEGER) AS cost_output,
        CAST(sum(cost_cache_write_5m) AS INTEGER) AS cost_cache_write_5m,
        CAST(sum(cost_cache_write_1h) AS INTEGER) AS cost_cache_write_1h,
        CAST(sum(cost_cache_read) AS INTEGER) AS cost_cache_read,
        CAST(sum(cost_web_search) AS INTEGER) AS cost_web_search,
        CAST(sum(cost_web_fetch) AS INTEGER) AS cost_web_fetch,
        CAST(sum(cost_cache_saved) AS INTEGER) AS cost_cache_saved
    FROM usage_daily
    WHERE key_id = sqlc.arg(key_id)
      AND (CAST(sqlc.narg(from_day) AS TEXT) IS NULL OR day >= sqlc.narg(from_day))
      AND (CAST(sqlc.narg(to_day) AS TEXT) IS NULL OR day < sqlc.narg(to_day))
    GROUP BY 1
) AS t
LEFT JOIN api_keys AS k ON CAST(sqlc.arg(group_by) AS TEXT) = 'key' AND k.id = t.grp
ORDER BY t.grp;

-- UsageTotalsFromDailyGlobal sums whole UTC days of every key per model or
-- upstream from the global daily rollup; either bound may be open.
-- name: UsageTotalsFromDailyGlobal :many
SELECT
    CAST(CASE WHEN CAST(sqlc.arg(group_by) AS TEXT) = 'model' THEN model ELSE upstream END AS TEXT) AS grp,
    CAST('' AS TEXT) AS key_name,
    CAST(sum(requests) AS INTEGER) AS requests,
    CAST(sum(input_tokens) AS INTEGER) AS input_tokens,
    CAST(sum(output_tokens) AS INTEGER) AS output_tokens,
    CAST(sum(cache_creation_input_tokens) AS INTEGER) AS cache_creation_input_tokens,
    CAST(sum(cache_read_input_tokens) AS INTEGER) AS cache_read_input_tokens,
    CAST(sum(cache_creation_5m_tokens) AS INTEGER) AS cache_creation_5m_tokens,
    CAST(sum(cache_creation_1h_tokens) AS INTEGER) AS cache_creation_1h_tokens,
    CAST(sum(cost_total) AS INTEGER) AS cost_total,
    CAST(sum(cost_input) AS INTEGER) AS cost_input,
    CAST(sum(cost_output) AS INTEGER) AS cost_output,
    CAST(sum(cost_cache_write_5m) AS INTEGER) AS cost_cache_write_5m,
    CAST(sum(cost_cache_write_1h) AS INTEGER) AS cost_cache_write_1h,
    CAST(sum(cost_cache_read) AS INTEGER) AS cost_cache_read,
    CAST(sum(cost_web_search) AS INTEGER) AS cost_web_search,
    CAST(sum(cost_web_fetch) AS INTEGER) AS cost_web_fetch,
    CAST(sum(cost_cache_saved) AS INTEGER) AS cost_cache_saved
FROM usage_daily_global
WHERE (CAST(sqlc.narg(from_day) AS TEXT) IS NULL OR day >= sqlc.narg(from_day))
  AND (CAST(sqlc.narg(to_day) AS TEXT) IS NULL OR day < sqlc.narg(to_day))
GROUP BY 1
ORDER BY 1;

-- UsageTotalsByKeyFromRollups sums every key's usage per key over a range
-- cut into parts (see sqlstore.keyParts): whole UTC months from the
-- monthly rollup, whole days from the rollup per upstream added (plus_*)
-- or subtracted from their month (minus_*), and the records of the
-- partial days at the ends, added (rec*) or subtracted from their day
-- (rec_minus*). An empty part has equal bounds. One
-- statement reads one snapshot, so a month and the days taken from it
-- never disagree about a record written meanwhile. The rows come in no
-- order (the store sorts them): asking PostgreSQL for one makes it sort
-- to aggregate, three times slower than hashing.
-- name: UsageTotalsByKeyFromRollups :many
SELECT CAST(t.key_id AS TEXT) AS grp, CAST(coalesce(k.name, '') AS TEXT) AS key_name,
    t.requests, t.input_tokens, t.output_tokens, t.cache_creation_input_tokens, t.cache_read_input_tokens, t.cache_creation_5m_tokens, t.cache_creation_1h_tokens,
    t.cost_total, t.cost_input, t.cost_output, t.cost_cache_write_5m, t.cost_cache_write_1h, t.cost_cache_read, t.cost_web_search, t.cost_web_fetch, t.cost_cache_saved
FROM (
    SELECT key_id,
        CAST(sum(requests) AS INTEGER) AS requests,
        CAST(sum(input_tokens) AS INTEGER) AS input_tokens,
        CAST(sum(output_tokens) AS INTEGER) AS output_tokens,
        CAST(sum(cache_creation_input_tokens) AS INTEGER) AS cache_creation_input_tokens,
        CAST(sum(cache_read_input_tokens) AS INTEGER) AS cache_read_input_tokens,
        CAST(sum(cache_creation_5m_tokens) AS INTEGER) AS cache_creation_5m_tokens,
        CAST(sum(cache_creation_1h_tokens) AS INTEGER) AS cache_creation_1h_tokens,
        CAST(sum(cost_total) AS INTEGER) AS cost_total,
        CAST(sum(cost_input) AS INTEGER) AS cost_input,
        CAST(sum(cost_output) AS INTEGER) AS cost_output,
        CAST(sum(cost_cache_write_5m) AS INTEGER) AS cost_cache_write_5m,
        CAST(sum(cost_cache_write_1h) AS INTEGER) AS cost_cache_write_1h,
        CAST(sum(cost_cache_read) AS INTEGER) AS cost_cache_read,
        CAST(sum(cost_web_search) AS INTEGER) AS cost_web_search,
        CAST(sum(cost_web_fetch) AS INTEGER) AS cost_web_fetch,
        CAST(sum(cost_cache_saved) AS INTEGER) AS cost_cache_saved
    FROM (
        SELECT key_id, requests, input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens, cache_creation_5m_tokens, cache_creation_1h_tokens, cost_total, cost_input, cost_output, cost_cache_write_5m, cost_cache_write_1h, cost_cache_read, cost_web_search, cost_web_fetch, cost_cache_saved
        FROM usage_monthly_key WHERE month >= CAST(sqlc.arg(from_month) AS TEXT) AND month < CAST(sqlc.arg(to_month) AS TEXT)
        UNION ALL
        SELECT key_id, requests, input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens, cache_creation_5m_tokens, cache_creation_1h_tokens, cost_total, cost_input, cost_output, cost_cache_write_5m, cost_cache_write_1h, cost_cache_read, cost_web_search, cost_web_fetch, cost_cache_saved
        FROM usage_daily_upstream WHERE day >= CAST(sqlc.arg(plus1_from) AS TEXT) AND day < CAST(sqlc.arg(plus1_to) AS TEXT)
        UNION ALL
        SELECT key_id, requests, input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens, cache_creation_5m_tokens, cache_creation_1h_tokens, cost_total, cost_input, cost_output, cost_cache_write_5m, cost_cache_write_1h, cost_cache_read, cost_web_search, cost_web_fetch, cost_cache_saved
        FROM usage_daily_upstream WHERE day >= CAST(sqlc.arg(plus2_from) AS TEXT) AND day < CAST(sqlc.arg(plus2_to) AS TEXT)
        UNION ALL
        SELECT key_id, -requests, -input_tokens, -output_tokens, -cache_creation_input_tokens, -cache_read_input_tokens, -cache_creation_5m_tokens, -cache_creation_1h_tokens, -cost_total, -cost_input, -cost_output, -cost_cache_write_5m, -cost_cache_write_1h, -cost_cache_read, -cost_web_search, -cost_web_fetch, -cost_cache_saved
        FROM usage_daily_upstream WHERE day >= CAST(sqlc.arg(minus1_from) AS TEXT) AND day < CAST(sqlc.arg(minus1_to) AS TEXT)
        UNION ALL
        SELECT key_id, -requests, -input_tokens, -output_tokens, -cache_creation_input_tokens, -cache_read_input_tokens, -cache_creation_5m_tokens, -cache_creation_1h_tokens, -cost_total, -cost_input, -cost_output, -cost_cache_write_5m, -cost_cache_write_1h, -cost_cache_read, -cost_web_search, -cost_web_fetch, -cost_cache_saved
        FROM usage_daily_upstream WHERE day >= CAST(sqlc.arg(minus2_from) AS TEXT) AND day < CAST(sqlc.arg(minus2_to) AS TEXT)
        UNION ALL
        SELECT key_id, 1, input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens, cache_creation_5m_tokens, cache_creation_1h_tokens, cost_total, cost_input, cost_output, cost_cache_write_5m, cost_cache_write_1h, cost_cache_read, cost_web_search, cost_web_fetch, cost_cache_saved
        FROM usage_records WHERE created_at >= CAST(sqlc.arg(rec1_from) AS TIMESTAMP) AND created_at < CAST(sqlc.arg(rec1_to) AS TIMESTAMP)
        UNION ALL
        SELECT key_id, 1, input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens, cache_creation_5m_tokens, cache_creation_1h_tokens, cost_total, cost_input, cost_output, cost_cache_write_5m, cost_cache_write_1h, cost_cache_read, cost_web_search, cost_web_fetch, cost_cache_saved
        FROM usage_records WHERE created_at >= CAST(sqlc.arg(rec2_from) AS TIMESTAMP) AND created_at < CAST(sqlc.arg(rec2_to) AS TIMESTAMP)
        UNION ALL
        SELECT key_id, -1, -input_tokens, -output_tokens, -cache_creation_input_tokens, -cache_read_input_tokens, -cache_creation_5m_tokens, -cache_creation_1h_tokens, -cost_total, -cost_input, -cost_output, -cost_cache_write_5m, -cost_cache_write_1h, -cost_cache_read, -cost_web_search, -cost_web_fetch, -cost_cache_saved
        FROM usage_records WHERE created_at >= CAST(sqlc.arg(rec_minus1_from) AS TIMESTAMP) AND created_at < CAST(sqlc.arg(rec_minus1_to) AS TIMESTAMP)
        UNION ALL
        SELECT key_id, -1, -input_tokens, -output_tokens, -cache_creation_input_tokens, -cache_read_input_tokens, -cache_creation_5m_tokens, -cache_creation_1h_tokens, -cost_total, -cost_input, -cost_output, -cost_cache_write_5m, -cost_cache_write_1h, -cost_cache_read, -cost_web_search, -cost_web_fetch, -cost_cache_saved
        FROM usage_records WHERE created_at >= CAST(sqlc.arg(rec_minus2_from) AS TIMESTAMP) AND created_at < CAST(sqlc.arg(rec_minus2_to) AS TIMESTAMP)
    ) AS parts
    GROUP BY key_id
    -- A key whose records in its months all fall in subtracted days.
    HAVING sum(requests) <> 0
) AS t
LEFT JOIN api_keys AS k ON k.id = t.key_id;

-- UsageTotalsByUpstreamFromDailyByKey reads usage_daily_upstream_key_idx.
-- name: UsageTotalsByUpstreamFromDailyByKey :many
SELECT
    CAST(upstream AS TEXT) AS grp,
    CAST('' AS TEXT) AS key_name,
    CAST(sum(requests) AS INTEGER) AS requests,
    CAST(sum(input_tokens) AS INTEGER) AS input_tokens,
    CAST(sum(output_tokens) AS INTEGER) AS output_tokens,
    CAST(sum(cache_creation_input_tokens) AS INTEGER) AS cache_creation_input_tokens,
    CAST(sum(cache_read_input_tokens) AS INTEGER) AS cache_read_input_tokens,
    CAST(sum(cache_creation_5m_tokens) AS INTEGER) AS cache_creation_5m_tokens,
    CAST(sum(cache_creation_1h_tokens) AS INTEGER) AS cache_creation_1h_tokens,
    CAST(sum(cost_total) AS INTEGER) AS cost_total,
    CAST(sum(cost_input) AS INTEGER) AS cost_input,
    CAST(sum(cost_output) AS INTEGER) AS cost_output,
    CAST(sum(cost_cache_write_5m) AS INTEGER) AS cost_cache_write_5m,
    CAST(sum(cost_cache_write_1h) AS INTEGER) AS cost_cache_write_1h,
    CAST(sum(cost_cache_read) AS INTEGER) AS cost_cache_read,
    CAST(sum(cost_web_search) AS INTEGER) AS cost_web_search,
    CAST(sum(cost_web_fetch) AS INTEGER) AS cost_web_fetch,
    CAST(sum(cost_cache_saved) AS INTEGER) AS cost_cache_saved
FROM usage_daily_upstream
WHERE key_id = sqlc.arg(key_id)
  AND (CAST(sqlc.narg(from_day) AS TEXT) IS NULL OR day >= sqlc.narg(from_day))
  AND (CAST(sqlc.narg(to_day) AS TEXT) IS NULL OR day < sqlc.narg(to_day))
GROUP BY 1
ORDER BY 1;

-- UsageTotalsFromHourly sums whole hours of every key from the hourly
-- rollup, not grouped or grouped by day; either bound may be open.
-- name: UsageTotalsFromHourly :many
SELECT
    CAST(CASE WHEN CAST(sqlc.arg(group_by) AS TEXT) = 'day' THEN strftime('%Y-%m-%d', hour / 1000000, 'unixepoch') ELSE '' END AS TEXT) AS grp,
    CAST('' AS TEXT) AS key_name,
    CAST(sum(requests) AS INTEGER) AS requests,
    CAST(sum(input_tokens) AS INTEGER) AS input_tokens,
    CAST(sum(output_tokens) AS INTEGER) AS output_tokens,
    CAST(sum(cache_creation_input_tokens) AS INTEGER) AS cache_creation_input_tokens,
    CAST(sum(cache_read_input_tokens) AS INTEGER) AS cache_read_input_tokens,
    CAST(sum(cache_creation_5m_tokens) AS INTEGER) AS cache_creation_5m_tokens,
    CAST(sum(cache_creation_1h_tokens) AS INTEGER) AS cache_creation_1h_tokens,
    CAST(sum(cost_total) AS INTEGER) AS cost_total,
    CAST(sum(cost_input) AS INTEGER) AS cost_input,
    CAST(sum(cost_output) AS INTEGER) AS cost_output,
    CAST(sum(cost_cache_write_5m) AS INTEGER) AS cost_cache_write_5m,
    CAST(sum(cost_cache_write_1h) AS INTEGER) AS cost_cache_write_1h,
    CAST(sum(cost_cache_read) AS INTEGER) AS cost_cache_read,
    CAST(sum(cost_web_search) AS INTEGER) AS cost_web_search,
    CAST(sum(cost_web_fetch) AS INTEGER) AS cost_web_fetch,
    CAST(sum(cost_cache_saved) AS INTEGER) AS cost_cache_saved
FROM usage_hourly
WHERE (CAST(sqlc.narg(from_hour) AS TIMESTAMP) IS NULL OR hour >= sqlc.narg(from_hour))
  AND (CAST(sqlc.narg(to_hour) AS TIMESTAMP) IS NULL OR hour < sqlc.narg(to_hour))
GROUP BY 1
ORDER BY 1;

-- UsageSeries sums the hourly rollup per step (an hour or a UTC day) over
-- [from_hour, to_hour), ascending; steps without records have no row.
-- name: UsageSeries :many
SELECT
    CAST(CASE CAST(sqlc.arg(step) AS TEXT) WHEN 'day' THEN hour - ((hour % 86400000000) + 86400000000) % 86400000000 ELSE hour END AS TIMESTAMP) AS start,
    CAST(sum(requests) AS INTEGER) AS requests,
    CAST(sum(input_tokens) AS INTEGER) AS input_tokens,
    CAST(sum(output_tokens) AS INTEGER) AS output_tokens,
    CAST(sum(cache_creation_input_tokens) AS INTEGER) AS cache_creation_input_tokens,
    CAST(sum(cache_read_input_tokens) AS INTEGER) AS cache_read_input_tokens,
    CAST(sum(cache_creation_5m_tokens) AS INTEGER) AS cache_creation_5m_tokens,
    CAST(sum(cache_creation_1h_tokens) AS INTEGER) AS cache_creation_1h_tokens,
    CAST(sum(cost_total) AS INTEGER) AS cost_total,
    CAST(sum(cost_cache_saved) AS INTEGER) AS cost_cache_saved,
    CAST(sum(status_ok) AS INTEGER) AS status_ok,
    CAST(sum(status_client_error) AS INTEGER) AS status_client_error,
    CAST(sum(status_rate_limited) AS INTEGER) AS status_rate_limited,
    CAST(sum(status_server_error) AS INTEGER) AS status_server_error,
    CAST(sum(status_overloaded) AS INTEGER) AS status_overloaded,
    CAST(sum(refused) AS INTEGER) AS refused,
    CAST(sum(ttfb_b00) AS INTEGER) AS ttfb_b00,
    CAST(sum(ttfb_b01) AS INTEGER) AS ttfb_b01,
    CAST(sum(ttfb_b02) AS INTEGER) AS ttfb_b02,
    CAST(sum(ttfb_b03) AS INTEGER) AS ttfb_b03,
    CAST(sum(ttfb_b04) AS INTEGER) AS ttfb_b04,
    CAST(sum(ttfb_b05) AS INTEGER) AS ttfb_b05,
    CAST(sum(ttfb_b06) AS INTEGER) AS ttfb_b06,
    CAST(sum(ttfb_b07) AS INTEGER) AS ttfb_b07,
    CAST(sum(ttfb_b08) AS INTEGER) AS ttfb_b08,
    CAST(sum(ttfb_b09) AS INTEGER) AS ttfb_b09,
    CAST(sum(ttfb_b10) AS INTEGER) AS ttfb_b10,
    CAST(sum(ttfb_b11) AS INTEGER) AS ttfb_b11,
    CAST(sum(ttfb_b12) AS INTEGER) AS ttfb_b12,
    CAST(sum(ttfb_b13) AS INTEGER) AS ttfb_b13,
    CAST(sum(ttfb_b14) AS INTEGER) AS ttfb_b14,
    CAST(sum(ttfb_b15) AS INTEGER) AS ttfb_b15,
    CAST(sum(ttfb_b16) AS INTEGER) AS ttfb_b16,
    CAST(sum(ttfb_b17) AS INTEGER) AS ttfb_b17,
    CAST(sum(ttfb_b18) AS INTEGER) AS ttfb_b18,
    CAST(sum(ttfb_b19) AS INTEGER) AS ttfb_b19,
    CAST(sum(ttfb_b20) AS INTEGER) AS ttfb_b20
FROM usage_hourly
WHERE hour >= CAST(sqlc.arg(from_hour) AS TIMESTAMP) AND hour < CAST(sqlc.arg(to_hour) AS TIMESTAMP)
GROUP BY 1
ORDER BY 1;

-- SpendHistory is a key's spend per 5-minute bucket (its start in Unix
-- seconds) since a time, and its all-time spend from the rollup (the row
-- with all_time set). One statement reads one snapshot, so the buckets and
-- the total never disagree about a record written meanwhile. created_at is
-- in microseconds; the bucket is floored even before the epoch.
-- name: SpendHistory :many
SELECT CAST(0 AS BOOLEAN) AS all_time,
    CAST((created_at - ((created_at % 300000000) + 300000000) % 300000000) / 1000000 AS INTEGER) AS bucket_start,
    CAST(sum(cost_total) AS INTEGER) AS amount
FROM usage_records
WHERE usage_records.key_id = sqlc.arg(key_id) AND created_at >= CAST(sqlc.arg(since) AS TIMESTAMP) AND cost_total <> 0
GROUP BY 2
UNION ALL
SELECT CAST(1 AS BOOLEAN), 0, CAST(coalesce(sum(cost_total), 0) AS INTEGER)
FROM usage_daily
WHERE usage_daily.key_id = sqlc.arg(key_id)
ORDER BY 1, 2;

-- UsageCostForUpdate reads a record's stored cost if it still carries the
-- total and price version the repricer read. (The write transaction holds
-- the database's one write lock, so nothing changes it before the update.)
-- name: UsageCostForUpdate :one
SELECT key_id, created_at, model, upstream, cost_total, cost_input, cost_output,
    cost_cache_write_5m, cost_cache_write_1h, cost_cache_read,
    cost_web_search, cost_web_fetch, cost_cache_saved
FROM usage_records
WHERE request_id = sqlc.arg(request_id)
  AND cost_total = sqlc.arg(old_total)
  AND price_version = sqlc.arg(old_price_version);

-- name: SetUsageCost :exec
UPDATE usage_records SET
    cost_total = sqlc.arg(cost_total),
    cost_input = sqlc.arg(cost_input),
    cost_output = sqlc.arg(cost_output),
    cost_cache_write_5m = sqlc.arg(cost_cache_write_5m),
    cost_cache_write_1h = sqlc.arg(cost_cache_write_1h),
    cost_cache_read = sqlc.arg(cost_cache_read),
    cost_web_search = sqlc.arg(cost_web_search),
    cost_web_fetch = sqlc.arg(cost_web_fetch),
    cost_cache_saved = sqlc.arg(cost_cache_saved),
    price_version = sqlc.arg(price_version),
    cost_fallback_5m = sqlc.arg(cost_fallback_5m),
    cost_unpriced = sqlc.arg(cost_unpriced),
    cost_detail = sqlc.arg(cost_detail)
WHERE request_id = sqlc.arg(request_id);

-- AddUsageDailyCost moves one rollup row's cost sums by a repricing's
-- difference.
-- name: AddUsageDailyCost :execrows
UPDATE usage_daily SET
    cost_total = cost_total + CAST(sqlc.arg(cost_total) AS INTEGER),
    cost_input = cost_input + CAST(sqlc.arg(cost_input) AS INTEGER),
    cost_output = cost_output + CAST(sqlc.arg(cost_output) AS INTEGER),
    cost_cache_write_5m = cost_cache_write_5m + CAST(sqlc.arg(cost_cache_write_5m) AS INTEGER),
    cost_cache_write_1h = cost_cache_write_1h + CAST(sqlc.arg(cost_cache_write_1h) AS INTEGER),
    cost_cache_read = cost_cache_read + CAST(sqlc.arg(cost_cache_read) AS INTEGER),
    cost_web_search = cost_web_search + CAST(sqlc.arg(cost_web_search) AS INTEGER),
    cost_web_fetch = cost_web_fetch + CAST(sqlc.arg(cost_web_fetch) AS INTEGER),
    cost_cache_saved = cost_cache_saved + CAST(sqlc.arg(cost_cache_saved) AS INTEGER)
WHERE key_id = sqlc.arg(key_id) AND day = CAST(sqlc.arg(day) AS TEXT) AND model = sqlc.arg(model);

-- AddUsageDailyUpstreamCost moves one upstream rollup row's cost sums by a
-- repricing's difference.
-- name: AddUsageDailyUpstreamCost :execrows
UPDATE usage_daily_upstream SET
    cost_total = cost_total + CAST(sqlc.arg(cost_total) AS INTEGER),
    cost_input = cost_input + CAST(sqlc.arg(cost_input) AS INTEGER),
    cost_output = cost_output + CAST(sqlc.arg(cost_output) AS INTEGER),
    cost_cache_write_5m = cost_cache_write_5m + CAST(sqlc.arg(cost_cache_write_5m) AS INTEGER),
    cost_cache_write_1h = cost_cache_write_1h + CAST(sqlc.arg(cost_cache_write_1h) AS INTEGER),
    cost_cache_read = cost_cache_read + CAST(sqlc.arg(cost_cache_read) AS INTEGER),
    cost_web_search = cost_web_search + CAST(sqlc.arg(cost_web_search) AS INTEGER),
    cost_web_fetch = cost_web_fetch + CAST(sqlc.arg(cost_web_fetch) AS INTEGER),
    cost_cache_saved = cost_cache_saved + CAST(sqlc.arg(cost_cache_saved) AS INTEGER)
WHERE day = CAST(sqlc.arg(day) AS TEXT) AND upstream = sqlc.arg(upstream) AND key_id = sqlc.arg(key_id);

-- AddUsageHourlyCost moves one hourly rollup row's cost sums by a
-- repricing's difference.
-- name: AddUsageHourlyCost :execrows
UPDATE usage_hourly SET
    cost_total = cost_total + CAST(sqlc.arg(cost_total) AS INTEGER),
    cost_input = cost_input + CAST(sqlc.arg(cost_input) AS INTEGER),
    cost_output = cost_output + CAST(sqlc.arg(cost_output) AS INTEGER),
    cost_cache_write_5m = cost_cache_write_5m + CAST(sqlc.arg(cost_cache_write_5m) AS INTEGER),
    cost_cache_write_1h = cost_cache_write_1h + CAST(sqlc.arg(cost_cache_write_1h) AS INTEGER),
    cost_cache_read = cost_cache_read + CAST(sqlc.arg(cost_cache_read) AS INTEGER),
    cost_web_search = cost_web_search + CAST(sqlc.arg(cost_web_search) AS INTEGER),
    cost_web_fetch = cost_web_fetch + CAST(sqlc.arg(cost_web_fetch) AS INTEGER),
    cost_cache_saved = cost_cache_saved + CAST(sqlc.arg(cost_cache_saved) AS INTEGER)
WHERE hour = CAST(sqlc.arg(hour) AS TIMESTAMP);

-- AddUsageDailyGlobalCost moves one global daily rollup row's cost sums by a repricing's
-- difference.
-- name: AddUsageDailyGlobalCost :execrows
UPDATE usage_daily_global SET
    cost_total = cost_total + CAST(sqlc.arg(cost_total) AS INTEGER),
    cost_input = cost_input + CAST(sqlc.arg(cost_input) AS INTEGER),
    cost_output = cost_output + CAST(sqlc.arg(cost_output) AS INTEGER),
    cost_cache_write_5m = cost_cache_write_5m + CAST(sqlc.arg(cost_cache_write_5m) AS INTEGER),
    cost_cache_write_1h = cost_cache_write_1h + CAST(sqlc.arg(cost_cache_write_1h) AS INTEGER),
    cost_cache_read = cost_cache_read + CAST(sqlc.arg(cost_cache_read) AS INTEGER),
    cost_web_search = cost_web_search + CAST(sqlc.arg(cost_web_search) AS INTEGER),
    cost_web_fetch = cost_web_fetch + CAST(sqlc.arg(cost_web_fetch) AS INTEGER),
    cost_cache_saved = cost_cache_saved + CAST(sqlc.arg(cost_cache_saved) AS INTEGER)
WHERE day = CAST(sqlc.arg(day) AS TEXT) AND model = sqlc.arg(model) AND upstream = sqlc.arg(upstream);

-- AddUsageMonthlyKeyCost moves one monthly rollup row's cost sums by a repricing's
-- difference.
-- name: AddUsageMonthlyKeyCost :execrows
UPDATE usage_monthly_key SET
    cost_total = cost_total + CAST(sqlc.arg(cost_total) AS INTEGER),
    cost_input = cost_input + CAST(sqlc.arg(cost_input) AS INTEGER),
    cost_output = cost_output + CAST(sqlc.arg(cost_output) AS INTEGER),
    cost_cache_write_5m = cost_cache_write_5m + CAST(sqlc.arg(cost_cache_write_5m) AS INTEGER),
    cost_cache_write_1h = cost_cache_write_1h + CAST(sqlc.arg(cost_cache_write_1h) AS INTEGER),
    cost_cache_read = cost_cache_read + CAST(sqlc.arg(cost_cache_read) AS INTEGER),
    cost_web_search = cost_web_search + CAST(sqlc.arg(cost_web_search) AS INTEGER),
    cost_web_fetch = cost_web_fetch + CAST(sqlc.arg(cost_web_fetch) AS INTEGER),
    cost_cache_saved = cost_cache_saved + CAST(sqlc.arg(cost_cache_saved) AS INTEGER)
WHERE month = CAST(sqlc.arg(month) AS TEXT) AND key_id = sqlc.arg(key_id);
