DROP TABLE IF EXISTS usage_daily_upstream;

ALTER TABLE owned_objects DROP COLUMN upstream;

ALTER TABLE api_keys DROP COLUMN upstream_group;

DROP TABLE IF EXISTS upstreams;
