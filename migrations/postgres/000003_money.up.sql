-- Money: what a key may use and spend, what each request cost, and the
-- price table's versions. Every new column has a default, so a relay still
-- on the previous version keeps writing during a rolling upgrade (its
-- records read as never priced), and adding them rewrites no rows. Amounts
-- are integer nanodollars (10⁻⁹ USD) everywhere: never floats.
ALTER TABLE api_keys
    -- Model ids or path.Match globs the key may use; empty means any model.
    ADD COLUMN allowed_models text[] NOT NULL DEFAULT '{}',
    -- JSON array of {"window","limit_nanos","time_zone"}, limit_nanos an
    -- integer. Text rather than jsonb, so both engines store the same bytes.
    ADD COLUMN budgets        text   NOT NULL DEFAULT '[]';

-- A record's cost per price class, their total, the price table version
-- that priced them ('' when never priced) and the flags a reader needs to
-- trust the figure. cost_detail is the full priced cost as JSON when it says
-- more than the columns do, else ''.
ALTER TABLE usage_records
    ADD COLUMN cost_total          bigint  NOT NULL DEFAULT 0,
    ADD COLUMN cost_input          bigint  NOT NULL DEFAULT 0,
    ADD COLUMN cost_output         bigint  NOT NULL DEFAULT 0,
    ADD COLUMN cost_cache_write_5m bigint  NOT NULL DEFAULT 0,
    ADD COLUMN cost_cache_write_1h bigint  NOT NULL DEFAULT 0,
    ADD COLUMN cost_cache_read     bigint  NOT NULL DEFAULT 0,
    ADD COLUMN cost_web_search     bigint  NOT NULL DEFAULT 0,
    ADD COLUMN cost_web_fetch      bigint  NOT NULL DEFAULT 0,
    ADD COLUMN price_version       text    NOT NULL DEFAULT '',
    ADD COLUMN cost_fallback_5m    boolean NOT NULL DEFAULT false,
    ADD COLUMN cost_unpriced       boolean NOT NULL DEFAULT false,
    ADD COLUMN cost_detail         text    NOT NULL DEFAULT '';

ALTER TABLE usage_daily
    ADD COLUMN cost_total          bigint NOT NULL DEFAULT 0,
    ADD COLUMN cost_input          bigint NOT NULL DEFAULT 0,
    ADD COLUMN cost_output         bigint NOT NULL DEFAULT 0,
    ADD COLUMN cost_cache_write_5m bigint NOT NULL DEFAULT 0,
    ADD COLUMN cost_cache_write_1h bigint NOT NULL DEFAULT 0,
    ADD COLUMN cost_cache_read     bigint NOT NULL DEFAULT 0,
    ADD COLUMN cost_web_search     bigint NOT NULL DEFAULT 0,
    ADD COLUMN cost_web_fetch      bigint NOT NULL DEFAULT 0;

-- The log filters' orders: newest first within one model, within one
-- upstream (a standby that never served must not cost a scan of every
-- record), and among the requests the relay refused itself (no upstream
-- answered), which are few. Each drives one variant of UsageLogs.
CREATE INDEX usage_records_model_time_idx ON usage_records (model, created_at DESC, request_id DESC);
CREATE INDEX usage_records_upstream_time_idx ON usage_records (upstream, created_at DESC, request_id DESC);
CREATE INDEX usage_records_refused_time_idx ON usage_records (created_at DESC, request_id DESC)
    WHERE status >= 400 AND upstream = '';

-- Every version of the price table, never changed or deleted: a usage
-- record's price_version names the one that priced it. seq orders
-- insertion, so the newest is well defined when two share a created_at.
CREATE TABLE price_tables (
    version    text        COLLATE "C" PRIMARY KEY,
    seq        bigint      NOT NULL GENERATED ALWAYS AS IDENTITY UNIQUE,
    -- The table as JSON, as domain/pricing reads it; text keeps its bytes.
    body       text        NOT NULL,
    created_at timestamptz NOT NULL,
    created_by text        NOT NULL DEFAULT '',
    comment    text        NOT NULL DEFAULT ''
);

-- A batch's money reservation, re-held on restart until the reconciler
-- settles it.
ALTER TABLE owned_objects ADD COLUMN reserved_cost bigint NOT NULL DEFAULT 0;
