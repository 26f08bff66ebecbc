-- Rate-limit tiers are referenced by name: keys point at them with a foreign
-- key, so deleting a tier that live keys use fails atomically.
CREATE TABLE rate_limit_tiers (
    name            text        PRIMARY KEY,
    requests        integer     NOT NULL CHECK (requests > 0),
    period_seconds  integer     NOT NULL CHECK (period_seconds > 0),
    tokens          bigint      CHECK (tokens > 0),
    max_concurrency integer     CHECK (max_concurrency > 0),
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

CREATE TABLE api_keys (
    id              uuid        PRIMARY KEY,
    name            text        NOT NULL,
    description     text        NOT NULL DEFAULT '',
    key_hash        text        NOT NULL,
    key_prefix      text        NOT NULL,
    token_limit     bigint,
    tokens_used     bigint      NOT NULL DEFAULT 0,
    -- NULL means no tier. Soft-deleted keys lose their tier when it is deleted.
    rate_limit_tier text        REFERENCES rate_limit_tiers (name) ON UPDATE CASCADE,
    is_active       boolean     NOT NULL DEFAULT true,
    expires_at      timestamptz,
    allowed_ips     text[]      NOT NULL DEFAULT '{}',
    allowed_domains text[]      NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    last_used_at    timestamptz,
    deleted_at      timestamptz
);

CREATE UNIQUE INDEX api_keys_key_hash_idx ON api_keys (key_hash);
CREATE INDEX api_keys_list_idx ON api_keys (created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX api_keys_tier_idx ON api_keys (rate_limit_tier);

-- One row per proxied request. key_id deliberately has no foreign key: usage
-- is an audit log, and a record must never be refused (the writer would
-- retry a poisoned batch forever). Keys are only ever soft-deleted anyway.
CREATE TABLE usage_records (
    request_id                  text        COLLATE "C" PRIMARY KEY,
    key_id                      uuid        NOT NULL,
    created_at                  timestamptz NOT NULL,
    model                       text        NOT NULL DEFAULT '',
    path                        text        NOT NULL DEFAULT '',
    status                      integer     NOT NULL DEFAULT 0,
    stream                      boolean     NOT NULL DEFAULT false,
    input_tokens                bigint      NOT NULL DEFAULT 0,
    output_tokens               bigint      NOT NULL DEFAULT 0,
    cache_creation_input_tokens bigint      NOT NULL DEFAULT 0,
    cache_read_input_tokens     bigint      NOT NULL DEFAULT 0,
    cache_creation_5m_tokens    bigint      NOT NULL DEFAULT 0,
    cache_creation_1h_tokens    bigint      NOT NULL DEFAULT 0,
    estimated                   boolean     NOT NULL DEFAULT false,
    latency_us                  bigint      NOT NULL DEFAULT 0,
    ttfb_us                     bigint      NOT NULL DEFAULT 0,
    upstream_request_id         text        NOT NULL DEFAULT '',
    upstream                    text        NOT NULL DEFAULT '',
    session_id                  text        NOT NULL DEFAULT '',
    client_ip                   text        NOT NULL DEFAULT '',
    error_type                  text        NOT NULL DEFAULT ''
);

CREATE INDEX usage_records_key_time_idx ON usage_records (key_id, created_at DESC, request_id DESC);
CREATE INDEX usage_records_time_idx ON usage_records (created_at DESC, request_id DESC);

-- Daily rollup per key and model, maintained in the same transaction as the
-- records it sums, so day-aligned totals never scan usage_records.
CREATE TABLE usage_daily (
    key_id                      uuid   NOT NULL,
    day                         date   NOT NULL,
    model                       text   NOT NULL,
    requests                    bigint NOT NULL DEFAULT 0,
    input_tokens                bigint NOT NULL DEFAULT 0,
    output_tokens               bigint NOT NULL DEFAULT 0,
    cache_creation_input_tokens bigint NOT NULL DEFAULT 0,
    cache_read_input_tokens     bigint NOT NULL DEFAULT 0,
    cache_creation_5m_tokens    bigint NOT NULL DEFAULT 0,
    cache_creation_1h_tokens    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, day, model)
);

CREATE INDEX usage_daily_day_idx ON usage_daily (day);
