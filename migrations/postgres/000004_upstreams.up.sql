-- The upstream pool as managed objects: every Anthropic endpoint and API key
-- the relay forwards to. Seeded from the configuration on first start; the
-- database is authoritative after that.
CREATE TABLE upstreams (
    -- Names the upstream in session pins, object affinity and usage
    -- records; never changes, not even on a rename.
    id              text        COLLATE "C" PRIMARY KEY,
    name            text        COLLATE "C" NOT NULL UNIQUE,
    url             text        NOT NULL,
    -- The API key sealed with AES-GCM under UPSTREAM_KEY_SECRET (derived
    -- from SECRET_KEY when unset), bound to id; never the plaintext.
    sealed_key      text        NOT NULL,
    -- The key's last four characters, the only part any view shows.
    key_last4       text        NOT NULL DEFAULT '',
    priority        integer     NOT NULL DEFAULT 0 CHECK (priority >= 0),
    weight          integer     NOT NULL DEFAULT 1 CHECK (weight >= 1),
    -- In-flight requests per replica; 0 = no cap.
    max_concurrency integer     NOT NULL DEFAULT 0 CHECK (max_concurrency >= 0),
    -- Model ids or path.Match globs it serves; empty = every model.
    models          text[]      NOT NULL DEFAULT '{}',
    -- The upstream group ('' = the default group). Not "group": a reserved word.
    grp             text        NOT NULL DEFAULT '',
    enabled         boolean     NOT NULL DEFAULT true,
    -- Why it is disabled (by an operator, or by the relay after a 401/403);
    -- '' while enabled.
    disabled_reason text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

-- The upstream group a proxy key's traffic goes to; '' = the default group.
-- A default, so a relay still on the previous version keeps writing keys
-- during a rolling upgrade.
ALTER TABLE api_keys ADD COLUMN upstream_group text NOT NULL DEFAULT '';

-- The upstream that created each batch or file: every later request naming
-- it must go there. '' for objects recorded before the upstream pool.
ALTER TABLE owned_objects ADD COLUMN upstream text NOT NULL DEFAULT '';

-- Daily rollup per upstream and key, maintained in the same transaction as
-- the records it sums (and moved with them by a repricing), so that usage
-- grouped by upstream over day-aligned ranges never scans usage_records.
-- A table of its own rather than an upstream column in usage_daily: adding
-- it to that table's primary key would make the daily upsert of a relay
-- still on the previous version fail during a rolling upgrade. Records such
-- a relay writes meanwhile are summed in usage_daily only.
CREATE TABLE usage_daily_upstream (
    day                         date   NOT NULL,
    upstream                    text   COLLATE "C" NOT NULL,
    key_id                      uuid   NOT NULL,
    requests                    bigint NOT NULL DEFAULT 0,
    input_tokens                bigint NOT NULL DEFAULT 0,
    output_tokens               bigint NOT NULL DEFAULT 0,
    cache_creation_input_tokens bigint NOT NULL DEFAULT 0,
    cache_read_input_tokens     bigint NOT NULL DEFAULT 0,
    cache_creation_5m_tokens    bigint NOT NULL DEFAULT 0,
    cache_creation_1h_tokens    bigint NOT NULL DEFAULT 0,
    cost_total                  bigint NOT NULL DEFAULT 0,
    cost_input                  bigint NOT NULL DEFAULT 0,
    cost_output                 bigint NOT NULL DEFAULT 0,
    cost_cache_write_5m         bigint NOT NULL DEFAULT 0,
    cost_cache_write_1h         bigint NOT NULL DEFAULT 0,
    cost_cache_read             bigint NOT NULL DEFAULT 0,
    cost_web_search             bigint NOT NULL DEFAULT 0,
    cost_web_fetch              bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, upstream, key_id)
);

-- Every record stored so far, summed once.
INSERT INTO usage_daily_upstream (
    day, upstream, key_id, requests, input_tokens, output_tokens,
    cache_creation_input_tokens, cache_read_input_tokens,
    cache_creation_5m_tokens, cache_creation_1h_tokens,
    cost_total, cost_input, cost_output, cost_cache_write_5m,
    cost_cache_write_1h, cost_cache_read, cost_web_search, cost_web_fetch)
SELECT (created_at AT TIME ZONE 'UTC')::date, upstream, key_id, count(*),
    sum(input_tokens), sum(output_tokens),
    sum(cache_creation_input_tokens), sum(cache_read_input_tokens),
    sum(cache_creation_5m_tokens), sum(cache_creation_1h_tokens),
    sum(cost_total), sum(cost_input), sum(cost_output), sum(cost_cache_write_5m),
    sum(cost_cache_write_1h), sum(cost_cache_read), sum(cost_web_search), sum(cost_web_fetch)
FROM usage_records
GROUP BY 1, 2, 3;
