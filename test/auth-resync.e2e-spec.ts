import { OwnRedis } from './quota-probe';
import { TestApp, createTestApp } from './support/test-app';

jest.setTimeout(60_000);

/**
 * Pub/sub keeps nothing: a revocation published while an instance is cut off from Redis never
 * reaches it. Once its subscriber is back, the instance must drop its cached keys at once
 * rather than keep honouring a revoked key until the cache TTL (60 s) runs out.
 */
describe('auth cache after a Redis outage', () => {
  let redis: OwnRedis;
  let a: TestApp;
  let b: TestApp;

  beforeAll(async () => {
    redis = await OwnRedis.start();
    a = await createTestApp({ config: { redis: { url: redis.url } } });
    b = await createTestApp({ database: a.database, redisPrefix: a.redisPrefix, config: { redis: { url: redis.url } } });
  });

  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await redis?.down();
  });

  it('forgets cached keys when the subscription comes back, so a revocation missed meanwhile applies', async () => {
    const tenant = await (await a.admin('/admin/v1/tenants', { method: 'POST', json: { name: 'Resync', email: 'resync@x.example' } })).json();
    const created = await (await a.admin(`/admin/v1/tenants/${tenant.id}/keys`, { method: 'POST', json: {} })).json();
    const me = () => b.fetch('/api/v1/me', { headers: { 'x-api-key': created.key } });
    expect((await me()).status).toBe(200);

    await redis.down();
    expect((await a.admin(`/admin/v1/tenants/${tenant.id}/keys/${created.keyId}`, { method: 'DELETE' })).status).toBe(204);
    // The message was lost: instance B still serves the key from its cache.
    expect((await me()).status).toBe(200);

    await redis.up();
    const deadline = Date.now() + 10_000;
    let status = 200;
    while (Date.now() < deadline && status === 200) {
      await new Promise((r) => setTimeout(r, 100));
      status = (await me()).status;
    }
    expect(status).toBe(401);
  });
});
