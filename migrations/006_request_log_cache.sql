-- How the response cache answered a logged request (docs/cache.md): hit, miss or bypass on a
-- cached route; NULL where the route has no cache (and for rows written before this column).
ALTER TABLE request_logs ADD COLUMN cache text CHECK (cache IN ('hit', 'miss', 'bypass'));
