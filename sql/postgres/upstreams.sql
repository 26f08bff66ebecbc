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
