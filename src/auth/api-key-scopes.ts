/** docs/tenants-and-keys.md scopes. */
export const API_KEY_SCOPES = ['images:read', 'images:write', 'usage:read'] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];

/** What every proxied image route requires, whichever credential the caller used. */
export const IMAGE_READ_SCOPE: ApiKeyScope = 'images:read';

/**
 * A key created without scopes may proxy images and read its own usage: both are read-only
 * and what nearly every integration needs. Uploading and deleting (`images:write`) spends
 * storage quota and is granted on purpose only.
 */
export const DEFAULT_API_KEY_SCOPES: readonly ApiKeyScope[] = ['images:read', 'usage:read'];
