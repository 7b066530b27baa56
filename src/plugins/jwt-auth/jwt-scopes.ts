import { API_KEY_SCOPES, IMAGE_READ_SCOPE, type ApiKeyScope } from '../key-auth/api-key-scopes';

const KNOWN = new Set<string>(API_KEY_SCOPES);

/** What a token without any scope claim may do: proxy images, like a key's narrowest useful grant. */
export const DEFAULT_JWT_SCOPES: readonly ApiKeyScope[] = Object.freeze([IMAGE_READ_SCOPE]);

/**
 * The gateway scopes a token grants (docs/routes.md "JWT"). `scope` (RFC 8693: one space-separated
 * string) and `scp` (a string or an array, as Okta and Entra ID send it) are read together; names
 * the gateway does not know are ignored, since a token usually serves other APIs too. A token
 * carrying either claim gets exactly what it lists, possibly nothing; only a token with neither
 * claim gets DEFAULT_JWT_SCOPES. Returned sorted and frozen, so equal grants compare by key.
 */
export function scopesFromClaims(claims: Record<string, unknown>): readonly ApiKeyScope[] {
  const listed = [...words(claims.scope), ...words(claims.scp)];
  if (claims.scope === undefined && claims.scp === undefined) return DEFAULT_JWT_SCOPES;
  const granted = [...new Set(listed.filter((scope) => KNOWN.has(scope)))].sort() as ApiKeyScope[];
  return Object.freeze(granted);
}

function words(value: unknown): string[] {
  if (typeof value === 'string') return value.split(/\s+/).filter(Boolean);
  if (Array.isArray(value)) return value.filter((item): item is string => typeof item === 'string');
  return [];
}
