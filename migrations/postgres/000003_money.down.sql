ALTER TABLE owned_objects DROP COLUMN IF EXISTS reserved_cost;

DROP TABLE IF EXISTS price_tables;

DROP INDEX IF EXISTS usage_records_refused_time_idx;
DROP INDEX IF EXISTS usage_records_upstream_time_idx;
DROP INDEX IF EXISTS usage_records_model_time_idx;

ALTER TABLE usage_daily
    DROP COLUMN IF EXISTS cost_web_fetch,
    DROP COLUMN IF EXISTS cost_web_search,
    DROP COLUMN IF EXISTS cost_cache_read,
    DROP COLUMN IF EXISTS cost_cache_write_1h,
    DROP COLUMN IF EXISTS cost_cache_write_5m,
    DROP COLUMN IF EXISTS cost_output,
    DROP COLUMN IF EXISTS cost_input,
    DROP COLUMN IF EXISTS cost_total;

ALTER TABLE usage_records
    DROP COLUMN IF EXISTS cost_detail,
    DROP COLUMN IF EXISTS cost_unpriced,
    DROP COLUMN IF EXISTS cost_fallback_5m,
    DROP COLUMN IF EXISTS price_version,
    DROP COLUMN IF EXISTS cost_web_fetch,
    DROP COLUMN IF EXISTS cost_web_search,
    DROP COLUMN IF EXISTS cost_cache_read,
    DROP COLUMN IF EXISTS cost_cache_write_1h,
    DROP COLUMN IF EXISTS cost_cache_write_5m,
    DROP COLUMN IF EXISTS cost_output,
    DROP COLUMN IF EXISTS cost_input,
    DROP COLUMN IF EXISTS cost_total;

ALTER TABLE api_keys
    DROP COLUMN IF EXISTS budgets,
    DROP COLUMN IF EXISTS allowed_models;
