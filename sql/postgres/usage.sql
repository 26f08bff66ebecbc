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
WHERE (sqlc.narg(key_id)::uuid IS NULL OR key_id = sqlc.narg(key_id))
  AND (sqlc.narg(status)::integer IS NULL OR status = sqlc.narg(status))
  AND (sqlc.narg(model)::text IS NULL OR model = sqlc.narg(model))
  AND (sqlc.narg(upstream)::text IS NULL OR upstream = sqlc.narg(upstream))
  AND (NOT sqlc.arg(refusals_only)::boolean OR (status >= 400 AND upstream = ''))
  AND created_at >= sqlc.arg(from_time)::timestamptz
  AND (created_at, request_id) < (sqlc.arg(before_time)::timestamptz, sqlc.arg(before_request_id)::text)
ORDER BY created_at DESC, request_id DESC
LIMIT sqlc.arg(max_rows)::bigint;

-- UsageLogsByKey scans usage_records_key_time_idx.
-- name: UsageLogsByKey :many
SELECT * FROM usage_records
WHERE (sqlc.narg(key_id)::uuid IS NULL OR key_id = sqlc.narg(key_id))
  AND (sqlc.narg(status)::integer IS NULL OR status = sqlc.narg(status))
  AND (sqlc.narg(model)::text IS NULL OR model = sqlc.narg(model))
  AND (sqlc.narg(upstream)::text IS NULL OR upstream = sqlc.narg(upstream))
  AND (NOT sqlc.arg(refusals_only)::boolean OR (status >= 400 AND upstream = ''))
  AND created_at >= sqlc.arg(from_time)::timestamptz
  AND (created_at, request_id) < (sqlc.arg(before_time)::timestamptz, sqlc.arg(before_request_id)::text)
  AND key_id = sqlc.narg(key_id)
ORDER BY created_at DESC, request_id DESC
LIMIT sqlc.arg(max_rows)::bigint;

-- UsageLogsByModel scans usage_records_model_time_idx.
-- name: UsageLogsByModel :many
SELECT * FROM usage_records
WHERE (sqlc.narg(key_id)::uuid IS NULL OR key_id = sqlc.narg(key_id))
  AND (sqlc.narg(status)::integer IS NULL OR status = sqlc.narg(status))
  AND (sqlc.narg(model)::text IS NULL OR model = sqlc.narg(model))
  AND (sqlc.narg(upstream)::text IS NULL OR upstream = sqlc.narg(upstream))
  AND (NOT sqlc.arg(refusals_only)::boolean OR (status >= 400 AND upstream = ''))
  AND created_at >= sqlc.arg(from_time)::timestamptz
  AND (created_at, request_id) < (sqlc.arg(before_time)::timestamptz, sqlc.arg(before_request_id)::text)
  AND model = sqlc.narg(model)
ORDER BY created_at DESC, request_id DESC
LIMIT sqlc.arg(max_rows)::bigint;

-- UsageLogsByUpstream scans usage_records_upstream_time_idx.
-- name: UsageLogsByUpstream :many
SELECT * FROM usage_records
WHERE (sqlc.narg(key_id)::uuid IS NULL OR key_id = sqlc.narg(key_id))
  AND (sqlc.narg(status)::integer IS NULL OR status = sqlc.narg(status))
  AND (sqlc.narg(model)::text IS NULL OR model = sqlc.narg(model))
  AND (sqlc.narg(upstream)::text IS NULL OR upstream = sqlc.narg(upstream))
  AND (NOT sqlc.arg(refusals_only)::boolean OR (status >= 400 AND upstream = ''))
  AND created_at >= sqlc.arg(from_time)::timestamptz
  AND (created_at, request_id) < (sqlc.arg(before_time)::timestamptz, sqlc.arg(before_request_id)::text)
  AND upstream = sqlc.narg(upstream)
ORDER BY created_at DESC, request_id DESC
LIMIT sqlc.arg(max_rows)::bigint;

-- UsageLogsRefusals scans the partial usage_records_refused_time_idx.
-- name: UsageLogsRefusals :many
SELECT * FROM usage_records
WHERE (sqlc.narg(key_id)::uuid IS NULL OR key_id = sqlc.narg(key_id))
  AND (sqlc.narg(status)::integer IS NULL OR status = sqlc.narg(status))
  AND (sqlc.narg(model)::text IS NULL OR model = sqlc.narg(model))
  AND (sqlc.narg(upstream)::text IS NULL OR upstream = sqlc.narg(upstream))
  AND (NOT sqlc.arg(refusals_only)::boolean OR (status >= 400 AND upstream = ''))
  AND created_at >= sqlc.arg(from_time)::timestamptz
  AND (created_at, request_id) < (sqlc.arg(before_time)::timestamptz, sqlc.arg(before_request_id)::text)
  AND status >= 400 AND upstream = ''
ORDER BY created_at DESC, request_id DESC
LIMIT sqlc.arg(max_rows)::bigint;

-- UsageTotalsFromRecords sums raw records; used when the range is not
-- day-aligned, and for the upstream grouping (the rollup has no upstream).
-- name: UsageTotalsFromRecords :many
SELECT
    (CASE sqlc.arg(group_by)::text
        WHEN 'key' THEN key_id::text
        WHEN 'day' THEN to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')
        WHEN 'model' THEN model
        WHEN 'upstream' THEN upstream
        ELSE ''
    END)::text AS grp,
    count(*)::bigint AS requests,
    sum(input_tokens)::bigint AS input_tokens,
    sum(output_tokens)::bigint AS output_tokens,
    sum(cache_creation_input_tokens)::bigint AS cache_creation_input_tokens,
    sum(cache_read_input_tokens)::bigint AS cache_read_input_tokens,
    sum(cache_creation_5m_tokens)::bigint AS cache_creation_5m_tokens,
    sum(cache_creation_1h_tokens)::bigint AS cache_creation_1h_tokens,
    sum(cost_total)::bigint AS cost_total,
    sum(cost_input)::bigint AS cost_input,
    sum(cost_output)::bigint AS cost_output,
    sum(cost_cache_write_5m)::bigint AS cost_cache_write_5m,
    sum(cost_cache_write_1h)::bigint AS cost_cache_write_1h,
    sum(cost_cache_read)::bigint AS cost_cache_read,
    sum(cost_web_search)::bigint AS cost_web_search,
    sum(cost_web_fetch)::bigint AS cost_web_fetch
FROM usage_records
WHERE (sqlc.narg(key_id)::uuid IS NULL OR key_id = sqlc.narg(key_id))
  AND (sqlc.narg(from_time)::timestamptz IS NULL OR created_at >= sqlc.narg(from_time))
  AND (sqlc.narg(to_time)::timestamptz IS NULL OR created_at < sqlc.narg(to_time))
GROUP BY 1
ORDER BY 1;

-- UsageTotalsFromRecordsInRange is UsageTotalsFromRecords over a range
-- bound at both ends, written as plain comparisons so that the range is
-- one of usage_records_time_idx (a short range, such as the last 24 hours,
-- then reads only its own records).
-- name: UsageTotalsFromRecordsInRange :many
SELECT
    (CASE sqlc.arg(group_by)::text
        WHEN 'key' THEN key_id::text
        WHEN 'day' THEN to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')
        WHEN 'model' THEN model
        WHEN 'upstream' THEN upstream
        ELSE ''
    END)::text AS grp,
    count(*)::bigint AS requests,
    sum(input_tokens)::bigint AS input_tokens,
    sum(output_tokens)::bigint AS output_tokens,
    sum(cache_creation_input_tokens)::bigint AS cache_creation_input_tokens,
    sum(cache_read_input_tokens)::bigint AS cache_read_input_tokens,
    sum(cache_creation_5m_tokens)::bigint AS cache_creation_5m_tokens,
    sum(cache_creation_1h_tokens)::bigint AS cache_creation_1h_tokens,
    sum(cost_total)::bigint AS cost_total,
    sum(cost_input)::bigint AS cost_input,
    sum(cost_output)::bigint AS cost_output,
    sum(cost_cache_write_5m)::bigint AS cost_cache_write_5m,
    sum(cost_cache_write_1h)::bigint AS cost_cache_write_1h,
    sum(cost_cache_read)::bigint AS cost_cache_read,
    sum(cost_web_search)::bigint AS cost_web_search,
    sum(cost_web_fetch)::bigint AS cost_web_fetch
FROM usage_records
WHERE (sqlc.narg(key_id)::uuid IS NULL OR key_id = sqlc.narg(key_id))
  AND created_at >= sqlc.arg(from_time)::timestamptz
  AND created_at < sqlc.arg(to_time)::timestamptz
GROUP BY 1
ORDER BY 1;

-- UsageTotalsFromDaily answers day-aligned ranges from the rollup.
-- name: UsageTotalsFromDaily :many
SELECT
    (CASE sqlc.arg(group_by)::text
        WHEN 'key' THEN key_id::text
        WHEN 'day' THEN to_char(day, 'YYYY-MM-DD')
        WHEN 'model' THEN model
        ELSE ''
    END)::text AS grp,
    sum(requests)::bigint AS requests,
    sum(input_tokens)::bigint AS input_tokens,
    sum(output_tokens)::bigint AS output_tokens,
    sum(cache_creation_input_tokens)::bigint AS cache_creation_input_tokens,
    sum(cache_read_input_tokens)::bigint AS cache_read_input_tokens,
    sum(cache_creation_5m_tokens)::bigint AS cache_creation_5m_tokens,
    sum(cache_creation_1h_tokens)::bigint AS cache_creation_1h_tokens,
    sum(cost_total)::bigint AS cost_total,
    sum(cost_input)::bigint AS cost_input,
    sum(cost_output)::bigint AS cost_output,
    sum(cost_cache_write_5m)::bigint AS cost_cache_write_5m,
    sum(cost_cache_write_1h)::bigint AS cost_cache_write_1h,
    sum(cost_cache_read)::bigint AS cost_cache_read,
    sum(cost_web_search)::bigint AS cost_web_search,
    sum(cost_web_fetch)::bigint AS cost_web_fetch
FROM usage_daily
WHERE (sqlc.narg(key_id)::uuid IS NULL OR key_id = sqlc.narg(key_id))
  AND (sqlc.narg(from_day)::text IS NULL OR day >= sqlc.narg(from_day)::text::date)
  AND (sqlc.narg(to_day)::text IS NULL OR day < sqlc.narg(to_day)::text::date)
GROUP BY 1
ORDER BY 1;

-- SpendHistory is a key's spend per 5-minute bucket (its start in Unix
-- seconds) since a time, and its all-time spend from the rollup (the row
-- with all_time set). One statement reads one snapshot, so the buckets and
-- the total never disagree about a record written meanwhile.
-- name: SpendHistory :many
SELECT false AS all_time,
    (floor(extract(epoch FROM created_at) / 300) * 300)::bigint AS bucket_start,
    sum(cost_total)::bigint AS amount
FROM usage_records
WHERE usage_records.key_id = sqlc.arg(key_id) AND created_at >= sqlc.arg(since)::timestamptz AND cost_total <> 0
GROUP BY 2
UNION ALL
SELECT true, 0, coalesce(sum(cost_total), 0)::bigint
FROM usage_daily
WHERE usage_daily.key_id = sqlc.arg(key_id)
ORDER BY 1, 2;

-- LockKeysOfUsage takes the row locks of the records' keys in id order,
-- the locks a usage batch takes first: a repricing queues behind batches of
-- the same keys instead of deadlocking with them over rollup rows.
-- name: LockKeysOfUsage :exec
SELECT 1 FROM api_keys
WHERE id IN (SELECT key_id FROM usage_records WHERE request_id = ANY(sqlc.arg(request_ids)::text[]))
ORDER BY id
FOR NO KEY UPDATE;

-- UsageCostForUpdate reads and locks a record's stored cost if it still
-- carries the total and price version the repricer read.
-- name: UsageCostForUpdate :one
SELECT key_id, created_at, model, upstream, cost_total, cost_input, cost_output,
    cost_cache_write_5m, cost_cache_write_1h, cost_cache_read,
    cost_web_search, cost_web_fetch
FROM usage_records
WHERE request_id = sqlc.arg(request_id)
  AND cost_total = sqlc.arg(old_total)
  AND price_version = sqlc.arg(old_price_version)
FOR UPDATE;

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
    cost_total = cost_total + sqlc.arg(cost_total)::bigint,
    cost_input = cost_input + sqlc.arg(cost_input)::bigint,
    cost_output = cost_output + sqlc.arg(cost_output)::bigint,
    cost_cache_write_5m = cost_cache_write_5m + sqlc.arg(cost_cache_write_5m)::bigint,
    cost_cache_write_1h = cost_cache_write_1h + sqlc.arg(cost_cache_write_1h)::bigint,
    cost_cache_read = cost_cache_read + sqlc.arg(cost_cache_read)::bigint,
    cost_web_search = cost_web_search + sqlc.arg(cost_web_search)::bigint,
    cost_web_fetch = cost_web_fetch + sqlc.arg(cost_web_fetch)::bigint
WHERE key_id = sqlc.arg(key_id) AND day = sqlc.arg(day)::text::date AND model = sqlc.arg(model);

-- AddUsageDailyUpstreamCost moves one upstream rollup row's cost sums by a
-- repricing's difference.
-- name: AddUsageDailyUpstreamCost :execrows
UPDATE usage_daily_upstream SET
    cost_total = cost_total + sqlc.arg(cost_total)::bigint,
    cost_input = cost_input + sqlc.arg(cost_input)::bigint,
    cost_output = cost_output + sqlc.arg(cost_output)::bigint,
    cost_cache_write_5m = cost_cache_write_5m + sqlc.arg(cost_cache_write_5m)::bigint,
    cost_cache_write_1h = cost_cache_write_1h + sqlc.arg(cost_cache_write_1h)::bigint,
    cost_cache_read = cost_cache_read + sqlc.arg(cost_cache_read)::bigint,
    cost_web_search = cost_web_search + sqlc.arg(cost_web_search)::bigint,
    cost_web_fetch = cost_web_fetch + sqlc.arg(cost_web_fetch)::bigint
WHERE day = sqlc.arg(day)::text::date AND upstream = sqlc.arg(upstream) AND key_id = sqlc.arg(key_id);
