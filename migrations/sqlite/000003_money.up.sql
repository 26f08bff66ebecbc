-- Money: what a key may use and spend, what each request cost, and the
-- price table's versions. Every new column has a default, so a relay still
-- on the previous version keeps writing during a rolling upgrade (its
-- records read as never priced). Amounts are integer nanodollars (10⁻⁹ USD)
-- everywhere: never floats.
-- Model ids or path.Match globs the key may use (JSON array); empty: any.
ALTER TABLE api_keys ADD COLUMN allowed_models TEXT NOT NULL DEFAULT '[]';
-- JSON array of {"window","limit_nanos","time_zone"}, limit_nanos an integer.
ALTER TABLE api_keys ADD COLUMN budgets        TEXT NOT NULL DEFAULT '[]';

-- A record's cost per price class, their total, the price table version
-- that priced them ('' when never priced) and the flags a reader needs to
-- trust the figure. cost_detail is the full priced cost as JSON when it says
-- more than the columns do, else ''.
ALTER TABLE usage_records ADD COLUMN cost_total          INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN cost_input          INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN cost_output         INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN cost_cache_write_5m INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN cost_cache_write_1h INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN cost_cache_read     INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN cost_web_search     INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN cost_web_fetch      INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN price_version       TEXT    NOT NULL DEFAULT '';
ALTER TABLE usage_records ADD COLUMN cost_fallback_5m    INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN cost_unpriced       INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN cost_detail         TEXT    NOT NULL DEFAULT '';

ALTER TABLE usage_daily ADD COLUMN cost_total          INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN cost_input          INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN cost_output         INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN cost_cache_write_5m INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN cost_cache_write_1h INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN cost_cache_read     INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN cost_web_search     INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN cost_web_fetch      INTEGER NOT NULL DEFAULT 0;

-- The log filters' orders: newest first within one model, within one
-- upstream (a standby that never served must not cost a scan of every
-- record), and among the requests the relay refused itself (no upstream
-- answered), which are few. Each drives one variant of UsageLogs.
CREATE INDEX usage_records_model_time_idx ON usage_records (model, created_at DESC, request_id DESC);
CREATE INDEX usage_records_upstream_time_idx ON usage_records (upstream, created_at DESC, request_id DESC);
CREATE INDEX usage_records_refused_time_idx ON usage_records (created_at DESC, request_id DESC)
    WHERE status >= 400 AND upstream = '';

-- Every version of the price table, never changed or deleted: a usage
-- record's price_version names the one that priced it. seq orders insertion,
-- so the newest is well defined when two share a created_at; it is the
-- rowid, as AUTOINCREMENT requires, and version is the unique key.
CREATE TABLE price_tables (
    version    TEXT    NOT NULL UNIQUE,
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The table as JSON, as domain/pricing reads it.
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT    NOT NULL DEFAULT '',
    comment    TEXT    NOT NULL DEFAULT ''
);

-- A batch's money reservation, re-held on restart until the reconciler
-- settles it.
ALTER TABLE owned_objects ADD COLUMN reserved_cost INTEGER NOT NULL DEFAULT 0;
