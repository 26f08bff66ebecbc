-- name: ListUpstreams :many
SELECT * FROM upstreams
ORDER BY priority, name;

-- name: GetUpstream :one
SELECT * FROM upstreams
WHERE id = $1;

-- name: CreateUpstream :exec
INSERT INTO upstreams (
    id, name, url, sealed_key, key_last4, priority, weight, max_concurrency,
    models, grp, enabled, disabled_reason, created_at, updated_at
) VALUES (
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14
);

-- InsertUpstreamIfAbsent seeds: an id or name already stored is left alone.
-- name: InsertUpstreamIfAbsent :exec
INSERT INTO upstreams (
    id, name, url, sealed_key, key_last4, priority, weight, max_concurrency,
    models, grp, enabled, disabled_reason, created_at, updated_at
) VALUES (
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14
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
WHERE id = sqlc.arg(id) AND updated_at = sqlc.arg(prev_updated_at)::timestamptz;

-- name: DeleteUpstream :execrows
DELETE FROM upstreams
WHERE id = $1;

-- UsageTotalsByUpstreamFromDaily answers usage grouped by upstream over a
-- day-aligned range from the upstream rollup.
-- name: UsageTotalsByUpstreamFromDaily :many
SELECT
    upstream::text AS grp,
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
FROM usage_daily_upstream
WHERE (sqlc.narg(key_id)::uuid IS NULL OR key_id = sqlc.narg(key_id))
  AND (sqlc.narg(from_day)::text IS NULL OR day >= sqlc.narg(from_day)::text::date)
  AND (sqlc.narg(to_day)::text IS NULL OR day < sqlc.narg(to_day)::text::date)
GROUP BY 1
ORDER BY 1;
