-- name: ListTiers :many
SELECT * FROM rate_limit_tiers
ORDER BY name;

-- name: GetTier :one
SELECT * FROM rate_limit_tiers
WHERE name = ?;

-- name: UpsertTier :exec
INSERT INTO rate_limit_tiers (
    name, requests, period_seconds, tokens, max_concurrency, created_at, updated_at
) VALUES (
    ?, ?, ?, ?, ?, ?, ?
)
ON CONFLICT (name) DO UPDATE SET
    requests = excluded.requests,
    period_seconds = excluded.period_seconds,
    tokens = excluded.tokens,
    max_concurrency = excluded.max_concurrency,
    updated_at = excluded.updated_at;

-- name: InsertTierIfAbsent :exec
INSERT INTO rate_limit_tiers (
    name, requests, period_seconds, tokens, max_concurrency, created_at, updated_at
) VALUES (
    ?, ?, ?, ?, ?, ?, ?
)
ON CONFLICT (name) DO NOTHING;

-- name: CountTiers :one
SELECT count(*) FROM rate_limit_tiers;

-- name: CountLiveKeysOnTier :one
SELECT count(*) FROM api_keys
WHERE rate_limit_tier = ? AND deleted_at IS NULL;

-- DetachDeletedKeysFromTier lets a tier go once only soft-deleted keys still
-- name it; live keys keep blocking the delete through the foreign key.
-- name: DetachDeletedKeysFromTier :exec
UPDATE api_keys SET rate_limit_tier = NULL
WHERE rate_limit_tier = ? AND deleted_at IS NOT NULL;

-- name: DeleteTier :execrows
DELETE FROM rate_limit_tiers
WHERE name = ?;
