-- name: ListUpstreams :many
SELECT * FROM upstreams
ORDER BY priority, name;

-- name: GetUpstream :one
SELECT * FROM upstreams
WHERE id = ?;

-- name: CreateUpstream :exec
INSERT INTO upstreams (
    id, name, url, sealed_key, key_last4, priority, weight, max_concurrency,
    models, grp, enabled, disabled_reason, created_at, updated_at
) VALUES (
    ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
);

-- InsertUpstreamIfAbsent seeds: an id or name already stored is left alone.
-- name: InsertUpstreamIfAbsent :exec
INSERT INTO upstreams (
    id, name, url, sealed_key, key_last4, priority, weight, max_concurrency,
    models, grp, enabled, disabled_reason, created_at, updated_at
) VALUES (
    ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
)
ON CONFLICT DO NOTHING;

-- name: CountUpstreams :one
SELECT count(*) FROM upstreams;

-- name: UpdateUpstream :execrows
-- Optimistic concurrency: the write applies only if the row still carries
-- the updated_at the caller read (prev_updated_at).
UPDATE upstreams SET
    name = sqlc.arg(name),
    url = sqlc.arg(url),
    sealed_key = sqlc.arg(sealed_key),
    key_last4 = sqlc.arg(key_last4),
    priority = sqlc.arg(priority),
    weight = sqlc.arg(weight),
    max_concurrency = sqlc.arg(max_concurrency),
    models = sqlc.arg(models),
    grp = sqlc.arg(grp),
    enabled = sqlc.arg(enabled),
    disabled_reason = sqlc.arg(disabled_reason),
    updated_at = sqlc.arg(updated_at)
WHERE id = sqlc.arg(id) AND updated_at = sqlc.arg(prev_updated_at);

-- name: DeleteUpstream :execrows
DELETE FROM upstreams
WHERE id = ?;

-- UsageTotalsByUpstreamFromDaily answers usage grouped by upstream over a
-- day-aligned range from the upstream rollup.
-- name: UsageTotalsByUpstreamFromDaily :many
SELECT
    CAST(upstream AS TEXT) AS grp,
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
FROM usage_daily_upstream
WHERE (CAST(sqlc.narg(key_id) AS UUID) IS NULL OR key_id = sqlc.narg(key_id))
  AND (CAST(sqlc.narg(from_day) AS TEXT) IS NULL OR day >= sqlc.narg(from_day))
  AND (CAST(sqlc.narg(to_day) AS TEXT) IS NULL OR day < sqlc.narg(to_day))
GROUP BY 1
ORDER BY 1;
