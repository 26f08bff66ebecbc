-- What a reply reports beyond its token counts: the model asked for, the
-- endpoint, the sampling iterations it billed, server-tool calls and its
-- service tier, speed and inference region. Every column has a default, so a
-- relay still on the previous version keeps writing during a rolling upgrade
-- (and adding a column with a constant default rewrites no rows).
ALTER TABLE usage_records
    ADD COLUMN requested_model     text    NOT NULL DEFAULT '',
    ADD COLUMN endpoint            text    NOT NULL DEFAULT '',
    -- JSON array of {"type","model","input_tokens","output_tokens",
    -- "cache_creation_input_tokens","cache_read_input_tokens",
    -- "cache_creation_5m_tokens","cache_creation_1h_tokens"}; '' when none.
    -- Text rather than jsonb, so both engines store the same bytes.
    ADD COLUMN iterations          text    NOT NULL DEFAULT '',
    ADD COLUMN web_search_requests bigint  NOT NULL DEFAULT 0,
    ADD COLUMN web_fetch_requests  bigint  NOT NULL DEFAULT 0,
    ADD COLUMN service_tier        text    NOT NULL DEFAULT '',
    ADD COLUMN speed               text    NOT NULL DEFAULT '',
    ADD COLUMN inference_geo       text    NOT NULL DEFAULT '',
    ADD COLUMN batch               boolean NOT NULL DEFAULT false;

ALTER TABLE usage_daily
    ADD COLUMN web_search_requests bigint NOT NULL DEFAULT 0,
    ADD COLUMN web_fetch_requests  bigint NOT NULL DEFAULT 0;

-- Which proxy key created each upstream object (message batch, file): the
-- upstream workspace is shared by every key, so the relay hides an object
-- from all keys but its owner. key_id has no foreign key for the reason
-- usage_records has none: the object already exists upstream, and its owner
-- must be recorded whatever happened to the key.
CREATE TABLE owned_objects (
    kind           text        COLLATE "C" NOT NULL, -- 'batch' or 'file'
    id             text        COLLATE "C" NOT NULL, -- the upstream's id
    key_id         uuid        NOT NULL,
    created_at     timestamptz NOT NULL,
    -- Batches only: the quota reservation held for the batch and its size,
    -- when the reconciler settled it, and when it looks at it next.
    reservation_id text        NOT NULL DEFAULT '',
    reserved       bigint      NOT NULL DEFAULT 0,
    settled_at     timestamptz,
    poll_after     timestamptz NOT NULL,
    PRIMARY KEY (kind, id)
);

CREATE INDEX owned_objects_key_idx ON owned_objects (key_id, kind, id);
-- Only the batches still to reconcile, in the order the reconciler takes them.
CREATE INDEX owned_objects_unsettled_idx ON owned_objects (created_at, id)
    WHERE kind = 'batch' AND settled_at IS NULL;
