-- name: InsertObject :execrows
-- A (kind, id) already recorded is left as it is: its first owner stays.
INSERT INTO owned_objects (
    kind, id, key_id, created_at, reservation_id, reserved, settled_at, poll_after, reserved_cost, upstream
) VALUES (
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10
)
ON CONFLICT (kind, id) DO NOTHING;

-- name: GetObject :one
SELECT * FROM owned_objects
WHERE kind = $1 AND id = $2;

-- name: OwnedAmong :many
SELECT id FROM owned_objects
WHERE kind = sqlc.arg(kind)
  AND key_id = sqlc.arg(key_id)
  AND id = ANY(sqlc.arg(ids)::text[]);

-- name: UnsettledBatches :many
SELECT * FROM owned_objects
WHERE kind = 'batch' AND settled_at IS NULL AND poll_after <= sqlc.arg(now)
ORDER BY created_at, id
LIMIT sqlc.arg(max_rows)::bigint;

-- name: SetBatchPollAfter :execrows
UPDATE owned_objects SET poll_after = sqlc.arg(poll_after)
WHERE kind = 'batch' AND id = sqlc.arg(id);

-- name: MarkBatchSettled :execrows
UPDATE owned_objects SET settled_at = sqlc.arg(settled_at)
WHERE kind = 'batch' AND id = sqlc.arg(id);
