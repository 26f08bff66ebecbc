-- Times are INTEGER microseconds since the Unix epoch (UTC): compact, exact
-- to PostgreSQL's precision, and ordered by plain integer comparison.
-- UUIDs are lower-case canonical TEXT, whose ordering matches PostgreSQL's.
CREATE TABLE rate_limit_tiers (
    name            TEXT    NOT NULL PRIMARY KEY,
    requests        INTEGER NOT NULL CHECK (requests > 0),
    period_seconds  INTEGER NOT NULL CHECK (period_seconds > 0),
    tokens          INTEGER CHECK (tokens > 0),
    max_concurrency INTEGER CHECK (max_concurrency > 0),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id              TEXT    NOT NULL PRIMARY KEY,
    name            TEXT    NOT NULL,
    description     TEXT    NOT NULL DEFAULT '',
    key_hash        TEXT    NOT NULL,
    key_prefix      TEXT    NOT NULL,
    token_limit     INTEGER,
    tokens_used     INTEGER NOT NULL DEFAULT 0,
    -- NULL means no tier. Soft-deleted keys lose their tier when it is deleted.
    rate_limit_tier TEXT    REFERENCES rate_limit_tiers (name) ON UPDATE CASCADE,
    is_active       INTEGER NOT NULL DEFAULT 1,
    expires_at      INTEGER,
    allowed_ips     TEXT    NOT NULL DEFAULT '[]', -- JSON array of CIDRs
    allowed_domains TEXT    NOT NULL DEFAULT '[]', -- JSON array
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    last_used_at    INTEGER,
    deleted_at      INTEGER
);

CREATE UNIQUE INDEX api_keys_key_hash_idx ON api_keys (key_hash);
CREATE INDEX api_keys_list_idx ON api_keys (created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX api_keys_tier_idx ON api_keys (rate_limit_tier);

-- One row per proxied request. key_id deliberately has no foreign key: usage
-- is an audit log, and a record must never be refused.
CREATE TABLE usage_records (
    -- A rowid table: rows append in arrival order, and only the small
    -- unique index below takes the random request ids (about twice as fast
    -- as a WITHOUT ROWID table keyed by them).
    request_id                  TEXT    NOT NULL UNIQUE,
    key_id                      TEXT    NOT NULL,
    created_at                  INTEGER NOT NULL,
    model                       TEXT    NOT NULL DEFAULT '',
    path                        TEXT    NOT NULL DEFAULT '',
    status                      INTEGER NOT NULL DEFAULT 0,
    stream                      INTEGER NOT NULL DEFAULT 0,
    input_tokens                INTEGER NOT NULL DEFAULT 0,
    output_tokens               INTEGER NOT NULL DEFAULT 0,
    cache_creation_input_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_input_tokens     INTEGER NOT NULL DEFAULT 0,
    cache_creation_5m_tokens    INTEGER NOT NULL DEFAULT 0,
    cache_creation_1h_tokens    INTEGER NOT NULL DEFAULT 0,
    estimated                   INTEGER NOT NULL DEFAULT 0,
    latency_us                  INTEGER NOT NULL DEFAULT 0,
    ttfb_us                     INTEGER NOT NULL DEFAULT 0,
    upstream_request_id         TEXT    NOT NULL DEFAULT '',
    upstream                    TEXT    NOT NULL DEFAULT '',
    session_id                  TEXT    NOT NULL DEFAULT '',
    client_ip                   TEXT    NOT NULL DEFAULT '',
    error_type                  TEXT    NOT NULL DEFAULT ''
);

CREATE INDEX usage_records_key_time_idx ON usage_records (key_id, created_at DESC, request_id DESC);
CREATE INDEX usage_records_time_idx ON usage_records (created_at DESC, request_id DESC);

-- Daily rollup per key and model (day is UTC 'YYYY-MM-DD'), maintained in the
-- same transaction as the records it sums.
CREATE TABLE usage_daily (
    key_id                      TEXT    NOT NULL,
    day                         TEXT    NOT NULL,
    model                       TEXT    NOT NULL,
    requests                    INTEGER NOT NULL DEFAULT 0,
    input_tokens                INTEGER NOT NULL DEFAULT 0,
    output_tokens               INTEGER NOT NULL DEFAULT 0,
    cache_creation_input_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_input_tokens     INTEGER NOT NULL DEFAULT 0,
    cache_creation_5m_tokens    INTEGER NOT NULL DEFAULT 0,
    cache_creation_1h_tokens    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, day, model)
) WITHOUT ROWID;

CREATE INDEX usage_daily_day_idx ON usage_daily (day);
