-- Renders per day: requests the imgproxy backend actually rendered, as opposed to answers served
-- from the gateway's image cache (docs/rate-limits-and-quotas.md, the usage series and billing export).
ALTER TABLE usage_counters ADD COLUMN renders bigint NOT NULL DEFAULT 0 CHECK (renders >= 0);

-- Each flush of a tenant's counts takes the tenant's next version under the row lock of
-- usage_versions, so versions follow commit order. A rebuild of the shared month view reads the
-- month's rows and the version in one statement, and thereby knows which flushes it holds: the
-- ones with a version up to the one it read. The version of a batch is kept with its id, so a
-- retried batch that had committed reports the version it committed under.
CREATE TABLE usage_versions (
  tenant_id uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
  version   bigint NOT NULL CHECK (version > 0)
);
ALTER TABLE usage_flush_batches ADD COLUMN version bigint;
