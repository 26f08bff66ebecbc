DROP TABLE IF EXISTS owned_objects;

ALTER TABLE usage_daily
    DROP COLUMN IF EXISTS web_fetch_requests,
    DROP COLUMN IF EXISTS web_search_requests;

ALTER TABLE usage_records
    DROP COLUMN IF EXISTS batch,
    DROP COLUMN IF EXISTS inference_geo,
    DROP COLUMN IF EXISTS speed,
    DROP COLUMN IF EXISTS service_tier,
    DROP COLUMN IF EXISTS web_fetch_requests,
    DROP COLUMN IF EXISTS web_search_requests,
    DROP COLUMN IF EXISTS iterations,
    DROP COLUMN IF EXISTS endpoint,
    DROP COLUMN IF EXISTS requested_model;
