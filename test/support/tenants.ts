/**
 * Tenants and API keys for end-to-end specs, made the way an operator makes them: through the
 * admin API of the gateway under test (in process or spawned).
 */

/** What the helpers need of a gateway: TestApp has it; adminClient() makes one for a spawned process. */
export interface AdminClient {
  admin(path: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
}

/** An admin client for a gateway started elsewhere (a spawned process) with its own admin token. */
export function adminClient(baseUrl: string, adminToken: string): AdminClient {
  return {
    admin: (path, init = {}) => {
      const { json, ...rest } = init;
      const headers = new Headers(rest.headers);
      headers.set('authorization', `Bearer ${adminToken}`);
      if (json !== undefined) headers.set('content-type', 'application/json');
      return fetch(baseUrl + path, { ...rest, headers, body: json !== undefined ? JSON.stringify(json) : rest.body });
    },
  };
}

export interface RateLimitOverrides {
  perMinute?: number | null;
  perHour?: number | null;
}

export interface QuotaOverrides {
  monthlyRequests?: number | null;
  dailyRequests?: number | null;
  monthlyBandwidthBytes?: number | null;
  storageBytes?: number | null;
}

export interface TenantWithKeyOptions {
  /** Default: a unique address, also used as the name. */
  email?: string;
  name?: string;
  plan?: string;
  /** The key's scopes; default: the admin API's default (images:read, images:write, usage:read). */
  scopes?: string[];
  rateLimits?: RateLimitOverrides;
  quotas?: QuotaOverrides;
  allowedSources?: string[];
  allowUnsignedUrls?: boolean;
}

export interface TenantWithKey {
  tenantId: string;
  email: string;
  /** The full key, `igw_<keyId>_<secret>`: send it as `X-API-Key`. */
  key: string;
  keyId: string;
  signingKey: string;
  signingSalt: string;
}

/**
 * Limits no test of proxy behaviour can reach, for specs that are not about limits: the tenant's
 * rate limits and quotas. Pair it with HIGH_RATE_LIMIT_CONFIG (or _ENV) for the ip and route buckets.
 */
export const UNLIMITED: Pick<TenantWithKeyOptions, 'rateLimits' | 'quotas'> = {
  rateLimits: { perMinute: 10_000_000, perHour: 1_000_000_000 },
  quotas: { monthlyRequests: 1_000_000_000, monthlyBandwidthBytes: 1024 ** 5, storageBytes: 1024 ** 4 },
};

/** Configuration overrides lifting the ip and `proxy` route buckets out of the way. */
export const HIGH_RATE_LIMIT_CONFIG = { rateLimit: { ip: { perMinute: 100_000 }, routes: { proxy: { perMinute: 100_000 } } } };

/** The same for a spawned gateway (operator-contract environment variables). */
export const HIGH_RATE_LIMIT_ENV = { RATE_LIMIT_IP_PER_MINUTE: '100000', RATE_LIMIT_PROXY_PER_MINUTE: '100000' };

let counter = 0;

/**
 * Creates a tenant (POST /admin/v1/tenants), applies the overrides (PATCH), then one key
 * (POST /admin/v1/tenants/:id/keys). Throws with the gateway's answer when a step fails.
 */
export async function createTenantWithKey(gw: AdminClient, options: TenantWithKeyOptions = {}): Promise<TenantWithKey> {
  const email = options.email ?? `t${++counter}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}@e2e.example`;
  const created = await gw.admin('/admin/v1/tenants', {
    method: 'POST',
    json: { name: options.name ?? email, email, ...(options.plan ? { plan: options.plan } : {}) },
  });
  if (created.status !== 201) throw new Error(`tenant creation: ${created.status} ${await created.text()}`);
  const { id: tenantId } = (await created.json()) as { id: string };

  const { rateLimits, quotas, allowedSources, allowUnsignedUrls } = options;
  const patch = { rateLimits, quotas, allowedSources, allowUnsignedUrls };
  if (Object.values(patch).some((value) => value !== undefined)) {
    const patched = await gw.admin(`/admin/v1/tenants/${tenantId}`, { method: 'PATCH', json: patch });
    if (patched.status !== 200) throw new Error(`tenant update: ${patched.status} ${await patched.text()}`);
  }

  const keyRes = await gw.admin(`/admin/v1/tenants/${tenantId}/keys`, {
    method: 'POST',
    json: options.scopes ? { scopes: options.scopes } : {},
  });
  if (keyRes.status !== 201) throw new Error(`key creation: ${keyRes.status} ${await keyRes.text()}`);
  const { key, keyId, signingKey, signingSalt } = (await keyRes.json()) as Omit<TenantWithKey, 'tenantId' | 'email'>;
  return { tenantId, email, key, keyId, signingKey, signingSalt };
}

/** The request headers of a header-mode image request. */
export function keyHeaders(tenant: Pick<TenantWithKey, 'key'>, extra: Record<string, string> = {}): Record<string, string> {
  return { 'x-api-key': tenant.key, ...extra };
}

/**
 * What the pool receives for a header-mode URL `/i/insecure<options>/plain/local:///<file>` when
 * the gateway has no imgproxy key (src/signing/imgproxy-url.ts buildImgproxyPath): the options as
 * sent, the source moved into the tenant's folder. `options` is `''` or `/opt:a/opt:b`.
 */
export function sandboxedPlainPath(tenantId: string, options: string, file: string, extension?: string): string {
  return `/insecure${options}/plain/local:///tenants/${tenantId}/${file}${extension ? `@${extension}` : ''}`;
}
