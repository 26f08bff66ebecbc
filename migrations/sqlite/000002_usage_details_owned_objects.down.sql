DROP TABLE IF EXISTS owned_objects;

ALTER TABLE usage_daily DROP COLUMN web_fetch_requests;
ALTER TABLE usage_daily DROP COLUMN web_search_requests;

ALTER TABLE usage_records DROP COLUMN batch;
ALTER TABLE usage_records DROP COLUMN inference_geo;
ALTER TABLE usage_records DROP COLUMN speed;
ALTER TABLE usage_records DROP COLUMN service_tier;
ALTER TABLE usage_records DROP COLUMN web_fetch_requests;
ALTER TABLE usage_records DROP COLUMN web_search_requests;
ALTER TABLE usage_records DROP COLUMN iterations;
ALTER TABLE usage_records DROP COLUMN endpoint;
ALTER TABLE usage_records DROP COLUMN requested_model;
