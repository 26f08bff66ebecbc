-- name: UsageLogs :many
SELECT * FROM usage_records
WHERE (sqlc.narg(key_id)::uuid IS NULL OR key_id = sqlc.narg(key_id))
  AND (sqlc.narg(from_time)::timestamptz IS NULL OR created_at >= sqlc.narg(from_time))
  AND (sqlc.narg(to_time)::timestamptz IS NULL OR created_at < sqlc.narg(to_time))
  AND (sqlc.narg(status)::integer IS NULL OR status = sqlc.narg(status))
  AND (sqlc.narg(after_time)::timestamptz IS NULL
       OR (created_at, request_id) < (sqlc.narg(after_time), sqlc.arg(after_request_id)::text))
ORDER BY created_at DESC, request_id DESC
LIMIT sqlc.arg(max_rows)::bigint;

-- UsageTotalsFromRecords sums raw records; used when the range is not
-- day-aligned.
-- name: UsageTotalsFromRecords :many
SELECT
    (CASE sqlc.arg(group_by)::text
        WHEN 'key' THEN key_id::text
        WHEN 'day' THEN to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')
        WHEN 'model' THEN model
        ELSE ''
    END)::text AS grp,
    count(*)::bigint AS requests,
    sum(input_tokens)::bigint AS input_tokens,
    sum(output_tokens)::bigint AS output_tokens,
    sum(cache_creation_input_tokens)::bigint AS cache_creation_input_tokens,
    sum(cache_read_input_tokens)::bigint AS cache_read_input_tokens,
    sum(cache_creation_5m_tokens)::bigint AS cache_creation_5m_tokens,
    sum(cache_creation_1h_tokens)::bigint AS cache_creation_1h_tokens
FROM usage_records
WHERE (sqlc.narg(key_id)::uuid IS NULL OR key_id = sqlc.narg(key_id))
  AND (sqlc.narg(from_time)::timestamptz IS NULL OR created_at >= sqlc.narg(from_time))
  AND (sqlc.narg(to_time)::timestamptz IS NULL OR created_at < sqlc.narg(to_time))
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
    sum(cache_creation_1h_tokens)::bigint AS cache_creation_1h_tokens
FROM usage_daily
WHERE (sqlc.narg(key_id)::uuid IS NULL OR key_id = sqlc.narg(key_id))
  AND (sqlc.narg(from_day)::text IS NULL OR day >= sqlc.narg(from_day)::text::date)
  AND (sqlc.narg(to_day)::text IS NULL OR day < sqlc.narg(to_day)::text::date)
GROUP BY 1
ORDER BY 1;
