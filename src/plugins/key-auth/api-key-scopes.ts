/** docs/tenants-and-keys.md scopes. */
export const API_KEY_SCOPES = ['images:read', 'images:write', 'usage:read'] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];

/** What every proxied image route requires, whichever credential the caller used. */
export const IMAGE_READ_SCOPE: ApiKeyScope = 'images:read';

/**
 * A key created without scopes can do the whole first job: upload (`images:write`), fetch
 * (`images:read`) and read its usage. Narrower keys (a read-only key for a web page, say) are
 * asked for by listing their scopes.
 */
export const DEFAULT_API_KEY_SCOPES: readonly ApiKeyScope[] = ['images:read', 'images:write', 'usage:read'];
