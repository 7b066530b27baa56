import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import sharp from 'sharp';
import { CachePurgeService } from '../src/plugins/proxy-cache/cache-purge.service';
import { ProxyCache } from '../src/plugins/proxy-cache/proxy-cache';
import { RedisService } from '../src/redis/redis.service';
import { TEST_REDIS_URL } from './support/test-env';
import { type TestApp, createTestApp } from './support/test-app';
import { type TenantWithKey, UNLIMITED, createTenantWithKey } from './support/tenants';

/**
 * Purge on every instance (docs/cache.md): two gateways sharing PostgreSQL and a Redis prefix. The
 * entries are put in each instance's cache through ProxyCache itself, the way the image routes'
 * cache step fills it; purges go through the real endpoints, Redis and upload deletion.
 */

const IMAGE_HEADERS = { 'content-type': 'image/webp', 'cache-control': 'max-age=600', vary: 'Accept' };

/** Stores an entry for a source as a proxied image request would. */
async function store(gw: TestApp, tenantId: string, source: string): Promise<void> {
  const cache = gw.app.get(ProxyCache);
  const outcome = cache.lookup(request(tenantId, source, 'GET'), (fill) => {
    fill.response(200, IMAGE_HEADERS);
    fill.chunk(Buffer.from(`image of ${source}`));
    fill.end();
  });
  expect(outcome.kind).toBe('wait');
  if (outcome.kind === 'wait') await outcome.response;
  expect(await cached(gw, tenantId, source)).toBe(true);
}

/** Whether the instance answers this source from its cache (a HEAD never fetches). */
async function cached(gw: TestApp, tenantId: string, source: string): Promise<boolean> {
  const outcome = gw.app.get(ProxyCache).lookup(request(tenantId, source, 'HEAD'), (fill) => fill.fail(new Error('no backend in this test')));
  if (outcome.kind === 'hit') return true;
  if (outcome.kind === 'pass') return false;
  return (await outcome.response.catch(() => undefined))?.status === 'HIT';
}

function request(tenantId: string, source: string, method: string) {
  return {
    tenantId,
    method,
    upstreamPath: `/insecure/rs:fit:300/plain/${source.replace('local:///', `local:///tenants/${tenantId}/`)}`,
    sourceUrl: source,
    requestHeaders: { accept: 'image/webp,*/*' },
  };
}

async function eventually(what: string, probe: () => Promise<boolean>, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function post(gw: TestApp, path: string, json: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return gw.fetch(path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(json) });
}

describe('cache purge across instances (real PostgreSQL and Redis)', () => {
  let a: TestApp;
  let b: TestApp;
  let writer: TenantWithKey;
  let reader: TenantWithKey;
  let other: TenantWithKey;

  beforeAll(async () => {
    a = await createTestApp();
    b = await createTestApp({ database: a.database, redisPrefix: a.redisPrefix });
    writer = await createTenantWithKey(a, { scopes: ['images:read', 'images:write'], ...UNLIMITED });
    reader = await createTenantWithKey(a, { scopes: ['images:read'], ...UNLIMITED });
    other = await createTenantWithKey(a, { scopes: ['images:read', 'images:write'], ...UNLIMITED });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  describe('POST /admin/v1/cache/purge', () => {
    it('drops the tenant’s entries under the prefix on every instance, and nothing else', async () => {
      for (const gw of [a, b]) {
        await store(gw, writer.tenantId, 'local:///avatars/1.jpg');
        await store(gw, writer.tenantId, 'local:///banners/2.jpg');
        await store(gw, other.tenantId, 'local:///avatars/1.jpg');
      }
      const res = await a.admin('/admin/v1/cache/purge', { method: 'POST', json: { tenantId: writer.tenantId, prefix: 'LOCAL:///avatars/' } });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ tenantId: writer.tenantId, prefix: 'local:///avatars/', dropped: 1 });

      expect(await cached(a, writer.tenantId, 'local:///avatars/1.jpg')).toBe(false);
      await eventually('purge on the other instance', async () => !(await cached(b, writer.tenantId, 'local:///avatars/1.jpg')));
      for (const gw of [a, b]) {
        expect(await cached(gw, writer.tenantId, 'local:///banners/2.jpg')).toBe(true);
        expect(await cached(gw, other.tenantId, 'local:///avatars/1.jpg')).toBe(true);
      }
    });

    it('drops every entry of the tenant without a prefix', async () => {
      await store(a, writer.tenantId, 'https://cdn.example.com/x.jpg');
      await store(b, writer.tenantId, 'https://cdn.example.com/y.jpg');
      const res = await b.admin('/admin/v1/cache/purge', { method: 'POST', json: { tenantId: writer.tenantId } });
      expect(res.status).toBe(200);
      expect((await res.json()).prefix).toBeNull();
      await eventually('purge on the other instance', async () => !(await cached(a, writer.tenantId, 'https://cdn.example.com/x.jpg')));
      expect(await cached(b, writer.tenantId, 'https://cdn.example.com/y.jpg')).toBe(false);
      expect(await cached(a, other.tenantId, 'local:///avatars/1.jpg')).toBe(true);
    });

    it('is audited like every admin write', async () => {
      const res = await a.admin('/admin/v1/cache/purge', { method: 'POST', json: { tenantId: other.tenantId, prefix: 'https://CDN.example.com/Gallery/' } });
      expect(res.status).toBe(200);
      const log = await (await a.admin(`/admin/v1/audit-log?targetType=tenant&targetId=${other.tenantId}`)).json();
      expect(log.items[0]).toMatchObject({ action: 'cache.purge', targetType: 'tenant', targetId: other.tenantId, after: { prefix: 'https://cdn.example.com/Gallery/' } });
      expect(log.items[0].actor).toMatch(/^admin:[0-9a-f]{12}$/);
    });

    it('refuses invalid bodies with validation_failed, unknown tenants with 404, and callers without the admin token', async () => {
      for (const body of [{ tenantId: 'nope' }, { tenantId: writer.tenantId, prefix: '/avatars/' }, { tenantId: writer.tenantId, prefix: 7 }, { tenantId: writer.tenantId, extra: true }, {}]) {
        const res = await a.admin('/admin/v1/cache/purge', { method: 'POST', json: body });
        expect(res.status).toBe(400);
        const { error } = await res.json();
        expect(error.code).toBe('validation_failed');
        expect(error.details.length).toBeGreaterThan(0);
      }
      const unknown = await a.admin('/admin/v1/cache/purge', { method: 'POST', json: { tenantId: randomUUID() } });
      expect([unknown.status, (await unknown.json()).error.code]).toEqual([404, 'not_found']);
      expect((await post(a, '/admin/v1/cache/purge', { tenantId: writer.tenantId })).status).toBe(401);
    });
  });

  describe('POST /api/v1/cache/purge (tenant)', () => {
    it('drops the caller’s own entries on every instance', async () => {
      for (const gw of [a, b]) {
        await store(gw, writer.tenantId, 'local:///avatars/3.jpg');
        await store(gw, other.tenantId, 'local:///avatars/3.jpg');
      }
      const res = await post(b, '/api/v1/cache/purge', { prefix: 'local:///avatars/' }, { 'x-api-key': writer.key });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ tenantId: writer.tenantId, prefix: 'local:///avatars/', dropped: 1 });
      expect(res.headers.get('x-ratelimit-limit')).not.toBeNull();
      await eventually('purge on the other instance', async () => !(await cached(a, writer.tenantId, 'local:///avatars/3.jpg')));
      expect(await cached(a, other.tenantId, 'local:///avatars/3.jpg')).toBe(true);
      expect(await cached(b, other.tenantId, 'local:///avatars/3.jpg')).toBe(true);
    });

    it('needs a key with images:write', async () => {
      const noKey = await post(a, '/api/v1/cache/purge', {});
      expect([noKey.status, (await noKey.json()).error.code]).toEqual([401, 'unauthorized']);
      const readOnly = await post(a, '/api/v1/cache/purge', {}, { 'x-api-key': reader.key });
      expect([readOnly.status, (await readOnly.json()).error.code]).toEqual([403, 'forbidden']);
    });

    it('validates the prefix and refuses other fields', async () => {
      for (const body of [{ prefix: 'avatars/' }, { prefix: 'local:///a b' }, { tenantId: other.tenantId }]) {
        const res = await post(a, '/api/v1/cache/purge', body, { 'x-api-key': writer.key });
        expect([res.status, (await res.json()).error.code]).toEqual([400, 'validation_failed']);
      }
    });

    it('is rate limited like every tenant call', async () => {
      const limited = await createTenantWithKey(a, { scopes: ['images:write'], rateLimits: { perMinute: 2, perHour: 1000 } });
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await post(a, '/api/v1/cache/purge', {}, { 'x-api-key': limited.key })).status);
      expect(statuses).toEqual([200, 200, 429]);
    });
  });

  it('is documented in the OpenAPI document', async () => {
    const doc = await (await a.fetch('/docs-json')).json();
    expect(doc.paths['/admin/v1/cache/purge'].post.responses).toHaveProperty('200');
    expect(doc.paths['/api/v1/cache/purge'].post.responses).toHaveProperty('403');
    expect(doc.components.schemas.CacheAdminPurgeDto.required).toEqual(['tenantId']);
  });

  it('replays the purges an instance missed while its subscription was down', async () => {
    await store(b, writer.tenantId, 'local:///missed/1.jpg');
    const subscriber = (b.app.get(RedisService) as unknown as { subscriber: Redis }).subscriber;
    const port = subscriber.stream.localPort;
    const control = new Redis(TEST_REDIS_URL);
    try {
      const clients = (await control.client('LIST')) as string;
      const id = clients.split('\n').find((line) => line.includes(`addr=127.0.0.1:${port} `))?.match(/^id=(\d+)/)?.[1];
      expect(id).toBeDefined();
      await control.client('KILL', 'ID', id!);
      await eventually('subscriber disconnected', async () => subscriber.status !== 'ready', 2_000);
      const res = await a.admin('/admin/v1/cache/purge', { method: 'POST', json: { tenantId: writer.tenantId, prefix: 'local:///missed/' } });
      expect(res.status).toBe(200);
      await eventually('replayed after the reconnect', async () => !(await cached(b, writer.tenantId, 'local:///missed/1.jpg')), 5_000);
    } finally {
      control.disconnect();
    }
  });

  describe('deleting an upload', () => {
    it('drops its cached variants on every instance, and only its own', async () => {
      const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#305070' } }).png().toBuffer();
      const upload = async () => {
        const res = await a.fetch('/api/v1/images', { method: 'POST', headers: { 'x-api-key': writer.key, 'content-type': 'image/png' }, body: png });
        expect(res.status).toBe(201);
        return (await res.json()) as { id: string; source: string };
      };
      const [gone, kept] = [await upload(), await upload()];
      for (const gw of [a, b]) {
        await store(gw, writer.tenantId, gone.source);
        await store(gw, writer.tenantId, kept.source);
      }
      const res = await b.fetch(`/api/v1/images/${gone.id}`, { method: 'DELETE', headers: { 'x-api-key': writer.key } });
      expect(res.status).toBe(204);
      expect(await cached(b, writer.tenantId, gone.source)).toBe(false);
      await eventually('purge on the other instance', async () => !(await cached(a, writer.tenantId, gone.source)));
      expect(await cached(a, writer.tenantId, kept.source)).toBe(true);
      expect(await cached(b, writer.tenantId, kept.source)).toBe(true);
    });
  });
});

describe('disk tier across a restart (real Redis purge log)', () => {
  let dir: string;
  let peer: TestApp;
  let tenant: TenantWithKey;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'igw-cache-restart-'));
    peer = await createTestApp();
    tenant = await createTenantWithKey(peer, { ...UNLIMITED });
  });
  afterAll(async () => {
    await peer?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function withDisk(): Promise<TestApp> {
    const gw = await createTestApp({ database: peer.database, redisPrefix: peer.redisPrefix, config: { cache: { dir } } });
    await gw.app.get(CachePurgeService).whenDiskReady();
    expect(gw.app.get(ProxyCache).disk?.ready).toBe(true);
    return gw;
  }

  it('keeps entries across a restart, minus what was purged while the instance was down', async () => {
    const first = await withDisk();
    await store(first, tenant.tenantId, 'local:///kept.jpg');
    await store(first, tenant.tenantId, 'local:///purged-while-down.jpg');
    await first.app.get(ProxyCache).disk!.flush();
    await first.close();

    const res = await peer.admin('/admin/v1/cache/purge', { method: 'POST', json: { tenantId: tenant.tenantId, prefix: 'local:///purged-while-down' } });
    expect(res.status).toBe(200);

    const second = await withDisk();
    try {
      expect(await cached(second, tenant.tenantId, 'local:///kept.jpg')).toBe(true);
      expect(await cached(second, tenant.tenantId, 'local:///purged-while-down.jpg')).toBe(false);
    } finally {
      await second.close();
    }
  });

  it('starts empty when the purge log no longer reaches back to its cursor', async () => {
    const first = await withDisk();
    await store(first, tenant.tenantId, 'local:///old.jpg');
    await first.app.get(ProxyCache).disk!.flush();
    await first.close();
    // The log lost its history (trimmed, or a Redis without persistence restarted).
    const control = new Redis(TEST_REDIS_URL);
    await control.del(`${peer.redisPrefix}cache:purges`);
    control.disconnect();

    const second = await withDisk();
    try {
      expect(await cached(second, tenant.tenantId, 'local:///old.jpg')).toBe(false);
      expect(second.app.get(ProxyCache).disk?.count).toBe(0);
    } finally {
      await second.close();
    }
  });
});

describe('cache purge without Redis (one instance)', () => {
  let gw: TestApp;
  beforeAll(async () => {
    gw = await createTestApp({ withoutRedis: true });
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('purges in process', async () => {
    const tenant = await createTenantWithKey(gw, { scopes: ['images:write'], ...UNLIMITED });
    await store(gw, tenant.tenantId, 'local:///a.jpg');
    const res = await post(gw, '/api/v1/cache/purge', {}, { 'x-api-key': tenant.key });
    expect([res.status, (await res.json()).dropped]).toEqual([200, 1]);
    expect(await cached(gw, tenant.tenantId, 'local:///a.jpg')).toBe(false);
  });
});
