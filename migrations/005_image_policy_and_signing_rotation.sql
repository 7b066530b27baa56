-- Per-tenant image policy (docs/imgproxy.md): one JSON object on the plan and on the tenant,
-- {presets, presetsOnly, maxWidth, maxHeight, maxSrcResolution, maxSrcFileSize, defaultFormat,
-- defaultQuality, requireExpiry, maxExpirySeconds, watermark}; a tenant field replaces the plan's,
-- an absent field means "not set here". Validated by the admin API when written.
ALTER TABLE plans ADD COLUMN image_policy jsonb NOT NULL DEFAULT '{}'::jsonb
  CHECK (jsonb_typeof(image_policy) = 'object');
ALTER TABLE tenants ADD COLUMN image_policy jsonb NOT NULL DEFAULT '{}'::jsonb
  CHECK (jsonb_typeof(image_policy) = 'object');

-- Signing-key rotation (docs/tenants-and-keys.md): the pair before the last rotation keeps
-- verifying until it is dropped. Encrypted like the current pair (AES-256-GCM under SECRETS_KEY,
-- bound to the key id and the part), so a rotation moves the current ciphertexts here unchanged.
ALTER TABLE api_keys
  ADD COLUMN signing_key_prev_enc  bytea,
  ADD COLUMN signing_salt_prev_enc bytea,
  ADD COLUMN signing_rotated_at    timestamptz,
  ADD CONSTRAINT api_keys_previous_signing_pair CHECK ((signing_key_prev_enc IS NULL) = (signing_salt_prev_enc IS NULL));
