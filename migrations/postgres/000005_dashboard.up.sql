-- The dashboard: what each request's cache reads saved, the upstream
-- attempts it made, a global hourly rollup for the overview, and the
-- indexes its pages read by. Every new column has a default, so a relay
-- still on the previous version keeps writing during a rolling upgrade
-- (its records save nothing, made no recorded attempts, and are missing
-- from the rollups made here: usage_hourly, usage_daily_global and
-- usage_monthly_key).

-- cost_cache_saved: what the record's cache reads would have cost at the
-- input rate of the same price card and modifiers, minus what they cost
-- (nanodollars). Not a price class: cost_total does not include it.
-- attempts: upstream attempts made (0: the relay refused before sending);
-- tried_upstreams: the ids of the upstreams tried before the one that
-- served it, comma-joined.
ALTER TABLE usage_records
    ADD COLUMN cost_cache_saved bigint   NOT NULL DEFAULT 0,
    ADD COLUMN attempts         smallint NOT NULL DEFAULT 0,
    ADD COLUMN tried_upstreams  text     NOT NULL DEFAULT '';

ALTER TABLE usage_daily ADD COLUMN cost_cache_saved bigint NOT NULL DEFAULT 0;
ALTER TABLE usage_daily_upstream ADD COLUMN cost_cache_saved bigint NOT NULL DEFAULT 0;

-- Global hourly rollup (hour is the hour's start, UTC), maintained in the same
-- transaction as the records it sums (and moved with them by a repricing):
-- the overview's series and any totals over whole hours of every key read
-- at most 24 rows a day. status_* count the requests per class of their
-- final status (ok below 400; client_error 4xx but 429; rate_limited 429;
-- server_error 5xx but 529, and above; overloaded 529); refused counts those
-- the relay refused itself (status 400 or more, no upstream), which are in
-- their class too. ttfb_bNN is a histogram of the time to first byte of the
-- requests that had one (ttfb_us > 0), by inclusive upper bound in ms: 10,
-- 16, 25, 40, 63, 100, 160, 250, 400, 630, 1000, 1600, 2500, 4000, 6300,
-- 10000, 16000, 25000, 40000, 63000 and above (b20); ttfb_count is their
-- number. The bounds are domain.TTFBBucketBounds.
CREATE TABLE usage_hourly (
    hour                         timestamptz NOT NULL PRIMARY KEY,
    requests                    bigint NOT NULL DEFAULT 0,
    input_tokens                bigint NOT NULL DEFAULT 0,
    output_tokens               bigint NOT NULL DEFAULT 0,
    cache_creation_input_tokens bigint NOT NULL DEFAULT 0,
    cache_read_input_tokens     bigint NOT NULL DEFAULT 0,
    cache_creation_5m_tokens    bigint NOT NULL DEFAULT 0,
    cache_creation_1h_tokens    bigint NOT NULL DEFAULT 0,
    web_search_requests         bigint NOT NULL DEFAULT 0,
    web_fetch_requests          bigint NOT NULL DEFAULT 0,
    cost_total                  bigint NOT NULL DEFAULT 0,
    cost_input                  bigint NOT NULL DEFAULT 0,
    cost_output                 bigint NOT NULL DEFAULT 0,
    cost_cache_write_5m         bigint NOT NULL DEFAULT 0,
    cost_cache_write_1h         bigint NOT NULL DEFAULT 0,
    cost_cache_read             bigint NOT NULL DEFAULT 0,
    cost_web_search             bigint NOT NULL DEFAULT 0,
    cost_web_fetch              bigint NOT NULL DEFAULT 0,
    cost_cache_saved            bigint NOT NULL DEFAULT 0,
    status_ok                   bigint NOT NULL DEFAULT 0,
    status_client_error         bigint NOT NULL DEFAULT 0,
    status_rate_limited         bigint NOT NULL DEFAULT 0,
    status_server_error         bigint NOT NULL DEFAULT 0,
    status_overloaded           bigint NOT NULL DEFAULT 0,
    refused                     bigint NOT NULL DEFAULT 0,
    ttfb_b00                    bigint NOT NULL DEFAULT 0,
    ttfb_b01                    bigint NOT NULL DEFAULT 0,
    ttfb_b02                    bigint NOT NULL DEFAULT 0,
    ttfb_b03                    bigint NOT NULL DEFAULT 0,
    ttfb_b04                    bigint NOT NULL DEFAULT 0,
    ttfb_b05                    bigint NOT NULL DEFAULT 0,
    ttfb_b06                    bigint NOT NULL DEFAULT 0,
    ttfb_b07                    bigint NOT NULL DEFAULT 0,
    ttfb_b08                    bigint NOT NULL DEFAULT 0,
    ttfb_b09                    bigint NOT NULL DEFAULT 0,
    ttfb_b10                    bigint NOT NULL DEFAULT 0,
    ttfb_b11                    bigint NOT NULL DEFAULT 0,
    ttfb_b12                    bigint NOT NULL DEFAULT 0,
    ttfb_b13                    bigint NOT NULL DEFAULT 0,
    ttfb_b14                    bigint NOT NULL DEFAULT 0,
    ttfb_b15                    bigint NOT NULL DEFAULT 0,
    ttfb_b16                    bigint NOT NULL DEFAULT 0,
    ttfb_b17                    bigint NOT NULL DEFAULT 0,
    ttfb_b18                    bigint NOT NULL DEFAULT 0,
    ttfb_b19                    bigint NOT NULL DEFAULT 0,
    ttfb_b20                    bigint NOT NULL DEFAULT 0,
    ttfb_count                  bigint NOT NULL DEFAULT 0
);

-- Every record stored so far, summed once.
INSERT INTO usage_hourly (hour, requests, input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens, cache_creation_5m_tokens, cache_creation_1h_tokens, web_search_requests, web_fetch_requests, cost_total, cost_input, cost_output, cost_cache_write_5m, cost_cache_write_1h, cost_cache_read, cost_web_search, cost_web_fetch, cost_cache_saved, status_ok, status_client_error, status_rate_limited, status_server_error, status_overloaded, refused, ttfb_b00, ttfb_b01, ttfb_b02, ttfb_b03, ttfb_b04, ttfb_b05, ttfb_b06, ttfb_b07, ttfb_b08, ttfb_b09, ttfb_b10, ttfb_b11, ttfb_b12, ttfb_b13, ttfb_b14, ttfb_b15, ttfb_b16, ttfb_b17, ttfb_b18, ttfb_b19, ttfb_b20, ttfb_count)
SELECT date_trunc('hour', created_at, 'UTC'),
    count(*),
    sum(input_tokens),
    sum(output_tokens),
    sum(cache_creation_input_tokens),
    sum(cache_read_input_tokens),
    sum(cache_creation_5m_tokens),
    sum(cache_creation_1h_tokens),
    sum(web_search_requests),
    sum(web_fetch_requests),
    sum(cost_total),
    sum(cost_input),
    sum(cost_output),
    sum(cost_cache_write_5m),
    sum(cost_cache_write_1h),
    sum(cost_cache_read),
    sum(cost_web_search),
    sum(cost_web_fetch),
    sum(cost_cache_saved),
    count(*) FILTER (WHERE status < 400),
    count(*) FILTER (WHERE status >= 400 AND status < 500 AND status <> 429),
    count(*) FILTER (WHERE status = 429),
    count(*) FILTER (WHERE status >= 500 AND status <> 529),
    count(*) FILTER (WHERE status = 529),
    count(*) FILTER (WHERE status >= 400 AND upstream = ''),
    count(*) FILTER (WHERE ttfb_us > 0 AND ttfb_us <= 10000),
    count(*) FILTER (WHERE ttfb_us > 10000 AND ttfb_us <= 16000),
    count(*) FILTER (WHERE ttfb_us > 16000 AND ttfb_us <= 25000),
    count(*) FILTER (WHERE ttfb_us > 25000 AND ttfb_us <= 40000),
    count(*) FILTER (WHERE ttfb_us > 40000 AND ttfb_us <= 63000),
    count(*) FILTER (WHERE ttfb_us > 63000 AND ttfb_us <= 100000),
    count(*) FILTER (WHERE ttfb_us > 100000 AND ttfb_us <= 160000),
    count(*) FILTER (WHERE ttfb_us > 160000 AND ttfb_us <= 250000),
    count(*) FILTER (WHERE ttfb_us > 250000 AND ttfb_us <= 400000),
    count(*) FILTER (WHERE ttfb_us > 400000 AND ttfb_us <= 630000),
    count(*) FILTER (WHERE ttfb_us > 630000 AND ttfb_us <= 1000000),
    count(*) FILTER (WHERE ttfb_us > 1000000 AND ttfb_us <= 1600000),
    count(*) FILTER (WHERE ttfb_us > 1600000 AND ttfb_us <= 2500000),
    count(*) FILTER (WHERE ttfb_us > 2500000 AND ttfb_us <= 4000000),
    count(*) FILTER (WHERE ttfb_us > 4000000 AND ttfb_us <= 6300000),
    count(*) FILTER (WHERE ttfb_us > 6300000 AND ttfb_us <= 10000000),
    count(*) FILTER (WHERE ttfb_us > 10000000 AND ttfb_us <= 16000000),
    count(*) FILTER (WHERE ttfb_us > 16000000 AND ttfb_us <= 25000000),
    count(*) FILTER (WHERE ttfb_us > 25000000 AND ttfb_us <= 40000000),
    count(*) FILTER (WHERE ttfb_us > 40000000 AND ttfb_us <= 63000000),
    count(*) FILTER (WHERE ttfb_us > 63000000),
    count(*) FILTER (WHERE ttfb_us > 0)
FROM usage_records
GROUP BY 1;


-- Daily rollup of every key per model and upstream (day is UTC), for totals
-- of every key grouped by model or upstream: a few rows a day, where the
-- rollups per key hold thousands.
CREATE TABLE usage_daily_global (
    day                         date   NOT NULL,
    model                       text   COLLATE "C" NOT NULL,
    upstream                    text   COLLATE "C" NOT NULL,
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
    cost_cache_saved            bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, model, upstream)
);

-- Monthly rollup per key (month is the UTC month's first day), for totals
-- of every key grouped by key over long ranges: the whole months of a range
-- are a row per key each, its ends are whole days of usage_daily_upstream
-- (added, or subtracted from the month that holds them when that reads
-- fewer days) and the records of its partial days.
CREATE TABLE usage_monthly_key (
    month                       date   NOT NULL,
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
    cost_cache_saved            bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (month, key_id)
);

-- Every record stored so far, summed once.
INSERT INTO usage_daily_global (day, model, upstream, requests, input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens, cache_creation_5m_tokens, cache_creation_1h_tokens, cost_total, cost_input, cost_output, cost_cache_write_5m, cost_cache_write_1h, cost_cache_read, cost_web_search, cost_web_fetch, cost_cache_saved)
SELECT (created_at AT TIME ZONE 'UTC')::date, model, upstream, count(*), sum(input_tokens), sum(output_tokens), sum(cache_creation_input_tokens), sum(cache_read_input_tokens), sum(cache_creation_5m_tokens), sum(cache_creation_1h_tokens), sum(cost_total), sum(cost_input), sum(cost_output), sum(cost_cache_write_5m), sum(cost_cache_write_1h), sum(cost_cache_read), sum(cost_web_search), sum(cost_web_fetch), sum(cost_cache_saved)
FROM usage_records
GROUP BY 1, 2, 3;

INSERT INTO usage_monthly_key (month, key_id, requests, input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens, cache_creation_5m_tokens, cache_creation_1h_tokens, cost_total, cost_input, cost_output, cost_cache_write_5m, cost_cache_write_1h, cost_cache_read, cost_web_search, cost_web_fetch, cost_cache_saved)
SELECT date_trunc('month', created_at AT TIME ZONE 'UTC')::date, key_id, count(*), sum(input_tokens), sum(output_tokens), sum(cache_creation_input_tokens), sum(cache_read_input_tokens), sum(cache_creation_5m_tokens), sum(cache_creation_1h_tokens), sum(cost_total), sum(cost_input), sum(cost_output), sum(cost_cache_write_5m), sum(cost_cache_write_1h), sum(cost_cache_read), sum(cost_web_search), sum(cost_web_fetch), sum(cost_cache_saved)
FROM usage_records
GROUP BY 1, 2;

-- A key's spend history (SpendHistory) reads its records' costs from the
-- index alone.
DROP INDEX usage_records_key_time_idx;
CREATE INDEX usage_records_key_time_idx ON usage_records (key_id, created_at DESC, request_id DESC) INCLUDE (cost_total);

-- The log filter by status: a page of errors must not scan the table by
-- time. Only the statuses other than 200 are indexed (a few percent of
-- the records, so the writer barely pays for it); a page of 200s is read
-- by time. And the rollup per upstream read for one key.
CREATE INDEX usage_records_status_time_idx ON usage_records (status, created_at DESC, request_id DESC)
    WHERE status <> 200;
CREATE INDEX usage_daily_upstream_key_idx ON usage_daily_upstream (key_id, day);
