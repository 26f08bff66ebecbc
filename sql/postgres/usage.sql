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

-- UsageLogsByStatus scans the partial usage_records_status_time_idx, for
-- a status other than 200.
-- name: UsageLogsByStatus :many
SELECT * FROM usage_records
WHERE (sqlc.narg(key_id)::uuid IS NULL OR key_id = sqlc.narg(key_id))
  AND (sqlc.narg(status)::integer IS NULL OR status = sqlc.narg(status))
  AND (sqlc.narg(model)::text IS NULL OR model = sqlc.narg(model))
  AND (sqlc.narg(upstream)::text IS NULL OR upstream = sqlc.narg(upstream))
  AND (NOT sqlc.arg(refusals_only)::boolean OR (status >= 400 AND upstream = ''))
  AND created_at >= sqlc.arg(from_time)::timestamptz
  AND (created_at, request_id) < (sqlc.arg(before_time)::timestamptz, sqlc.arg(before_request_id)::text)
  AND status = sqlc.narg(status) AND status <> 200
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
SELECT t.grp, (coalesce(k.name, ''))::text AS key_name, t.requests,
    t.input_tokens, t.output_tokens, t.cache_creation_input_tokens, t.cache_read_input_tokens,
    t.cache_creation_5m_tokens, t.cache_creation_1h_tokens,
    t.cost_total, t.cost_input, t.cost_output, t.cost_cache_write_5m, t.cost_cache_write_1h,
    t.cost_cache_read, t.cost_web_search, t.cost_web_fetch, t.cost_cache_saved
FROM (
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
        sum(cost_web_fetch)::bigint AS cost_web_fetch,
        sum(cost_cache_saved)::bigint AS cost_cache_saved
    FROM usage_records
    WHERE created_at >= sqlc.arg(from_time)::timestamptz
      AND created_at < sqlc.arg(to_time)::timestamptz
    GROUP BY 1
) AS t
LEFT JOIN api_keys AS k ON sqlc.arg(group_by)::text = 'key' AND k.id::text = t.grp
ORDER BY t.grp;

-- UsageTotalsFromRecordsByKey reads usage_records_key_time_idx.
-- name: UsageTotalsFromRecordsByKey :many
SELECT t.grp, (coalesce(k.name, ''))::text AS key_name, t.requests,
    t.input_tokens, t.output_tokens, t.cache_creation_input_tokens, t.cache_read_input_tokens,
    t.cache_creation_5m_tokens, t.cache_creation_1h_tokens,
    t.cost_total, t.cost_input, t.cost_output, t.cost_cache_write_5m, t.cost_cache_write_1h,
    t.cost_cache_read, t.cost_web_search, t.cost_web_fetch, t.cost_cache_saved
FROM (
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
        sum(cost_web_fetch)::bigint AS cost_web_fetch,
        sum(cost_cache_saved)::bigint AS cost_cache_saved
    FROM usage_records
    WHERE key_id = sqlc.arg(key_id)::uuid
      AND created_at >= sqlc.arg(from_time)::timestamptz
      AND created_at < sqlc.arg(to_time)::timestamptz
    GROUP BY 1
) AS t
LEFT JOIN api_keys AS k ON sqlc.arg(group_by)::text = 'key' AND k.id::text = t.grp
ORDER BY t.grp;

-- UsageTotalsFromDailyByKey reads the rollup's primary key.
-- name: UsageTotalsFromDailyByKey :many
SELECT t.grp, (coalesce(k.name, ''))::text AS key_name, t.requests,
    t.input_tokens, t.output_tokens, t.cache_creation_input_tokens, t.cache_read_input_tokens,
    t.cache_creation_5m_tokens, t.cache_creation_1h_tokens,
    t.cost_total, t.cost_input, t.cost_output, t.cost_cache_write_5m, t.cost_cache_write_1h,
    t.cost_cache_read, t.cost_web_search, t.cost_web_fetch, t.cost_cache_saved
FROM (
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
        sum(cost_web_fetch)::bigint AS cost_web_fetch,
        sum(cost_cache_saved)::bigint AS cost_cache_saved
    FROM usage_daily
    WHERE key_id = sqlc.arg(key_id)::uuid
      AND (sqlc.narg(from_day)::text IS NULL OR day >= sqlc.narg(from_day)::text::date)
      AND (sqlc.narg(to_day)::text IS NULL OR day < sqlc.narg(to_day)::text::date)
    GROUP BY 1
) AS t
LEFT JOIN api_keys AS k ON sqlc.arg(group_by)::text = 'key' AND k.id::text = t.grp
ORDER BY t.grp;

-- UsageTotalsFromDailyGlobal sums whole UTC days of every key per model or
-- upstream from the global daily rollup; either bound may be open.
-- name: UsageTotalsFromDailyGlobal :many
SELECT
    (CASE WHEN sqlc.arg(group_by)::text = 'model' THEN model ELSE upstream END)::text AS grp,
    ''::text AS key_name,
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
    sum(cost_web_fetch)::bigint AS cost_web_fetch,
    sum(cost_cache_saved)::bigint AS cost_cache_saved
FROM usage_daily_global
WHERE (sqlc.narg(from_day)::text IS NULL OR day >= sqlc.narg(from_day)::text::date)
  AND (sqlc.narg(to_day)::text IS NULL OR day < sqlc.narg(to_day)::text::date)
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
SELECT t.key_id::text AS grp, coalesce(k.name, '')::text AS key_name,
    t.requests, t.input_tokens, t.output_tokens, t.cache_creation_input_tokens, t.cache_read_input_tokens, t.cache_creation_5m_tokens, t.cache_creation_1h_tokens,
    t.cost_total, t.cost_input, t.cost_output, t.cost_cache_write_5m, t.cost_cache_write_1h, t.cost_cache_read, t.cost_web_search, t.cost_web_fetch, t.cost_cache_saved
FROM (
    SELECT key_id,
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
        sum(cost_web_fetch)::bigint AS cost_web_fetch,
        sum(cost_cache_saved)::bigint AS cost_cache_saved
    FROM (
        SELECT key_id, requests, input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens, cache_creation_5m_tokens, cache_creation_1h_tokens, cost_total, cost_input, cost_output, cost_cache_write_5m, cost_cache_write_1h, cost_cache_read, cost_web_search, cost_web_fetch, cost_cache_saved
        FROM usage_monthly_key WHERE month >= sqlc.arg(from_month)::text::date AND month < sqlc.arg(to_month)::text::date
        UNION ALL
        SELECT key_id, requests, input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens, cache_creation_5m_tokens, cache_creation_1h_tokens, cost_total, cost_input, cost_output, cost_cache_write_5m, cost_cache_write_1h, cost_cache_read, cost_web_search, cost_web_fetch, cost_cache_saved
        FROM usage_daily_upstream WHERE day >= sqlc.arg(plus1_from)::text::date AND day < sqlc.arg(plus1_to)::text::date
        UNION ALL
        SELECT key_id, requests, input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens, cache_creation_5m_tokens, cache_creation_1h_tokens, cost_total, cost_input, cost_output, cost_cache_write_5m, cost_cache_write_1h, cost_cache_read, cost_web_search, cost_web_fetch, cost_cache_saved
        FROM usage_daily_upstream WHERE day >= sqlc.arg(plus2_from)::text::date AND day < sqlc.arg(plus2_to)::text::date
        UNION ALL
        SELECT key_id, -requests, -input_tokens, -output_tokens, -cache_creation_input_tokens, -cache_read_input_tokens, -cache_creation_5m_tokens, -cache_creation_1h_tokens, -cost_total, -cost_input, -cost_output, -cost_cache_write_5m, -cost_cache_write_1h, -cost_cache_read, -cost_web_search, -cost_web_fetch, -cost_cache_saved
        FROM usage_daily_upstream WHERE day >= sqlc.arg(minus1_from)::text::date AND day < sqlc.arg(minus1_to)::text::date
        UNION ALL
        SELECT key_id, -requests, -input_tokens, -output_tokens, -cache_creation_input_tokens, -cache_read_input_tokens, -cache_creation_5m_tokens, -cache_creation_1h_tokens, -cost_total, -cost_input, -cost_output, -cost_cache_write_5m, -cost_cache_write_1h, -cost_cache_read, -cost_web_search, -cost_web_fetch, -cost_cache_saved
        FROM usage_daily_upstream WHERE day >= sqlc.arg(minus2_from)::text::date AND day < sqlc.arg(minus2_to)::text::date
        UNION ALL
        SELECT key_id, 1::bigint, input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens, cache_creation_5m_tokens, cache_creation_1h_tokens, cost_total, cost_input, cost_output, cost_cache_write_5m, cost_cache_write_1h, cost_cache_read, cost_web_search, cost_web_fetch, cost_cache_saved
        FROM usage_records WHERE created_at >= sqlc.arg(rec1_from)::timestamptz AND created_at < sqlc.arg(rec1_to)::timestamptz
        UNION ALL
        SELECT key_id, 1::bigint, input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens, cache_creation_5m_tokens, cache_creation_1h_tokens, cost_total, cost_input, cost_output, cost_cache_write_5m, cost_cache_write_1h, cost_cache_read, cost_web_search, cost_web_fetch, cost_cache_saved
        FROM usage_records WHERE created_at >= sqlc.arg(rec2_from)::timestamptz AND created_at < sqlc.arg(rec2_to)::timestamptz
        UNION ALL
        SELECT key_id, -1::bigint, -input_tokens, -output_tokens, -cache_creation_input_tokens, -cache_read_input_tokens, -cache_creation_5m_tokens, -cache_creation_1h_tokens, -cost_total, -cost_input, -cost_output, -cost_cache_write_5m, -cost_cache_write_1h, -cost_cache_read, -cost_web_search, -cost_web_fetch, -cost_cache_saved
        FROM usage_records WHERE created_at >= sqlc.arg(rec_minus1_from)::timestamptz AND created_at < sqlc.arg(rec_minus1_to)::timestamptz
        UNION ALL
        SELECT key_id, -1::bigint, -input_tokens, -output_tokens, -cache_creation_input_tokens, -cache_read_input_tokens, -cache_creation_5m_tokens, -cache_creation_1h_tokens, -cost_total, -cost_input, -cost_output, -cost_cache_write_5m, -cost_cache_write_1h, -cost_cache_read, -cost_web_search, -cost_web_fetch, -cost_cache_saved
        FROM usage_records WHERE created_at >= sqlc.arg(rec_minus2_from)::timestamptz AND created_at < sqlc.arg(rec_minus2_to)::timestamptz
    ) AS parts
    GROUP BY key_id
    -- A key whose records in its months all fall in subtracted days.
    HAVING sum(requests) <> 0
) AS t
LEFT JOIN api_keys AS k ON k.id = t.key_id;

-- UsageTotalsByUpstreamFromDailyByKey reads usage_daily_upstream_key_idx.
-- name: UsageTotalsByUpstreamFromDailyByKey :many
SELECT
    upstream::text AS grp,
    ''::text AS key_name,
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
    sum(cost_web_fetch)::bigint AS cost_web_fetch,
    sum(cost_cache_saved)::bigint AS cost_cache_saved
FROM usage_daily_upstream
WHERE key_id = sqlc.arg(key_id)::uuid
  AND (sqlc.narg(from_day)::text IS NULL OR day >= sqlc.narg(from_day)::text::date)
  AND (sqlc.narg(to_day)::text IS NULL OR day < sqlc.narg(to_day)::text::date)
GROUP BY 1
ORDER BY 1;

-- UsageTotalsFromHourly sums whole hours of every key from the hourly
-- rollup, not grouped or grouped by day; either bound may be open.
-- name: UsageTotalsFromHourly :many
SELECT
    (CASE WHEN sqlc.arg(group_by)::text = 'day' THEN to_char(hour AT TIME ZONE 'UTC', 'YYYY-MM-DD') ELSE '' END)::text AS grp,
    ''::text AS key_name,
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
    sum(cost_web_fetch)::bigint AS cost_web_fetch,
    sum(cost_cache_saved)::bigint AS cost_cache_saved
FROM usage_hourly
WHERE (sqlc.narg(from_hour)::timestamptz IS NULL OR hour >= sqlc.narg(from_hour))
  AND (sqlc.narg(to_hour)::timestamptz IS NULL OR hour < sqlc.narg(to_hour))
GROUP BY 1
ORDER BY 1;

-- UsageSeries sums the hourly rollup per step (an hour or a UTC day) over
-- [from_hour, to_hour), ascending; steps without records have no row.
-- name: UsageSeries :many
SELECT
    (CASE sqlc.arg(step)::text WHEN 'day' THEN date_trunc('day', hour, 'UTC') ELSE hour END)::timestamptz AS start,
    sum(requests)::bigint AS requests,
    sum(input_tokens)::bigint AS input_tokens,
    sum(output_tokens)::bigint AS output_tokens,
    sum(cache_creation_input_tokens)::bigint AS cache_creation_input_tokens,
    sum(cache_read_input_tokens)::bigint AS cache_read_input_tokens,
    sum(cache_creation_5m_tokens)::bigint AS cache_creation_5m_tokens,
    sum(cache_creation_1h_tokens)::bigint AS cache_creation_1h_tokens,
    sum(cost_total)::bigint AS cost_total,
    sum(cost_cache_saved)::bigint AS cost_cache_saved,
    sum(status_ok)::bigint AS status_ok,
    sum(status_client_error)::bigint AS status_client_error,
    sum(status_rate_limited)::bigint AS status_rate_limited,
    sum(status_server_error)::bigint AS status_server_error,
    sum(status_overloaded)::bigint AS status_overloaded,
    sum(refused)::bigint AS refused,
    sum(ttfb_b00)::bigint AS ttfb_b00,
    sum(ttfb_b01)::bigint AS ttfb_b01,
    sum(ttfb_b02)::bigint AS ttfb_b02,
    sum(ttfb_b03)::bigint AS ttfb_b03,
    sum(ttfb_b04)::bigint AS ttfb_b04,
    sum(ttfb_b05)::bigint AS ttfb_b05,
    sum(ttfb_b06)::bigint AS ttfb_b06,
    sum(ttfb_b07)::bigint AS ttfb_b07,
    sum(ttfb_b08)::bigint AS ttfb_b08,
    sum(ttfb_b09)::bigint AS ttfb_b09,
    sum(ttfb_b10)::bigint AS ttfb_b10,
    sum(ttfb_b11)::bigint AS ttfb_b11,
    sum(ttfb_b12)::bigint AS ttfb_b12,
    sum(ttfb_b13)::bigint AS ttfb_b13,
    sum(ttfb_b14)::bigint AS ttfb_b14,
    sum(ttfb_b15)::bigint AS ttfb_b15,
    sum(ttfb_b16)::bigint AS ttfb_b16,
    sum(ttfb_b17)::bigint AS ttfb_b17,
    sum(ttfb_b18)::bigint AS ttfb_b18,
    sum(ttfb_b19)::bigint AS ttfb_b19,
    sum(ttfb_b20)::bigint AS ttfb_b20
FROM usage_hourly
WHERE hour >= sqlc.arg(from_hour)::timestamptz AND hour < sqlc.arg(to_hour)::timestamptz
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
    cost_web_search, cost_web_fetch, cost_cache_saved
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
    cost_total = cost_total + sqlc.arg(cost_total)::bigint,
    cost_input = cost_input + sqlc.arg(cost_input)::bigint,
    cost_output = cost_output + sqlc.arg(cost_output)::bigint,
    cost_cache_write_5m = cost_cache_write_5m + sqlc.arg(cost_cache_write_5m)::bigint,
    cost_cache_write_1h = cost_cache_write_1h + sqlc.arg(cost_cache_write_1h)::bigint,
    cost_cache_read = cost_cache_read + sqlc.arg(cost_cache_read)::bigint,
    cost_web_search = cost_web_search + sqlc.arg(cost_web_search)::bigint,
    cost_web_fetch = cost_web_fetch + sqlc.arg(cost_web_fetch)::bigint,
    cost_cache_saved = cost_cache_saved + sqlc.arg(cost_cache_saved)::bigint
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
    cost_web_fetch = cost_web_fetch + sqlc.arg(cost_web_fetch)::bigint,
    cost_cache_saved = cost_cache_saved + sqlc.arg(cost_cache_saved)::bigint
WHERE day = sqlc.arg(day)::text::date AND upstream = sqlc.arg(upstream) AND key_id = sqlc.arg(key_id);

-- AddUsageHourlyCost moves one hourly rollup row's cost sums by a
-- repricing's difference.
-- name: AddUsageHourlyCost :execrows
UPDATE usage_hourly SET
    cost_total = cost_total + sqlc.arg(cost_total)::bigint,
    cost_input = cost_input + sqlc.arg(cost_input)::bigint,
    cost_output = cost_output + sqlc.arg(cost_output)::bigint,
    cost_cache_write_5m = cost_cache_write_5m + sqlc.arg(cost_cache_write_5m)::bigint,
    cost_cache_write_1h = cost_cache_write_1h + sqlc.arg(cost_cache_write_1h)::bigint,
    cost_cache_read = cost_cache_read + sqlc.arg(cost_cache_read)::bigint,
    cost_web_search = cost_web_search + sqlc.arg(cost_web_search)::bigint,
    cost_web_fetch = cost_web_fetch + sqlc.arg(cost_web_fetch)::bigint,
    cost_cache_saved = cost_cache_saved + sqlc.arg(cost_cache_saved)::bigint
WHERE hour = sqlc.arg(hour)::timestamptz;

-- AddUsageDailyGlobalCost moves one global daily rollup row's cost sums by a repricing's
-- difference.
-- name: AddUsageDailyGlobalCost :execrows
UPDATE usage_daily_global SET
    cost_total = cost_total + sqlc.arg(cost_total)::bigint,
    cost_input = cost_input + sqlc.arg(cost_input)::bigint,
    cost_output = cost_output + sqlc.arg(cost_output)::bigint,
    cost_cache_write_5m = cost_cache_write_5m + sqlc.arg(cost_cache_write_5m)::bigint,
    cost_cache_write_1h = cost_cache_write_1h + sqlc.arg(cost_cache_write_1h)::bigint,
    cost_cache_read = cost_cache_read + sqlc.arg(cost_cache_read)::bigint,
    cost_web_search = cost_web_search + sqlc.arg(cost_web_search)::bigint,
    cost_web_fetch = cost_web_fetch + sqlc.arg(cost_web_fetch)::bigint,
    cost_cache_saved = cost_cache_saved + sqlc.arg(cost_cache_saved)::bigint
WHERE day = sqlc.arg(day)::text::date AND model = sqlc.arg(model) AND upstream = sqlc.arg(upstream);

-- AddUsageMonthlyKeyCost moves one monthly rollup row's cost sums by a repricing's
-- difference.
-- name: AddUsageMonthlyKeyCost :execrows
UPDATE usage_monthly_key SET
    cost_total = cost_total + sqlc.arg(cost_total)::bigint,
    cost_input = cost_input + sqlc.arg(cost_input)::bigint,
    cost_output = cost_output + sqlc.arg(cost_output)::bigint,
    cost_cache_write_5m = cost_cache_write_5m + sqlc.arg(cost_cache_write_5m)::bigint,
    cost_cache_write_1h = cost_cache_write_1h + sqlc.arg(cost_cache_write_1h)::bigint,
    cost_cache_read = cost_cache_read + sqlc.arg(cost_cache_read)::bigint,
    cost_web_search = cost_web_search + sqlc.arg(cost_web_search)::bigint,
    cost_web_fetch = cost_web_fetch + sqlc.arg(cost_web_fetch)::bigint,
    cost_cache_saved = cost_cache_saved + sqlc.arg(cost_cache_saved)::bigint
WHERE month = sqlc.arg(month)::text::date AND key_id = sqlc.arg(key_id);
