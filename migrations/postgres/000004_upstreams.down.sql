DROP TABLE IF EXISTS usage_daily_upstream;

ALTER TABLE owned_objects DROP COLUMN IF EXISTS upstream;

ALTER TABLE api_keys DROP COLUMN IF EXISTS upstream_group;

DROP TABLE IF EXISTS upstreams;
