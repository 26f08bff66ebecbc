-- name: UpsertUsageDaily :exec
INSERT INTO usage_daily (
    key_id, day, model, requests, input_tokens, output_tokens,
    cache_creation_input_tokens, cache_read_input_tokens,
    cache_creation_5m_tokens, cache_creation_1h_tokens,
    web_search_requests, web_fetch_requests,
    cost_total, cost_input, cost_output, cost_cache_write_5m,
    cost_cache_write_1h, cost_cache_read, cost_web_search, cost_web_fetch
) VALUES (
    ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
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
    cost_web_fetch = cost_web_fetch + excluded.cost_web_fetch;

-- name: UpsertUsageDailyUpstream :exec
INSERT INTO usage_daily_upstream (
    day, upstream, key_id, requests, input_tokens, output_tokens,
    cache_creation_input_tokens, cache_read_input_tokens,
    cache_creation_5m_tokens, cache_creation_1h_tokens,
    cost_total, cost_input, cost_output, cost_cache_write_5m,
    cost_cache_write_1h, cost_cache_read, cost_web_search, cost_web_fetch
) VALUES (
    ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
)
ON CONFLICT (day, upstream, key_id) DO UPDATE SET
    requests = requests + excluded.requests,
    input_tokens = input_tokens + excluded.input_tokens,
    output_tokens = output_tokens + excluded.output_tokens,
    cache_creation_input_tokens = cache_creation_input_tokens + excluded.cache_creation_input_tokens,
    cache_read_input_tokens = cache_read_input_tokens + excluded.cache_read_input_tokens,
    cache_creation_5m_tokens = cache_creation_5m_tokens + excluded.cache_creation_5m_tokens,
    cache_creation_1h_tokens = cache_creation_1h_tokens + excluded.cache_creation_1h_tokens,
    cost_total = cost_total + excluded.cost_total,
    cost_input = cost_input + excluded.cost_input,
    cost_output = cost_output + excluded.cost_output,
    cost_cache_write_5m = cost_cache_write_5m + excluded.cost_cache_write_5m,
    cost_cache_write_1h = cost_cache_write_1h + excluded.cost_cache_write_1h,
    cost_cache_read = cost_cache_read + excluded.cost_cache_read,
    cost_web_search = cost_web_search + excluded.cost_web_search,
    cost_web_fetch = cost_web_fetch + excluded.cost_web_fetch;

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

-- UsageTotalsFromRecords sums raw records; used when the range is not
-- day-aligned, and for the upstream grouping (the rollup has no upstream).
-- name: UsageTotalsFromRecords :many
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
    CAST(sum(cost_web_fetch) AS INTEGER) AS cost_web_fetch
FROM usage_records
WHERE (CAST(sqlc.narg(key_id) AS UUID) IS NULL OR key_id = sqlc.narg(key_id))
  AND (CAST(sqlc.narg(from_time) AS TIMESTAMP) IS NULL OR created_at >= sqlc.narg(from_time))
  AND (CAST(sqlc.narg(to_time) AS TIMESTAMP) IS NULL OR created_at < sqlc.narg(to_time))
GROUP BY 1
ORDER BY 1;

-- UsageTotalsFromRecordsInRange is UsageTotalsFromRecords over a range
-- bound at both ends, written as plain comparisons so that the range is
-- one of usage_records_time_idx (a short range, such as the last 24 hours,
-- then reads only its own records).
-- name: UsageTotalsFromRecordsInRange :many
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
    CAST(sum(cost_web_fetch) AS INTEGER) AS cost_web_fetch
FROM usage_records
WHERE (CAST(sqlc.narg(key_id) AS UUID) IS NULL OR key_id = sqlc.narg(key_id))
  AND created_at >= CAST(sqlc.arg(from_time) AS TIMESTAMP)
  AND created_at < CAST(sqlc.arg(to_time) AS TIMESTAMP)
GROUP BY 1
ORDER BY 1;

-- UsageTotalsFromDaily answers day-aligned ranges from the rollup.
-- name: UsageTotalsFromDaily :many
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
    CAST(sum(cost_web_fetch) AS INTEGER) AS cost_web_fetch
FROM usage_daily
WHERE (CAST(sqlc.narg(key_id) AS UUID) IS NULL OR key_id = sqlc.narg(key_id))
  AND (CAST(sqlc.narg(from_day) AS TEXT) IS NULL OR day >= sqlc.narg(from_day))
  AND (CAST(sqlc.narg(to_day) AS TEXT) IS NULL OR day < sqlc.narg(to_day))
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
    cost_web_search, cost_web_fetch
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
    cost_web_fetch = cost_web_fetch + CAST(sqlc.arg(cost_web_fetch) AS INTEGER)
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
    cost_web_fetch = cost_web_fetch + CAST(sqlc.arg(cost_web_fetch) AS INTEGER)
WHERE day = CAST(sqlc.arg(day) AS TEXT) AND upstream = sqlc.arg(upstream) AND key_id = sqlc.arg(key_id);
