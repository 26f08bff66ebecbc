-- name: CreateKey :exec
INSERT INTO api_keys (
    id, name, description, key_hash, key_prefix, token_limit, tokens_used,
    rate_limit_tier, is_active, expires_at, allowed_ips, allowed_domains,
    created_at, updated_at, last_used_at, deleted_at, allowed_models, budgets,
    upstream_group
) VALUES (
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19
);

-- name: GetKey :one
SELECT * FROM api_keys
WHERE id = $1 AND deleted_at IS NULL;

-- name: GetKeyByHash :one
SELECT * FROM api_keys
WHERE key_hash = $1;

-- name: ListKeys :many
SELECT * FROM api_keys
WHERE deleted_at IS NULL
  AND (sqlc.narg(is_active)::boolean IS NULL OR is_active = sqlc.narg(is_active))
  AND (sqlc.narg(name_contains)::text IS NULL OR strpos(lower(name), lower(sqlc.narg(name_contains))) > 0)
  AND (sqlc.narg(after_created_at)::timestamptz IS NULL
       OR (created_at, id) < (sqlc.narg(after_created_at), sqlc.arg(after_id)::uuid))
ORDER BY created_at DESC, id DESC
LIMIT sqlc.arg(max_rows)::bigint;

-- name: UpdateKey :execrows
-- Optimistic concurrency: the write applies only if the row still carries
-- the updated_at the caller read (prev_updated_at).
UPDATE api_keys SET
    name = sqlc.arg(name),
    description = sqlc.arg(description),
    key_hash = sqlc.arg(key_hash),
    key_prefix = sqlc.arg(key_prefix),
    token_limit = sqlc.narg(token_limit),
    rate_limit_tier = sqlc.narg(rate_limit_tier),
    is_active = sqlc.arg(is_active),
    expires_at = sqlc.narg(expires_at),
    allowed_ips = sqlc.arg(allowed_ips),
    allowed_domains = sqlc.arg(allowed_domains),
    allowed_models = sqlc.arg(allowed_models),
    budgets = sqlc.arg(budgets),
    upstream_group = sqlc.arg(upstream_group),
    updated_at = sqlc.arg(updated_at)
WHERE id = sqlc.arg(id) AND deleted_at IS NULL AND updated_at = sqlc.arg(prev_updated_at)::timestamptz;

-- name: DeleteKey :execrows
UPDATE api_keys SET deleted_at = sqlc.arg(deleted_at), updated_at = sqlc.arg(deleted_at)
WHERE id = sqlc.arg(id) AND deleted_at IS NULL;
