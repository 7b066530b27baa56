import { createHmac, randomUUID } from 'node:crypto';
import { SignJWT, exportSPKI, type JWTPayload } from 'jose';
import { TestBackend, rawRequest, startBackend, waitFor } from './support/http-backends';
import { JwksServer, signingKey, type SigningKey } from './support/jwks-server';
import { metricValue } from './support/metrics';
import { errorOf } from './support/routes';
import { HIGH_RATE_LIMIT_CONFIG, TenantWithKey, UNLIMITED, createTenantWithKey } from './support/tenants';
import { TestApp, createTestApp } from './support/test-app';

jest.setTimeout(60_000);

const SECRET = 'routes-e2e-hs256-secret-of-32-bytes-or-more';
const ISSUER = 'https://idp.routes.example';
const AUDIENCE = 'users-api';
/** The key set is fetched again on an unknown kid at most this often. */
const REFETCH_SECONDS = 2;

/**
 * `auth: jwt` on configured routes, end to end: tokens signed by the test (HS256 with the shared
 * secret, RS256 and ES256 with keys a JWKS server of the test's own publishes), tenants made
 * through the admin API in the real PostgreSQL, limits and usage in the real Redis.
 */
describe('JWT routes (e2e)', () => {
  let jwks: JwksServer;
  let rsa: SigningKey;
  let ec: SigningKey;
  let app: TestBackend;
  let gw: TestApp;
  let tenant: TenantWithKey;

  function claims(extra: JWTPayload = {}): JWTPayload {
    return { iss: ISSUER, aud: AUDIENCE, tenant: tenant.tenantId, exp: Math.floor(Date.now() / 1000) + 300, ...extra };
  }
  const hs256 = (extra?: JWTPayload) => new SignJWT(claims(extra)).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET));
  const signed = (key: SigningKey, extra?: JWTPayload) => new SignJWT(claims(extra)).setProtectedHeader({ alg: key.alg, kid: key.kid }).sign(key.privateKey);
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const call = (token: string | undefined, path = '/users/me') => rawRequest(gw.url, path, { headers: token ? bearer(token) : {} });
  const now = () => Math.floor(Date.now() / 1000);

  beforeAll(async () => {
    rsa = await signingKey('RS256', 'rs-1');
    ec = await signingKey('ES256', 'es-1');
    jwks = await JwksServer.start();
    jwks.keys = [rsa.jwk, ec.jwk];
    app = await startBackend({ name: 'users1' });
    gw = await createTestApp({
      config: {
        ...HIGH_RATE_LIMIT_CONFIG,
        auth: {
          jwt: {
            algorithms: ['HS256', 'RS256', 'ES256'],
            secret: SECRET,
            jwksUrl: jwks.url,
            issuer: ISSUER,
            audience: AUDIENCE,
            tenantClaim: 'tenant',
            jwksRefreshMinIntervalSeconds: REFETCH_SECONDS,
            // Every request verifies its token: what the key set does is then visible per request.
            tokenCacheSeconds: 0,
          },
        },
        upstreams: { users: { backends: [{ name: app.name, url: app.url }] } },
        routes: [
          { name: 'users-jwt', path: '/users/*', upstream: 'users', auth: 'jwt' },
          { name: 'users-key', path: '/keyed/*', upstream: 'users', auth: 'api-key', stripPrefix: '/keyed' },
        ],
      },
    });
    tenant = await createTenantWithKey(gw, { scopes: ['images:read'], ...UNLIMITED });
    await waitFor('the first key set fetch', () => jwks.requests > 0);
  });

  afterAll(async () => {
    await gw?.close();
    await app?.stop();
    await jwks?.close();
  });

  it('admits HS256, RS256 and ES256 tokens, telling the upstream the tenant and keeping the token to itself', async () => {
    for (const token of [await hs256(), await signed(rsa), await signed(ec)]) {
      const res = await call(token);
      expect(res.status).toBe(200);
      const seen = app.requests.at(-1)!.headers;
      expect(seen['x-gateway-tenant']).toBe(tenant.tenantId);
      expect(seen.authorization).toBeUndefined();
    }
  });

  it('refuses every bad token with one 401 and the Bearer challenge, before the upstream', async () => {
    const before = app.hits;
    const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    const body = Buffer.from(JSON.stringify(claims())).toString('base64url');
    // Algorithm confusion: HS256 "signed" with the RSA public key as the HMAC secret.
    const confusedHeader = Buffer.from(JSON.stringify({ alg: 'HS256', kid: rsa.kid })).toString('base64url');
    const pem = await exportSPKI(rsa.publicKey);
    const confused = `${confusedHeader}.${body}.${createHmac('sha256', pem).update(`${confusedHeader}.${body}`).digest('base64url')}`;
    const cases: Record<string, string | undefined> = {
      missing: undefined,
      garbage: 'not.a.jwt',
      algNone: `${header}.${body}.`,
      confusion: confused,
      wrongSecret: await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('another-secret-of-at-least-32-bytes-long')),
      expiredPastSkew: await hs256({ exp: now() - 40 }),
      notYetValidPastSkew: await hs256({ nbf: now() + 40 }),
      noExp: await new SignJWT({ iss: ISSUER, aud: AUDIENCE, tenant: tenant.tenantId }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET)),
      wrongIssuer: await hs256({ iss: 'https://other.example' }),
      wrongAudience: await hs256({ aud: 'another-api' }),
      unknownTenant: await hs256({ tenant: randomUUID() }),
      apiKeyAsBearer: tenant.key,
    };
    for (const [name, token] of Object.entries(cases)) {
      const res = await call(token);
      expect([name, res.status, res.headers['www-authenticate'], errorOf(res).code]).toEqual([name, 401, 'Bearer realm="imgproxy-gateway"', 'unauthorized']);
      expect(errorOf(res).message).toBe('A valid bearer token is required.');
    }
    expect(app.hits).toBe(before);
    expect(await metricValue(gw, 'gateway_auth_failures_total', 'reason="jwt_bad_algorithm"')).toBeGreaterThanOrEqual(1);
    expect(await metricValue(gw, 'gateway_auth_failures_total', 'reason="jwt_unknown_tenant"')).toBeGreaterThanOrEqual(1);
  });

  it('allows 30 seconds of clock skew on exp and nbf', async () => {
    expect((await call(await hs256({ exp: now() - 20 }))).status).toBe(200);
    expect((await call(await hs256({ nbf: now() + 20 }))).status).toBe(200);
  });

  it('refuses a suspended tenant with 403, and admits it again once reactivated', async () => {
    const other = await createTenantWithKey(gw, { ...UNLIMITED });
    const token = await hs256({ tenant: other.tenantId });
    expect((await call(token)).status).toBe(200);
    expect((await gw.admin(`/admin/v1/tenants/${other.tenantId}/suspend`, { method: 'POST' })).status).toBe(200);
    await waitFor('the suspension to reach the tenant cache', async () => (await call(token)).status === 403);
    const res = await call(token);
    expect(errorOf(res)).toMatchObject({ code: 'forbidden', message: 'This account is suspended.' });
    expect((await gw.admin(`/admin/v1/tenants/${other.tenantId}/reactivate`, { method: 'POST' })).status).toBe(200);
    await waitFor('the reactivation', async () => (await call(token)).status === 200);
  });

  it('applies the tenant’s IP allowlist to its JWT callers', async () => {
    const fenced = await createTenantWithKey(gw, { ...UNLIMITED });
    const token = await hs256({ tenant: fenced.tenantId });
    expect((await call(token)).status).toBe(200);
    const put = await gw.admin(`/admin/v1/tenants/${fenced.tenantId}/ip-allowlist`, { method: 'PUT', json: { entries: [{ cidr: '10.0.0.0/8' }] } });
    expect(put.status).toBe(200);
    await waitFor('the allowlist to apply', async () => (await call(token)).status === 403);
    expect(errorOf(await call(token)).code).toBe('ip_not_allowed');
  });

  it('uses the cached key set for known kids, and fetches it again on an unknown kid at most once per interval', async () => {
    // Known keys: no fetch, however many requests.
    const fetched = jwks.requests;
    for (let i = 0; i < 5; i++) expect((await call(await signed(rsa, { sub: `u${i}` }))).status).toBe(200);
    expect(jwks.requests).toBe(fetched);

    // Let the interval since the boot fetch pass: the first unknown kid fetches, the next ones wait.
    await new Promise((resolve) => setTimeout(resolve, REFETCH_SECONDS * 1000 + 200));
    const rotated = await signingKey('RS256', 'rs-2');
    const early = await signed(rotated);
    expect((await call(early)).status).toBe(401);
    expect(jwks.requests).toBe(fetched + 1);
    jwks.keys = [rsa.jwk, ec.jwk, rotated.jwk];
    for (let i = 0; i < 5; i++) expect((await call(await signed(rotated, { sub: `flood${i}` }))).status).toBe(401);
    expect(jwks.requests).toBe(fetched + 1);
    expect(await metricValue(gw, 'gateway_auth_failures_total', 'reason="jwt_unknown_kid"')).toBeGreaterThanOrEqual(6);

    // Once the interval passed, the new key (a rotation at the identity provider) is fetched and admitted.
    await new Promise((resolve) => setTimeout(resolve, REFETCH_SECONDS * 1000 + 200));
    expect((await call(await signed(rotated))).status).toBe(200);
    expect(jwks.requests).toBe(fetched + 2);
    expect((await call(await signed(rsa))).status).toBe(200);
    expect(jwks.requests).toBe(fetched + 2);
  });

  it('limits and meters JWT callers exactly like key callers: one tenant bucket, one usage count', async () => {
    const limited = await createTenantWithKey(gw, {
      rateLimits: { perMinute: 6, perHour: 1000 },
      quotas: { monthlyRequests: 1_000_000, monthlyBandwidthBytes: 1024 ** 4, storageBytes: 1024 ** 3 },
    });
    const token = await hs256({ tenant: limited.tenantId });
    const viaKey = () => rawRequest(gw.url, '/keyed/x', { headers: { 'x-api-key': limited.key } });
    const viaJwt = () => call(token);
    const statuses: number[] = [];
    for (const send of [viaKey, viaJwt, viaKey, viaJwt, viaKey, viaJwt]) statuses.push((await send()).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200]);

    for (const send of [viaJwt, viaKey]) {
      const refused = await send();
      expect([refused.status, errorOf(refused).code, errorOf(refused).scope]).toEqual([429, 'rate_limited', 'tenant']);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }

    // Both kinds of caller counted against the one tenant: six requests served.
    const usage = (await (await gw.admin(`/admin/v1/tenants/${limited.tenantId}/usage`)).json()) as { requests: { used: number }; totals: { requests: number } };
    expect([usage.requests.used, usage.totals.requests]).toEqual([6, 6]);
  });
});
