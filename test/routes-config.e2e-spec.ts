import { SignJWT } from 'jose';
import { TestBackend, rawRequest, startBackend, waitFor } from './support/http-backends';
import { DnsServer } from './support/dns-server';
import { JwksServer, signingKey, type SigningKey } from './support/jwks-server';
import { ConfigFile } from './support/routes';
import { HIGH_RATE_LIMIT_CONFIG, TenantWithKey, UNLIMITED, createTenantWithKey } from './support/tenants';
import { TestApp, createTestApp } from './support/test-app';

jest.setTimeout(60_000);

const SECRET = 'config-e2e-hs256-secret-of-32-bytes-at-least';

/**
 * The configuration of docs/routes.md's full example, as an operator writes it in YAML: upstreams
 * with a balancer, health check and circuit breaker, one found in DNS, a route using every key,
 * and `auth.jwt`. The gateway starts on it, serves it, and GET /admin/v1/routes shows it.
 */
describe('the full route configuration (e2e)', () => {
  let u1: TestBackend;
  let d1: TestBackend;
  let dns: DnsServer;
  let jwks: JwksServer;
  let rsa: SigningKey;
  let file: ConfigFile;
  let gw: TestApp;
  let tenant: TenantWithKey;

  beforeAll(async () => {
    u1 = await startBackend({ name: 'u1' });
    d1 = await startBackend({ name: 'd1' });
    dns = await DnsServer.start();
    dns.set('users.internal', { A: ['127.0.0.1'] });
    rsa = await signingKey('RS256', 'k1');
    jwks = await JwksServer.start();
    jwks.keys = [rsa.jwk];
    file = new ConfigFile(`
upstreams:
  users:
    balancer: weighted-round-robin
    backends: [{ name: u1, url: "${u1.url}", weight: 1 }]
    healthCheck: { path: /health, intervalSeconds: 10, timeoutSeconds: 2, unhealthyThreshold: 3, healthyThreshold: 2 }
    circuitBreaker: { failureThreshold: 5, cooldownSeconds: 30 }
  discovered:
    discovery: { dns: users.internal, port: ${d1.port}, intervalSeconds: 10, resolver: "${dns.address}" }
routes:
  - name: users-api
    path: /api/users/*
    methods: [GET, POST]
    upstream: users
    stripPrefix: /api
    auth: jwt
    rateLimit: { perMinute: 100 }
    maxBodyBytes: 1048576
    timeoutSeconds: 5
    retries: 2
    cors: { origins: ["https://app.example.com"], methods: [GET, POST], headers: [Content-Type], credentials: false }
    headers:
      request:  { set: { X-Gateway: imgproxy-gateway }, remove: [X-Internal] }
      response: { set: { X-Frame-Options: DENY }, remove: [Server] }
    cache: { ttlSeconds: 60 }
    websocket: true
  - name: discovered-api
    path: /discovered/:id
    upstream: discovered
    auth: api-key
auth:
  jwt: { algorithms: [HS256, RS256], secret: "${SECRET}", jwksUrl: "${jwks.url}", issuer: "https://idp.example.com", audience: "users-api", tenantClaim: tenant }
`);
    gw = await createTestApp({ configFile: file.path, config: HIGH_RATE_LIMIT_CONFIG });
    tenant = await createTenantWithKey(gw, { scopes: ['images:read'], ...UNLIMITED });
  });

  afterAll(async () => {
    await gw?.close();
    await Promise.all([u1?.stop(), d1?.stop()]);
    await Promise.all([dns?.close(), jwks?.close()]);
    file?.remove();
  });

  it('shows the live table at GET /admin/v1/routes: the image routes, then the configured ones with their steps', async () => {
    const res = await gw.admin('/admin/v1/routes');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { version: number; loadedAt: string; routes: Record<string, unknown>[] };
    expect(body.version).toBeGreaterThanOrEqual(1);
    expect(Number.isNaN(Date.parse(body.loadedAt))).toBe(false);
    expect(body.routes.map((route) => route.name)).toEqual(['proxy', 'signed-proxy', 'users-api', 'discovered-api']);
    expect(body.routes[0]).toMatchObject({ path: '/i/*', methods: ['GET', 'HEAD'], upstream: 'imgproxy', auth: 'api-key' });
    // The steps in the order they run; the cache step, where the build has it, comes right before the proxy.
    const steps = body.routes[2].steps as string[];
    expect(steps.filter((step) => step !== 'proxy-cache')).toEqual(['cors', 'jwt-auth', 'ip-restriction', 'rate-limiting', 'quota', 'transform', 'proxy']);
    if (steps.includes('proxy-cache')) expect(steps.slice(-2)).toEqual(['proxy-cache', 'proxy']);
    expect({ ...body.routes[2], steps: undefined }).toEqual({
      name: 'users-api',
      path: '/api/users/*',
      methods: ['GET', 'HEAD', 'POST', 'OPTIONS'],
      upstream: 'users',
      auth: 'jwt',
      stripPrefix: '/api',
      steps: undefined,
      websocket: true,
      rateLimit: { bucket: 'users-api', perCaller: { perMinute: 100 }, policy: 'exact' },
      maxBodyBytes: 1048576,
      timeoutSeconds: 5,
      retries: 2,
      cors: { origins: ['https://app.example.com'], methods: ['GET', 'POST'], headers: ['Content-Type'], credentials: false },
      headers: {
        request: { set: { 'X-Gateway': 'imgproxy-gateway' }, remove: ['X-Internal'] },
        response: { set: { 'X-Frame-Options': 'DENY' }, remove: ['Server'] },
      },
      cache: { ttlSeconds: 60 },
    });
    expect(body.routes[3]).toMatchObject({ name: 'discovered-api', path: '/discovered/:id', auth: 'api-key', upstream: 'discovered' });
  });

  it('serves the example route with a JWT from the key set, and the discovered upstream with a key', async () => {
    const token = await new SignJWT({ tenant: tenant.tenantId, iss: 'https://idp.example.com', aud: 'users-api', exp: Math.floor(Date.now() / 1000) + 60 })
      .setProtectedHeader({ alg: 'RS256', kid: rsa.kid })
      .sign(rsa.privateKey);
    await waitFor('the key set', () => jwks.requests > 0);
    const res = await rawRequest(gw.url, '/api/users/42', { headers: { authorization: `Bearer ${token}`, 'x-internal': 'no' } });
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('u1');
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(u1.requests.at(-1)).toMatchObject({ url: '/users/42' });
    expect(u1.requests.at(-1)?.headers).toMatchObject({ 'x-gateway': 'imgproxy-gateway', 'x-gateway-tenant': tenant.tenantId });
    expect(u1.requests.at(-1)?.headers['x-internal']).toBeUndefined();

    await waitFor('the discovered backend', async () => (await rawRequest(gw.url, '/discovered/7', { headers: { 'x-api-key': tenant.key } })).status === 200);
    expect(d1.requests.at(-1)?.url).toBe('/discovered/7');
  });
});
