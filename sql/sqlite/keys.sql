-- name: CreateKey :exec
INSERT INTO api_keys (
    id, name, description, key_hash, key_prefix, token_limit, tokens_used,
    rate_limit_tier, is_active, expires_at, allowed_ips, allowed_domains,
    created_at, updated_at, last_used_at, deleted_at, allowed_models, budgets,
    upstream_group
) VALUES (
    ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
);

-- name: GetKey :one
SELECT * FROM api_keys
WHERE id = ? AND deleted_at IS NULL;

-- name: GetKeyByHash :one
SELECT * FROM api_keys
WHERE key_hash = ?;

-- name: ListKeys :many
SELECT * FROM api_keys
WHERE deleted_at IS NULL
  AND (CAST(sqlc.narg(is_active) AS BOOLEAN) IS NULL OR is_active = sqlc.narg(is_active))
  AND (CAST(sqlc.narg(name_contains) AS TEXT) IS NULL OR instr(lower(name), lower(sqlc.narg(name_contains))) > 0)
  AND (CAST(sqlc.narg(after_created_at) AS TIMESTAMP) IS NULL
       OR created_at < sqlc.narg(after_created_at)
       OR (created_at = sqlc.narg(after_created_at) AND id < sqlc.arg(after_id)))
ORDER BY created_at DESC, id DESC
LIMIT sqlc.arg(max_rows);

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
WHERE id = sqlc.arg(id) AND deleted_at IS NULL AND updated_at = sqlc.arg(prev_updated_at);

-- name: DeleteKey :execrows
UPDATE api_keys SET deleted_at = sqlc.arg(deleted_at), updated_at = sqlc.arg(deleted_at)
WHERE id = sqlc.arg(id) AND deleted_at IS NULL;

-- name: AddKeyUsage :exec
UPDATE api_keys SET
    tokens_used = tokens_used + sqlc.arg(tokens),
    last_used_at = max(coalesce(last_used_at, 0), CAST(sqlc.arg(last_used_at) AS INTEGER))
WHERE id = sqlc.arg(id);
