-- Exactly-once flushing of usage counters (docs/rate-limits-and-quotas.md). A flush takes a tenant's pending deltas out
-- of Redis as one batch with a random id and applies it in one transaction together with the
-- batch id; a retry of a batch whose earlier attempt committed (the gateway died before it could
-- tell Redis) finds its id here and applies nothing. Rows older than a day are pruned by the
-- flush job: a batch is retried within seconds or not at all.
CREATE TABLE usage_flush_batches (
  batch_id   uuid PRIMARY KEY,
  tenant_id  uuid NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_flush_batches_applied_at_idx ON usage_flush_batches (applied_at);
