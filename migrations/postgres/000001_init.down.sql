DROP TABLE IF EXISTS usage_daily;
DROP TABLE IF EXISTS usage_records;
DROP TABLE IF EXISTS api_keys;
DROP TABLE IF EXISTS rate_limit_tiers;
