-- The whole schema (docs/architecture.md). Identifiers are uuids; addresses use inet/cidr; every lookup the
-- request path or a report makes has an index.

CREATE TABLE plans (
  id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name                    text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9-]{1,32}$'),
  description             text,
  rate_per_minute         integer NOT NULL CHECK (rate_per_minute > 0),
  rate_per_hour           integer NOT NULL CHECK (rate_per_hour > 0),
  burst                   integer CHECK (burst > 0),
  monthly_requests        bigint NOT NULL CHECK (monthly_requests > 0),
  daily_requests          bigint CHECK (daily_requests > 0),
  monthly_bandwidth_bytes bigint NOT NULL CHECK (monthly_bandwidth_bytes > 0),
  storage_bytes           bigint NOT NULL CHECK (storage_bytes > 0),
  created_at              timestamptz NOT NULL DEFAULT now(),
  updated_at              timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tenants (
  id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  email               text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
  plan_id             uuid NOT NULL REFERENCES plans (id) ON DELETE RESTRICT,
  status              text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
  -- Per-tenant overrides of the plan: {"perMinute": n, "perHour": n}; absent key = plan value.
  rate_limits         jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- {"monthlyRequests", "dailyRequests", "monthlyBandwidthBytes", "storageBytes"}
  quotas              jsonb NOT NULL DEFAULT '{}'::jsonb,
  allowed_sources     text[] NOT NULL DEFAULT '{}',
  allow_unsigned_urls boolean NOT NULL DEFAULT false,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX tenants_email_key ON tenants (lower(email));
CREATE INDEX tenants_plan_id_idx ON tenants (plan_id);
CREATE INDEX tenants_name_idx ON tenants (lower(name) text_pattern_ops);
CREATE INDEX tenants_created_at_idx ON tenants (created_at, id);

CREATE TABLE api_keys (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  -- Public part of igw_<keyId>_<secret>; the hot path looks keys up by it.
  key_id           text NOT NULL UNIQUE CHECK (key_id ~ '^[0-9A-Za-z]{12}$'),
  -- HMAC-SHA256(KEY_PEPPER, secret): the secret itself is never stored.
  secret_hash      bytea NOT NULL CHECK (length(secret_hash) = 32),
  name             text,
  scopes           text[] NOT NULL DEFAULT '{images:read}',
  -- URL-signing key and salt, AES-256-GCM under SECRETS_KEY (iv | tag | ciphertext).
  signing_key_enc  bytea NOT NULL,
  signing_salt_enc bytea NOT NULL,
  expires_at       timestamptz,
  revoked_at       timestamptz,
  last_used_at     timestamptz,
  created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_tenant_id_idx ON api_keys (tenant_id, created_at);

CREATE TABLE ip_allowlist (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  cidr        cidr NOT NULL,
  description text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, cidr)
);

CREATE TABLE backends (
  id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name              text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9._-]{1,64}$'),
  url               text NOT NULL CHECK (url ~ '^https?://'),
  -- 0 drains the backend: in-flight requests finish, no new ones are sent.
  weight            integer NOT NULL DEFAULT 1 CHECK (weight BETWEEN 0 AND 100),
  enabled           boolean NOT NULL DEFAULT true,
  pool              text NOT NULL DEFAULT 'imgproxy',
  is_healthy        boolean NOT NULL DEFAULT true,
  last_health_check timestamptz,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX backends_pool_idx ON backends (pool);

-- One row per tenant and UTC day; a month's usage is the sum of its days, so daily quotas,
-- monthly quotas and date-range reports all read the same rows.
CREATE TABLE usage_counters (
  tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  period        date NOT NULL,
  requests      bigint NOT NULL DEFAULT 0 CHECK (requests >= 0),
  bytes_in      bigint NOT NULL DEFAULT 0 CHECK (bytes_in >= 0),
  bytes_out     bigint NOT NULL DEFAULT 0 CHECK (bytes_out >= 0),
  -- Stored bytes at the last flush of that day (the live figure is the sum over images).
  storage_bytes bigint NOT NULL DEFAULT 0 CHECK (storage_bytes >= 0),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, period)
);
CREATE INDEX usage_counters_period_idx ON usage_counters (period);

CREATE TABLE images (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  -- Generated name inside <uploadsRoot>/tenants/<tenantId>/; never the client's name.
  file_name     text NOT NULL CHECK (file_name ~ '^[A-Za-z0-9._-]{1,128}$'),
  content_type  text NOT NULL,
  size_bytes    bigint NOT NULL CHECK (size_bytes >= 0),
  sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  width         integer,
  height        integer,
  original_name text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, file_name)
);
CREATE INDEX images_tenant_created_idx ON images (tenant_id, created_at DESC, id);

-- Append-only and written in batches. No foreign key on purpose: a batch must never fail
-- because a tenant was deleted meanwhile; tenant deletion removes its rows explicitly.
CREATE TABLE request_logs (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  created_at  timestamptz NOT NULL DEFAULT now(),
  request_id  text NOT NULL,
  tenant_id   uuid,
  key_id      text,
  backend     text,
  method      text NOT NULL,
  route       text,
  path        text NOT NULL,
  status      smallint NOT NULL,
  duration_ms integer NOT NULL,
  bytes_in    bigint NOT NULL DEFAULT 0,
  bytes_out   bigint NOT NULL DEFAULT 0,
  client_ip   inet
);
CREATE INDEX request_logs_created_at_idx ON request_logs (created_at);
CREATE INDEX request_logs_tenant_created_idx ON request_logs (tenant_id, created_at DESC);
CREATE INDEX request_logs_request_id_idx ON request_logs (request_id);

CREATE TABLE audit_log (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  created_at  timestamptz NOT NULL DEFAULT now(),
  actor       text NOT NULL,
  action      text NOT NULL,
  target_type text NOT NULL,
  target_id   text,
  before      jsonb,
  after       jsonb,
  request_id  text,
  client_ip   inet
);
CREATE INDEX audit_log_created_at_idx ON audit_log (created_at);
CREATE INDEX audit_log_target_idx ON audit_log (target_type, target_id, created_at);
