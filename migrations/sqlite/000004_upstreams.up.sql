-- The upstream pool as managed objects: every Anthropic endpoint and API key
-- the relay forwards to. Seeded from the configuration on first start; the
-- database is authoritative after that.
CREATE TABLE upstreams (
    -- Names the upstream in session pins, object affinity and usage
    -- records; never changes, not even on a rename.
    id              TEXT    NOT NULL PRIMARY KEY,
    name            TEXT    NOT NULL UNIQUE,
    url             TEXT    NOT NULL,
    -- The API key sealed with AES-GCM under UPSTREAM_KEY_SECRET (derived
    -- from SECRET_KEY when unset), bound to id; never the plaintext.
    sealed_key      TEXT    NOT NULL,
    -- The key's last four characters, the only part any view shows.
    key_last4       TEXT    NOT NULL DEFAULT '',
    priority        INTEGER NOT NULL DEFAULT 0 CHECK (priority >= 0),
    weight          INTEGER NOT NULL DEFAULT 1 CHECK (weight >= 1),
    -- In-flight requests per replica; 0 = no cap.
    max_concurrency INTEGER NOT NULL DEFAULT 0 CHECK (max_concurrency >= 0),
    -- Model ids or path.Match globs it serves (JSON array); empty = every model.
    models          TEXT    NOT NULL DEFAULT '[]',
    -- The upstream group ('' = the default group). Not "group": a reserved word.
    grp             TEXT    NOT NULL DEFAULT '',
    enabled         INTEGER NOT NULL DEFAULT 1,
    -- Why it is disabled (by an operator, or by the relay after a 401/403);
    -- '' while enabled.
    disabled_reason TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) WITHOUT ROWID;

-- The upstream group a proxy key's traffic goes to; '' = the default group.
ALTER TABLE api_keys ADD COLUMN upstream_group TEXT NOT NULL DEFAULT '';

-- The upstream that created each batch or file: every later request naming
-- it must go there. '' for objects recorded before the upstream pool.
ALTER TABLE owned_objects ADD COLUMN upstream TEXT NOT NULL DEFAULT '';

-- Daily rollup per upstream and key (day is UTC 'YYYY-MM-DD'), maintained in
-- the same transaction as the records it sums (and moved with them by a
-- repricing), so that usage grouped by upstream over day-aligned ranges
-- never scans usage_records. A table of its own rather than an upstream
-- column in usage_daily, whose primary key the previous version's upsert
-- names.
CREATE TABLE usage_daily_upstream (
    day                         TEXT    NOT NULL,
    upstream                    TEXT    NOT NULL,
    key_id                      TEXT    NOT NULL,
    requests                    INTEGER NOT NULL DEFAULT 0,
    input_tokens                INTEGER NOT NULL DEFAULT 0,
    output_tokens               INTEGER NOT NULL DEFAULT 0,
    cache_creation_input_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_input_tokens     INTEGER NOT NULL DEFAULT 0,
    cache_creation_5m_tokens    INTEGER NOT NULL DEFAULT 0,
    cache_creation_1h_tokens    INTEGER NOT NULL DEFAULT 0,
    cost_total                  INTEGER NOT NULL DEFAULT 0,
    cost_input                  INTEGER NOT NULL DEFAULT 0,
    cost_output                 INTEGER NOT NULL DEFAULT 0,
    cost_cache_write_5m         INTEGER NOT NULL DEFAULT 0,
    cost_cache_write_1h         INTEGER NOT NULL DEFAULT 0,
    cost_cache_read             INTEGER NOT NULL DEFAULT 0,
    cost_web_search             INTEGER NOT NULL DEFAULT 0,
    cost_web_fetch              INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, upstream, key_id)
) WITHOUT ROWID;

-- Every record stored so far, summed once.
INSERT INTO usage_daily_upstream (
    day, upstream, key_id, requests, input_tokens, output_tokens,
    cache_creation_input_tokens, cache_read_input_tokens,
    cache_creation_5m_tokens, cache_creation_1h_tokens,
    cost_total, cost_input, cost_output, cost_cache_write_5m,
    cost_cache_write_1h, cost_cache_read, cost_web_search, cost_web_fetch)
SELECT strftime('%Y-%m-%d', created_at / 1000000, 'unixepoch'), upstream, key_id, count(*),
    sum(input_tokens), sum(output_tokens),
    sum(cache_creation_input_tokens), sum(cache_read_input_tokens),
    sum(cache_creation_5m_tokens), sum(cache_creation_1h_tokens),
    sum(cost_total), sum(cost_input), sum(cost_output), sum(cost_cache_write_5m),
    sum(cost_cache_write_1h), sum(cost_cache_read), sum(cost_web_search), sum(cost_web_fetch)
FROM usage_records
GROUP BY 1, 2, 3;
