ALTER TABLE owned_objects DROP COLUMN reserved_cost;

DROP TABLE IF EXISTS price_tables;

DROP INDEX IF EXISTS usage_records_refused_time_idx;
DROP INDEX IF EXISTS usage_records_upstream_time_idx;
DROP INDEX IF EXISTS usage_records_model_time_idx;

ALTER TABLE usage_daily DROP COLUMN cost_web_fetch;
ALTER TABLE usage_daily DROP COLUMN cost_web_search;
ALTER TABLE usage_daily DROP COLUMN cost_cache_read;
ALTER TABLE usage_daily DROP COLUMN cost_cache_write_1h;
ALTER TABLE usage_daily DROP COLUMN cost_cache_write_5m;
ALTER TABLE usage_daily DROP COLUMN cost_output;
ALTER TABLE usage_daily DROP COLUMN cost_input;
ALTER TABLE usage_daily DROP COLUMN cost_total;

ALTER TABLE usage_records DROP COLUMN cost_detail;
ALTER TABLE usage_records DROP COLUMN cost_unpriced;
ALTER TABLE usage_records DROP COLUMN cost_fallback_5m;
ALTER TABLE usage_records DROP COLUMN price_version;
ALTER TABLE usage_records DROP COLUMN cost_web_fetch;
ALTER TABLE usage_records DROP COLUMN cost_web_search;
ALTER TABLE usage_records DROP COLUMN cost_cache_read;
ALTER TABLE usage_records DROP COLUMN cost_cache_write_1h;
ALTER TABLE usage_records DROP COLUMN cost_cache_write_5m;
ALTER TABLE usage_records DROP COLUMN cost_output;
ALTER TABLE usage_records DROP COLUMN cost_input;
ALTER TABLE usage_records DROP COLUMN cost_total;

ALTER TABLE api_keys DROP COLUMN budgets;
ALTER TABLE api_keys DROP COLUMN allowed_models;
