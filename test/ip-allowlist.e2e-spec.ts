import { TestApp, createTestApp } from './support/test-app';

const quietIpBucket = { rateLimit: { ip: { perMinute: 1_000_000 } } };

/**
 * Tenant allowlists (after authentication) and the global deny list (before it), with the
 * client address of docs/proxy-and-backends.md: the socket address, X-Forwarded-For only from trusted proxies.
 * Every request here comes from 127.0.0.1.
 */
describe('IP allowlist and deny list (real PostgreSQL and Redis)', () => {
  let gw: TestApp;
  let proxied: TestApp;

  beforeAll(async () => {
    gw = await createTestApp({ config: quietIpBucket });
    // Same deployment behind a load balancer on 127.0.0.1, whose X-Forwarded-For is believed.
    proxied = await createTestApp({
      config: { ...quietIpBucket, server: { trustedProxies: ['127.0.0.1/32'] } },
      database: gw.database,
      redisPrefix: gw.redisPrefix,
    });
  });
  afterAll(async () => {
    await proxied.close();
    await gw.close();
  });

  async function tenantWithKey(email: string): Promise<{ id: string; key: string }> {
    const tenant = await (await gw.admin('/admin/v1/tenants', { method: 'POST', json: { name: email, email } })).json();
    const key = await (await gw.admin(`/admin/v1/tenants/${tenant.id}/keys`, { method: 'POST', json: {} })).json();
    return { id: tenant.id, key: key.key };
  }

  async function allow(tenantId: string, ...cidrs: string[]): Promise<void> {
    const res = await gw.admin(`/admin/v1/tenants/${tenantId}/ip-allowlist`, { method: 'PUT', json: { entries: cidrs.map((cidr) => ({ cidr })) } });
    expect(res.status).toBe(200);
  }

  function me(app: TestApp, key: string, forwardedFor?: string) {
    const headers: Record<string, string> = { 'x-api-key': key };
    if (forwardedFor) headers['x-forwarded-for'] = forwardedFor;
    return app.fetch('/api/v1/me', { headers });
  }

  async function eventually(check: () => Promise<boolean>, deadlineMs = 2_000): Promise<void> {
    const started = Date.now();
    while (!(await check())) {
      if (Date.now() - started > deadlineMs) throw new Error(`condition not met within ${deadlineMs} ms`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  it('allows every address while the list is empty', async () => {
    const t = await tenantWithKey('empty@ip.example');
    expect((await me(gw, t.key)).status).toBe(200);
  });

  it('refuses an address outside the list with 403 ip_not_allowed and admits one inside', async () => {
    const t = await tenantWithKey('list@ip.example');
    expect((await me(gw, t.key)).status).toBe(200); // cached before the change: the change must still apply
    await allow(t.id, '10.0.0.0/8', '2001:db8::/32');
    const denied = await me(gw, t.key);
    expect(denied.status).toBe(403);
    expect((await denied.json()).error.code).toBe('ip_not_allowed');
    await allow(t.id, '10.0.0.0/8', '127.0.0.0/24');
    expect((await me(gw, t.key)).status).toBe(200);
    await allow(t.id);
    expect((await me(gw, t.key)).status).toBe(200);
  });

  it('matches an entry given as IPv4-mapped IPv6 against the plain IPv4 client', async () => {
    const t = await tenantWithKey('mapped@ip.example');
    await allow(t.id, '::ffff:127.0.0.1');
    expect((await me(gw, t.key)).status).toBe(200);
  });

  it('ignores X-Forwarded-For from an untrusted socket', async () => {
    const t = await tenantWithKey('xff-untrusted@ip.example');
    await allow(t.id, '203.0.113.0/24');
    expect((await me(gw, t.key, '203.0.113.5')).status).toBe(403);
  });

  it('uses X-Forwarded-For from a trusted proxy, IPv4-mapped addresses folded', async () => {
    const t = await tenantWithKey('xff-trusted@ip.example');
    await allow(t.id, '203.0.113.0/24');
    await eventually(async () => (await me(proxied, t.key, '203.0.113.5')).status === 200);
    expect((await me(proxied, t.key, '::ffff:203.0.113.77')).status).toBe(200);
    // The right-most untrusted hop counts; a forged left-most entry does not.
    expect((await me(proxied, t.key, '203.0.113.5, 198.51.100.1')).status).toBe(403);
    expect((await me(proxied, t.key, '198.51.100.1')).status).toBe(403);
    // No header: the proxy's own address, not on the list.
    expect((await me(proxied, t.key)).status).toBe(403);
  });

  it('applies an allowlist change made on one instance to the other within 2 s', async () => {
    const t = await tenantWithKey('cross@ip.example');
    expect((await me(proxied, t.key, '198.51.100.1')).status).toBe(200); // cached on the second instance
    await allow(t.id, '203.0.113.0/24');
    await eventually(async () => (await me(proxied, t.key, '198.51.100.1')).status === 403);
  });

  it('counts allowlist denials in /metrics', async () => {
    const t = await tenantWithKey('metric@ip.example');
    await allow(t.id, '10.0.0.0/8');
    const read = async () => {
      const line = (await (await gw.fetch('/metrics')).text()).split('\n').find((l) => l.startsWith('gateway_ip_denied_total{reason="allowlist"}'));
      return line ? Number(line.split(' ').pop()) : 0;
    };
    const before = await read();
    expect((await me(gw, t.key)).status).toBe(403);
    expect((await read()) - before).toBe(1);
  });

  describe('global deny list', () => {
    it('refuses a denied address before authentication, on every route', async () => {
      const denied = await createTestApp({ config: { ...quietIpBucket, security: { ipDenyList: ['127.0.0.0/8'] } } });
      try {
        // No key at all: 403, not 401, so the deny list ran first.
        const res = await denied.fetch('/api/v1/me');
        expect(res.status).toBe(403);
        expect((await res.json()).error.code).toBe('ip_not_allowed');
        expect((await denied.admin('/admin/v1/tenants')).status).toBe(403);
      } finally {
        await denied.close();
      }
    });

    it('uses the resolved client address: a trusted proxy forwarding a denied client', async () => {
      const app = await createTestApp({
        config: { ...quietIpBucket, server: { trustedProxies: ['127.0.0.1/32'] }, security: { ipDenyList: ['198.51.100.0/24'] } },
        database: gw.database,
        redisPrefix: gw.redisPrefix,
      });
      try {
        const t = await tenantWithKey('deny@ip.example');
        expect((await me(app, t.key, '198.51.100.9')).status).toBe(403);
        expect((await me(app, t.key, '::ffff:198.51.100.9')).status).toBe(403);
        expect((await me(app, t.key, '203.0.113.9')).status).toBe(200);
      } finally {
        await app.close();
      }
    });
  });
});
