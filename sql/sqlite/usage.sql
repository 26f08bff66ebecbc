-- name: UpsertUsageDaily :exec
INSERT INTO usage_daily (
    key_id, day, model, requests, input_tokens, output_tokens,
    cache_creation_input_tokens, cache_read_input_tokens,
    cache_creation_5m_tokens, cache_creation_1h_tokens,
    web_search_requests, web_fetch_requests
) VALUES (
    ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
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
    web_fetch_requests = web_fetch_requests + excluded.web_fetch_requests;

-- name: UsageLogs :many
SELECT * FROM usage_records
WHERE (CAST(sqlc.narg(key_id) AS UUID) IS NULL OR key_id = sqlc.narg(key_id))
  AND (CAST(sqlc.narg(from_time) AS TIMESTAMP) IS NULL OR created_at >= sqlc.narg(from_time))
  AND (CAST(sqlc.narg(to_time) AS TIMESTAMP) IS NULL OR created_at < sqlc.narg(to_time))
  AND (CAST(sqlc.narg(status) AS INTEGER) IS NULL OR status = sqlc.narg(status))
  AND (CAST(sqlc.narg(after_time) AS TIMESTAMP) IS NULL
       OR created_at < sqlc.narg(after_time)
       OR (created_at = sqlc.narg(after_time) AND request_id < sqlc.arg(after_request_id)))
ORDER BY created_at DESC, request_id DESC
LIMIT sqlc.arg(max_rows);

-- UsageTotalsFromRecords sums raw records; used when the range is not
-- day-aligned.
-- name: UsageTotalsFromRecords :many
SELECT
    CAST(CASE CAST(sqlc.arg(group_by) AS TEXT)
        WHEN 'key' THEN key_id
        WHEN 'day' THEN strftime('%Y-%m-%d', created_at / 1000000, 'unixepoch')
        WHEN 'model' THEN model
        ELSE ''
    END AS TEXT) AS grp,
    CAST(count(*) AS INTEGER) AS requests,
    CAST(sum(input_tokens) AS INTEGER) AS input_tokens,
    CAST(sum(output_tokens) AS INTEGER) AS output_tokens,
    CAST(sum(cache_creation_input_tokens) AS INTEGER) AS cache_creation_input_tokens,
    CAST(sum(cache_read_input_tokens) AS INTEGER) AS cache_read_input_tokens,
    CAST(sum(cache_creation_5m_tokens) AS INTEGER) AS cache_creation_5m_tokens,
    CAST(sum(cache_creation_1h_tokens) AS INTEGER) AS cache_creation_1h_tokens
FROM usage_records
WHERE (CAST(sqlc.narg(key_id) AS UUID) IS NULL OR key_id = sqlc.narg(key_id))
  AND (CAST(sqlc.narg(from_time) AS TIMESTAMP) IS NULL OR created_at >= sqlc.narg(from_time))
  AND (CAST(sqlc.narg(to_time) AS TIMESTAMP) IS NULL OR created_at < sqlc.narg(to_time))
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
    CAST(sum(cache_creation_1h_tokens) AS INTEGER) AS cache_creation_1h_tokens
FROM usage_daily
WHERE (CAST(sqlc.narg(key_id) AS UUID) IS NULL OR key_id = sqlc.narg(key_id))
  AND (CAST(sqlc.narg(from_day) AS TEXT) IS NULL OR day >= sqlc.narg(from_day))
  AND (CAST(sqlc.narg(to_day) AS TEXT) IS NULL OR day < sqlc.narg(to_day))
GROUP BY 1
ORDER BY 1;
