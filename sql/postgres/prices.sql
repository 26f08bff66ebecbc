-- name: InsertPriceTable :execrows
-- A version already stored is left as it is: versions never change.
INSERT INTO price_tables (version, body, created_at, created_by, comment)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (version) DO NOTHING;

-- name: CurrentPriceTable :one
SELECT version, body, created_at, created_by, comment FROM price_tables
ORDER BY created_at DESC, seq DESC
LIMIT 1;

-- name: GetPriceTable :one
SELECT version, body, created_at, created_by, comment FROM price_tables
WHERE version = $1;

-- name: ListPriceTables :many
SELECT version, created_at, created_by, comment FROM price_tables
ORDER BY created_at DESC, seq DESC;
