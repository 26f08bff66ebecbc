-- name: InsertObject :execrows
-- A (kind, id) already recorded is left as it is: its first owner stays.
INSERT INTO owned_objects (
    kind, id, key_id, created_at, reservation_id, reserved, settled_at, poll_after, reserved_cost, upstream
) VALUES (
    ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
)
ON CONFLICT (kind, id) DO NOTHING;

-- name: GetObject :one
SELECT * FROM owned_objects
WHERE kind = ? AND id = ?;

-- name: OwnedAmong :many
-- ids is a JSON array of strings: one parameter however many ids an
-- upstream listing holds. JSON_TEXT has TEXT affinity, so the cast keeps the
-- string, and it tells sqlc to type ids as sqlstore.JSONList.
SELECT id FROM owned_objects
WHERE kind = sqlc.arg(kind)
  AND key_id = sqlc.arg(key_id)
  AND id IN (SELECT value FROM json_each(CAST(sqlc.arg(ids) AS JSON_TEXT)));

-- name: UnsettledBatches :many
SELECT * FROM owned_objects
WHERE kind = 'batch' AND settled_at IS NULL AND poll_after <= sqlc.arg(now)
ORDER BY created_at, id
LIMIT sqlc.arg(max_rows);

-- name: SetBatchPollAfter :execrows
UPDATE owned_objects SET poll_after = sqlc.arg(poll_after)
WHERE kind = 'batch' AND id = sqlc.arg(id);

-- name: MarkBatchSettled :execrows
UPDATE owned_objects SET settled_at = sqlc.arg(settled_at)
WHERE kind = 'batch' AND id = sqlc.arg(id);
