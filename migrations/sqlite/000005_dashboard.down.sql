DROP INDEX IF EXISTS usage_daily_upstream_key_idx;
DROP INDEX IF EXISTS usage_records_status_time_idx;
DROP INDEX IF EXISTS usage_records_key_time_idx;
CREATE INDEX usage_records_key_time_idx ON usage_records (key_id, created_at DESC, request_id DESC);

DROP TABLE IF EXISTS usage_hourly;
DROP TABLE IF EXISTS usage_daily_global;
DROP TABLE IF EXISTS usage_monthly_key;

ALTER TABLE usage_daily_upstream DROP COLUMN cost_cache_saved;
ALTER TABLE usage_daily DROP COLUMN cost_cache_saved;
ALTER TABLE usage_records DROP COLUMN tried_upstreams;
ALTER TABLE usage_records DROP COLUMN attempts;
ALTER TABLE usage_records DROP COLUMN cost_cache_saved;
