-- What a reply reports beyond its token counts: the model asked for, the
-- endpoint, the sampling iterations it billed, server-tool calls and its
-- service tier, speed and inference region. Every column has a default, so a
-- relay still on the previous version keeps writing during a rolling upgrade.
ALTER TABLE usage_records ADD COLUMN requested_model     TEXT    NOT NULL DEFAULT '';
ALTER TABLE usage_records ADD COLUMN endpoint            TEXT    NOT NULL DEFAULT '';
-- JSON array of {"type","model","input_tokens","output_tokens",
-- "cache_creation_input_tokens","cache_read_input_tokens",
-- "cache_creation_5m_tokens","cache_creation_1h_tokens"}; '' when none.
ALTER TABLE usage_records ADD COLUMN iterations          TEXT    NOT NULL DEFAULT '';
ALTER TABLE usage_records ADD COLUMN web_search_requests INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN web_fetch_requests  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN service_tier        TEXT    NOT NULL DEFAULT '';
ALTER TABLE usage_records ADD COLUMN speed               TEXT    NOT NULL DEFAULT '';
ALTER TABLE usage_records ADD COLUMN inference_geo       TEXT    NOT NULL DEFAULT '';
ALTER TABLE usage_records ADD COLUMN batch               INTEGER NOT NULL DEFAULT 0;

ALTER TABLE usage_daily ADD COLUMN web_search_requests INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN web_fetch_requests  INTEGER NOT NULL DEFAULT 0;

-- Which proxy key created each upstream object (message batch, file): the
-- upstream workspace is shared by every key, so the relay hides an object
-- from all keys but its owner. key_id has no foreign key for the reason
-- usage_records has none: the object already exists upstream, and its owner
-- must be recorded whatever happened to the key.
CREATE TABLE owned_objects (
    kind           TEXT    NOT NULL, -- 'batch' or 'file'
    id             TEXT    NOT NULL, -- the upstream's id
    key_id         TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    -- Batches only: the quota reservation held for the batch and its size,
    -- when the reconciler settled it, and when it looks at it next.
    reservation_id TEXT    NOT NULL DEFAULT '',
    reserved       INTEGER NOT NULL DEFAULT 0,
    settled_at     INTEGER,
    poll_after     INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;

CREATE INDEX owned_objects_key_idx ON owned_objects (key_id, kind, id);
-- Only the batches still to reconcile, in the order the reconciler takes them.
CREATE INDEX owned_objects_unsettled_idx ON owned_objects (created_at, id)
    WHERE kind = 'batch' AND settled_at IS NULL;
