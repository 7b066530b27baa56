import Redis from 'ioredis';
import { RedisService } from '../src/redis/redis.service';
import { UsageService } from '../src/usage/usage.service';
import { type TestBackend, startBackend } from './support/http-backends';
import { OwnRedisSentinel } from './support/redis-topologies';
import { HIGH_RATE_LIMIT_CONFIG, UNLIMITED, createTenantWithKey } from './support/tenants';
import { type TestApp, createTestApp } from './support/test-app';

/**
 * `redis.mode: sentinel` (docker/README.md): the gateway is given only the sentinel's address and the
 * master set's name, asks the sentinel for the master, and keeps its buckets and usage there.
 */
describe('behind Redis Sentinel', () => {
  let topology: OwnRedisSentinel;
  let backend: TestBackend;
  let gw: TestApp;

  beforeAll(async () => {
    topology = await OwnRedisSentinel.start('gatewaymaster');
    backend = await startBackend({
      name: 'pool',
      handler: (_req, res) => {
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': '9' });
        res.end('png-bytes');
      },
    });
    gw = await createTestApp({
      config: {
        ...HIGH_RATE_LIMIT_CONFIG,
        redis: { mode: 'sentinel', url: topology.url, sentinelName: topology.name },
        backends: [{ name: 'pool', url: backend.url, weight: 1 }],
        healthCheck: { intervalSeconds: 3600 },
      },
    });
  }, 60_000);

  afterAll(async () => {
    await gw?.close().catch(() => undefined);
    await backend?.stop();
    await topology?.stop();
  }, 30_000);

  it('serves a proxied request with its rate limit and usage counted on the master the sentinel names', async () => {
    expect(gw.app.get(RedisService).ready).toBe(true);
    const tenant = await createTenantWithKey(gw, {
      scopes: ['images:read', 'usage:read'],
      ...UNLIMITED,
      rateLimits: { perMinute: 10, perHour: 1000 },
    });
    const res = await gw.fetch('/i/insecure/rs:fit:10:10/plain/local:///cat.png', { headers: { 'x-api-key': tenant.key } });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('png-bytes');
    expect(res.headers.get('x-ratelimit-limit')).toBe('10');
    expect(res.headers.get('x-ratelimit-remaining')).toBe('9');
    await gw.app.get(UsageService).settled();
    const usage = await gw.fetch('/api/v1/usage', { headers: { 'x-api-key': tenant.key } });
    expect((await usage.json()).requests.used).toBe(1);

    const master = new Redis({ host: '127.0.0.1', port: topology.masterPort });
    try {
      const [, keys] = await master.scan('0', 'MATCH', `${gw.redisPrefix}*{t:${tenant.tenantId}}*`, 'COUNT', 10_000);
      // One hash holds the tenant's minute and hour buckets and its month view.
      expect(keys).toEqual([`${gw.redisPrefix}a:{t:${tenant.tenantId}}`]);
      const fields = await master.hkeys(keys[0]);
      expect(fields).toEqual(expect.arrayContaining(['b@', 'b:60', 'b:3600', `r:${new Date().toISOString().slice(0, 7)}`]));
    } finally {
      master.disconnect();
    }
  });
});
