import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { type IncomingHttpHeaders, type ServerResponse, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import type { RawWithState } from '../src/gateway/context';
import type { GatewayContext } from '../src/gateway/context';
import { CachePurgeService } from '../src/plugins/proxy-cache/cache-purge.service';
import { ProxyCache } from '../src/plugins/proxy-cache/proxy-cache';
import { RequestLogService } from '../src/request-logs/request-log.service';
import { ImgproxySigner } from '../src/signing/imgproxy-signature';
import { UsageService } from '../src/usage/usage.service';
import { type TestBackend, rawRequest, startBackend, waitFor } from './support/http-backends';
import { metricValue } from './support/metrics';
import { HIGH_RATE_LIMIT_CONFIG, type TenantWithKey, type TenantWithKeyOptions, UNLIMITED, createTenantWithKey } from './support/tenants';
import { type TestApp, type TestAppOptions, createTestApp } from './support/test-app';

/**
 * The response cache as a step of the image routes' chain (docs/cache.md), end to end: real
 * gateways in front of real backends, PostgreSQL and Redis. What a client sees (X-Cache-Status,
 * bodies, 304s), what the backend sees (how often it was asked), and what the tenant is charged.
 */

const IMAGE = Buffer.from('a processed image, 32 bytes long');

/** An imgproxy-like answer: an image, a lifetime, `Vary: Accept`. */
function imageHandler(body: Buffer = IMAGE, headers: Record<string, string> = {}) {
  return (_req: unknown, res: ServerResponse): void => {
    res.writeHead(200, { 'content-type': 'image/webp', 'content-length': String(body.length), 'cache-control': 'max-age=600', vary: 'Accept', ...headers });
    res.end(body);
  };
}

/** A header-mode URL of the tenant's own `local:///<file>`. */
function image(file: string, options = '/rs:fit:100'): string {
  return `/i/insecure${options}/plain/local:///${file}`;
}

function config(backend: TestBackend, extra: Record<string, unknown> = {}): TestAppOptions['config'] {
  return {
    ...HIGH_RATE_LIMIT_CONFIG,
    backends: [{ name: backend.name, url: backend.url, weight: 1 }],
    healthCheck: { intervalSeconds: 3600 },
    ...extra,
  };
}

/** Request contexts of the finished requests, by request id. */
function recordContexts(gw: TestApp): Map<string, GatewayContext> {
  const contexts = new Map<string, GatewayContext>();
  gw.app.getHttpServer().on('request', (req: RawWithState, res: ServerResponse) => {
    res.on('close', () => req.gw && contexts.set(req.gw.requestId, req.gw as GatewayContext));
  });
  return contexts;
}

/** Backend requests for one upstream URL (the sandboxed source ends the path). */
function callsFor(backend: TestBackend, file: string): number {
  return backend.imageRequests.filter((r) => r.url.endsWith(`/${file}`) || r.url.includes(`/${file}?`)).length;
}

interface Streamed {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A request whose first body bytes the test sees before the end. */
function open(base: string, path: string, headers: Record<string, string>): { firstBytes: Promise<void>; done: Promise<Streamed> } {
  let gotFirst!: () => void;
  const firstBytes = new Promise<void>((resolve) => (gotFirst = resolve));
  const done = new Promise<Streamed>((resolve, reject) => {
    const req = httpRequest(base + path, { headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        gotFirst();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
  return { firstBytes, done };
}

/** A promise and the function that resolves it: a backend holds its answer until the test says. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

describe('cache on the image routes', () => {
  let backend: TestBackend;
  let gw: TestApp;
  let tenant: TenantWithKey;
  let contexts: Map<string, GatewayContext>;
  let requestIds = 0;
  const get = (path: string, headers: Record<string, string> = {}, who: TenantWithKey = tenant) =>
    rawRequest(gw.url, path, { headers: { 'x-api-key': who.key, 'x-request-id': `cache-${++requestIds}`, ...headers } });
  const tenantWith = (options: TenantWithKeyOptions = {}) => createTenantWithKey(gw, { scopes: ['images:read', 'images:write', 'usage:read'], ...UNLIMITED, ...options });

  beforeAll(async () => {
    backend = await startBackend({ name: 'render' });
    gw = await createTestApp({
      config: config(backend, {
        cache: { maxEntryBytes: 256 * 1024 },
        // The signed route has response steps (CORS, a header rule): answers the cache writes go through them.
        imageRoutes: {
          signed: {
            cors: { origins: ['https://app.example.com'] },
            headers: { response: { set: { 'X-Frame-Options': 'DENY' } } },
          },
        },
        routes: [
          { name: 'things', path: '/things/*', upstream: 'imgproxy', stripPrefix: '/things', auth: 'none', methods: ['GET', 'POST'], cache: { ttlSeconds: 1 } },
          { name: 'other-things', path: '/other/*', upstream: 'imgproxy', stripPrefix: '/other', auth: 'none', methods: ['GET'], cache: { ttlSeconds: 60 } },
        ],
      }),
    });
    tenant = await tenantWith();
    contexts = recordContexts(gw);
  });
  afterAll(async () => {
    await gw?.close();
    await backend?.stop();
  });
  beforeEach(() => {
    backend.handler = imageHandler();
  });

  it('answers MISS from the backend, then HIT from the entry without a backend call', async () => {
    const miss = await get(image('cat.jpg'), { 'x-request-id': 'first-cat' });
    expect([miss.status, miss.headers['x-cache-status'], miss.body.toString()]).toEqual([200, 'MISS', IMAGE.toString()]);
    const hit = await get(image('cat.jpg'), { 'x-request-id': 'second-cat' });
    expect([hit.status, hit.headers['x-cache-status'], hit.body.toString()]).toEqual([200, 'HIT', IMAGE.toString()]);
    expect(callsFor(backend, 'cat.jpg')).toBe(1);
    // The stored head, the request's own id, and how old the entry is.
    expect(hit.headers).toMatchObject({ 'content-type': 'image/webp', 'content-length': String(IMAGE.length), 'cache-control': 'max-age=600', vary: 'Accept', 'x-request-id': 'second-cat' });
    expect(Number(hit.headers.age)).toBeGreaterThanOrEqual(0);
    expect(hit.headers['x-ratelimit-limit']).toBeDefined();

    await waitFor('both requests finished', () => contexts.has('first-cat') && contexts.has('second-cat'));
    expect([contexts.get('first-cat')!.rendered, contexts.get('second-cat')!.rendered]).toEqual([true, false]);
    expect([contexts.get('first-cat')!.bytesOut, contexts.get('second-cat')!.bytesOut]).toEqual([IMAGE.length, IMAGE.length]);
  });

  it('says cache: hit or miss in the request logs and counts lookups by status', async () => {
    const hitsBefore = await metricValue(gw, 'gateway_cache_requests_total', 'status="hit"');
    await get(image('logged.jpg'), { 'x-request-id': 'logged-miss' });
    await get(image('logged.jpg'), { 'x-request-id': 'logged-hit' });
    expect(await metricValue(gw, 'gateway_cache_requests_total', 'status="hit"')).toBe(hitsBefore + 1);
    await waitFor('both requests finished', () => contexts.has('logged-hit'));
    await gw.app.get(RequestLogService).flush();
    for (const [requestId, cache] of [
      ['logged-miss', 'miss'],
      ['logged-hit', 'hit'],
    ]) {
      const page = await (await gw.admin(`/admin/v1/request-logs?requestId=${requestId}`)).json();
      expect(page.items[0]).toMatchObject({ requestId, cache, status: 200, bytesOut: IMAGE.length, tenantId: tenant.tenantId });
    }
  });

  it('shares entries between /i/* and /t/* of one tenant, and runs the route’s response steps on answers it writes', async () => {
    const signed = (file: string) => `/t/${tenant.keyId}${new ImgproxySigner(tenant.signingKey, tenant.signingSalt).signPath(`/rs:fit:100/plain/local:///${file}`)}`;
    await get(image('shared.jpg'));
    const res = await rawRequest(gw.url, signed('shared.jpg'), { headers: { origin: 'https://app.example.com' } });
    expect([res.status, res.headers['x-cache-status'], res.body.toString()]).toEqual([200, 'HIT', IMAGE.toString()]);
    expect(res.headers).toMatchObject({ 'access-control-allow-origin': 'https://app.example.com', vary: 'Accept, Origin', 'x-frame-options': 'DENY' });
    expect(callsFor(backend, 'shared.jpg')).toBe(1);
    // The same steps on a miss the cache writes for a fetch.
    const miss = await rawRequest(gw.url, signed('shared-miss.jpg'), { headers: { origin: 'https://app.example.com' } });
    expect([miss.status, miss.headers['x-cache-status'], miss.headers['x-frame-options'], miss.headers.vary]).toEqual([200, 'MISS', 'DENY', 'Accept, Origin']);
  });

  it('answers conditional requests 304 from a matching entry, and HEAD from the entry', async () => {
    backend.handler = imageHandler(IMAGE, { etag: '"v7"', 'last-modified': 'Wed, 21 Oct 2026 07:28:00 GMT' });
    await get(image('tagged.jpg'));
    const byTag = await get(image('tagged.jpg'), { 'if-none-match': 'W/"v7"' });
    expect([byTag.status, byTag.headers['x-cache-status'], byTag.headers.etag, byTag.body.length]).toEqual([304, 'HIT', '"v7"', 0]);
    const byDate = await get(image('tagged.jpg'), { 'if-modified-since': 'Wed, 21 Oct 2026 07:28:00 GMT' });
    expect([byDate.status, byDate.headers['x-cache-status']]).toEqual([304, 'HIT']);
    const changed = await get(image('tagged.jpg'), { 'if-none-match': '"v6"' });
    expect([changed.status, changed.headers['x-cache-status'], changed.body.toString()]).toEqual([200, 'HIT', IMAGE.toString()]);
    const head = await rawRequest(gw.url, image('tagged.jpg'), { method: 'HEAD', headers: { 'x-api-key': tenant.key } });
    expect([head.status, head.headers['x-cache-status'], head.headers['content-length'], head.body.length]).toEqual([200, 'HIT', String(IMAGE.length), 0]);
    expect(callsFor(backend, 'tagged.jpg')).toBe(1);
  });

  it('passes a Range request for an uncached image to the backend as it is, and answers it whole from an entry', async () => {
    backend.handler = (req, res) => {
      if (req.headers.range === undefined) return imageHandler()(req, res);
      res.writeHead(206, { 'content-type': 'image/webp', 'content-range': `bytes 0-3/${IMAGE.length}`, 'content-length': '4' });
      res.end(IMAGE.subarray(0, 4));
    };
    const partial = await get(image('ranged.jpg'), { range: 'bytes=0-3' });
    expect([partial.status, partial.headers['x-cache-status'], partial.body.toString()]).toEqual([206, 'MISS', IMAGE.subarray(0, 4).toString()]);
    expect(backend.imageRequests.at(-1)?.headers.range).toBe('bytes=0-3');
    // Nothing was stored from the 206: the next GET fetches, then a Range request gets the whole entry.
    expect((await get(image('ranged.jpg'))).headers['x-cache-status']).toBe('MISS');
    const whole = await get(image('ranged.jpg'), { range: 'bytes=0-3' });
    expect([whole.status, whole.headers['x-cache-status'], whole.body.toString()]).toEqual([200, 'HIT', IMAGE.toString()]);
    expect(callsFor(backend, 'ranged.jpg')).toBe(2);
  });

  it('makes one backend call for concurrent identical misses, and streams the body to every client before the backend finished', async () => {
    const held = gate();
    const [head, tail] = [Buffer.alloc(40 * 1024, 'h'), Buffer.alloc(60 * 1024, 't')];
    let finished = false;
    backend.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'image/webp', 'content-length': String(head.length + tail.length), vary: 'Accept' });
      res.write(head);
      void held.wait.then(() => {
        finished = true;
        res.end(tail);
      });
    };
    const coalescedBefore = await metricValue(gw, 'gateway_cache_coalesced_total');
    const clients = Array.from({ length: 8 }, (_, i) => open(gw.url, image('slow.jpg'), { 'x-api-key': tenant.key, accept: 'image/webp', 'x-request-id': `slow-${i}` }));
    await Promise.all(clients.map((client) => client.firstBytes));
    expect(finished).toBe(false);
    expect(callsFor(backend, 'slow.jpg')).toBe(1);
    held.open();
    const answers = await Promise.all(clients.map((client) => client.done));
    for (const answer of answers) {
      expect([answer.status, answer.headers['x-cache-status']]).toEqual([200, 'MISS']);
      expect(answer.body.equals(Buffer.concat([head, tail]))).toBe(true);
    }
    expect(callsFor(backend, 'slow.jpg')).toBe(1);
    expect(await metricValue(gw, 'gateway_cache_coalesced_total')).toBe(coalescedBefore + 7);
    // One render served eight clients: only the request that led the fetch counts as one.
    await waitFor('every request finished', () => clients.every((_, i) => contexts.has(`slow-${i}`)));
    expect(clients.filter((_, i) => contexts.get(`slow-${i}`)!.rendered)).toHaveLength(1);
    expect(clients.map((_, i) => contexts.get(`slow-${i}`)!.bytesOut)).toEqual(Array(8).fill(head.length + tail.length));
    expect((await get(image('slow.jpg'), { accept: 'image/webp' })).headers['x-cache-status']).toBe('HIT');
  });

  it('fails every waiter of a failed fetch the same clean way, and stores nothing', async () => {
    const held = gate();
    backend.handler = (_req, res) => {
      // Headers, then the backend dies before the first body byte.
      res.writeHead(200, { 'content-type': 'image/webp', 'content-length': '1000' });
      res.flushHeaders();
      void held.wait.then(() => res.socket?.destroy());
    };
    const coalescedBefore = await metricValue(gw, 'gateway_cache_coalesced_total');
    const clients = Array.from({ length: 5 }, () => open(gw.url, image('broken.jpg'), { 'x-api-key': tenant.key }));
    await waitFor('every request joined the fetch', async () => (await metricValue(gw, 'gateway_cache_coalesced_total')) === coalescedBefore + 4);
    held.open();
    const answers = await Promise.all(clients.map((client) => client.done));
    for (const answer of answers) {
      expect(answer.status).toBe(502);
      expect(JSON.parse(answer.body.toString()).error.code).toBe('bad_gateway');
      // A refusal is the gateway's own answer, not the image's: no X-Cache-Status.
      expect(answer.headers['x-cache-status']).toBeUndefined();
    }
    expect(callsFor(backend, 'broken.jpg')).toBe(1);
    backend.handler = imageHandler();
    expect((await get(image('broken.jpg'))).headers['x-cache-status']).toBe('MISS');
    expect(callsFor(backend, 'broken.jpg')).toBe(2);
  });

  it('finishes a storable fetch for the cache when its only client leaves, and cancels one that nothing would keep', async () => {
    for (const [file, cacheControl] of [
      ['left-storable.jpg', 'max-age=600'],
      ['left-no-store.jpg', 'no-store'],
    ] as const) {
      const held = gate();
      backend.handler = (_req, res) => {
        res.writeHead(200, { 'content-type': 'image/webp', 'content-length': String(2 * IMAGE.length), 'cache-control': cacheControl });
        res.write(IMAGE);
        void held.wait.then(() => res.end(IMAGE));
      };
      const req = httpRequest(gw.url + image(file), { headers: { 'x-api-key': tenant.key }, agent: false });
      req.on('error', () => undefined);
      const res = await new Promise<import('node:http').IncomingMessage>((resolve) => req.on('response', resolve).end());
      await new Promise((resolve) => res.once('data', resolve));
      req.destroy();
      if (cacheControl === 'no-store') {
        await waitFor('the backend to see the fetch cancelled', () => backend.abandoned.some((r) => r.url.endsWith(file)));
        held.open();
        continue;
      }
      // Give the gateway the time to see the client gone, then let the backend finish.
      await new Promise((resolve) => setTimeout(resolve, 50));
      held.open();
      // A request arriving meanwhile joins the fetch still under way; then the entry answers.
      await waitFor('the entry stored', async () => (await get(image(file))).headers['x-cache-status'] === 'HIT');
      expect(callsFor(backend, file)).toBe(1);
      expect(backend.abandoned.some((r) => r.url.endsWith(file))).toBe(false);
    }
  });

  it('keys by the Accept bucket of a backend that varies on Accept, never by the raw header', async () => {
    backend.handler = (req, res) => {
      const accept = req.headers.accept ?? '';
      const format = accept.includes('image/avif') ? 'avif' : accept.includes('image/webp') ? 'webp' : 'jpeg';
      imageHandler(Buffer.from(`as ${format}`), { 'content-type': `image/${format}` })(req, res);
    };
    const ask = async (accept: string) => {
      const res = await get(image('formats.jpg'), { accept });
      return `${res.headers['x-cache-status']} ${res.body.toString()}`;
    };
    expect(await ask('image/avif,image/webp,*/*')).toBe('MISS as avif');
    expect(await ask('image/webp,*/*')).toBe('MISS as webp');
    expect(await ask('image/png,*/*')).toBe('MISS as jpeg');
    // Other spellings of the same bucket share its entry.
    expect(await ask('image/avif;q=0.9, image/webp')).toBe('HIT as avif');
    expect(await ask('text/html, image/webp;q=0.8')).toBe('HIT as webp');
    expect(await ask('*/*')).toBe('HIT as jpeg');
    expect(callsFor(backend, 'formats.jpg')).toBe(3);
  });

  it('never stores private, no-store or Set-Cookie answers: each request reaches the backend', async () => {
    for (const [file, headers] of [
      ['private.jpg', { 'cache-control': 'private, max-age=600' }],
      ['no-store.jpg', { 'cache-control': 'no-store' }],
      ['cookie.jpg', { 'set-cookie': 'session=abc' }],
    ] as const) {
      backend.handler = imageHandler(IMAGE, headers);
      const statuses: string[] = [];
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await get(image(file));
        expect(res.body.toString()).toBe(IMAGE.toString());
        expect(res.headers['set-cookie']).toBeUndefined();
        statuses.push(String(res.headers['x-cache-status']));
        ids.push(String(res.headers['x-request-id']));
      }
      // The first finds out; the next ones skip the cache for a while (no wait on a fetch they cannot share).
      expect(statuses).toEqual(['MISS', 'BYPASS', 'BYPASS']);
      expect(callsFor(backend, file)).toBe(3);
      // Each was rendered for its own request.
      await waitFor('every request finished', () => ids.every((id) => contexts.has(id)));
      expect(ids.map((id) => contexts.get(id)!.rendered)).toEqual([true, true, true]);
    }
  });

  it('streams an answer larger than cache.maxEntryBytes through uncached, with or without a length', async () => {
    const big = Buffer.alloc(1024 * 1024, 'b');
    for (const [file, chunked] of [
      ['big.jpg', false],
      ['big-chunked.jpg', true],
    ] as const) {
      backend.handler = (_req, res) => {
        res.writeHead(200, chunked ? { 'content-type': 'image/png' } : { 'content-type': 'image/png', 'content-length': String(big.length) });
        for (let offset = 0; offset < big.length; offset += 64 * 1024) res.write(big.subarray(offset, offset + 64 * 1024));
        res.end();
      };
      const first = await get(image(file));
      expect([first.status, first.headers['x-cache-status'], first.body.equals(big)]).toEqual([200, 'MISS', true]);
      const second = await get(image(file));
      expect([second.headers['x-cache-status'], second.body.equals(big)]).toEqual(['BYPASS', true]);
      expect(callsFor(backend, file)).toBe(2);
    }
    expect(gw.app.get(ProxyCache).memoryStats.bytes).toBeLessThan(big.length);
  });

  it('never shares an entry between tenants, even for the same upstream URL', async () => {
    const remote = { allowedSources: ['https://cdn.example.com/'] };
    const [a, b] = [await tenantWith(remote), await tenantWith(remote)];
    const url = '/i/insecure/rs:fit:50/plain/https://cdn.example.com/same.jpg';
    expect((await get(url, {}, a)).headers['x-cache-status']).toBe('MISS');
    expect((await get(url, {}, b)).headers['x-cache-status']).toBe('MISS');
    expect((await get(url, {}, a)).headers['x-cache-status']).toBe('HIT');
    expect((await get(url, {}, b)).headers['x-cache-status']).toBe('HIT');
    const calls = backend.imageRequests.filter((r) => r.url.endsWith('https://cdn.example.com/same.jpg'));
    expect(calls).toHaveLength(2);
    expect(calls[0].url).toBe(calls[1].url);
  });

  it('caches a configured route with cache: { ttlSeconds } per route, skips credentialed requests, and expires the entry', async () => {
    backend.handler = (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ path: req.url }));
    };
    const open = (path: string, headers: Record<string, string> = {}) => rawRequest(gw.url, path, { headers });
    expect((await open('/things/list?page=1')).headers['x-cache-status']).toBe('MISS');
    const hit = await open('/things/list?page=1');
    expect([hit.headers['x-cache-status'], JSON.parse(hit.body.toString())]).toEqual(['HIT', { path: '/list?page=1' }]);
    // Another route reaching the same upstream path is another resource.
    expect((await open('/other/list?page=1')).headers['x-cache-status']).toBe('MISS');
    // A cookie goes upstream on configured routes: the answer may be that caller's own.
    expect((await open('/things/list?page=1', { cookie: 'session=1' })).headers['x-cache-status']).toBe('BYPASS');
    expect((await rawRequest(gw.url, '/things/list?page=1', { method: 'POST' })).headers['x-cache-status']).toBe('BYPASS');
    expect(backend.imageRequests.filter((r) => r.url === '/list?page=1')).toHaveLength(4);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect((await open('/things/list?page=1')).headers['x-cache-status']).toBe('MISS');
    expect(backend.imageRequests.filter((r) => r.url === '/list?page=1')).toHaveLength(5);
  });

  describe('a hit is still a request of its tenant', () => {
    const usage = async (who: TenantWithKey) => (await (await gw.fetch('/api/v1/usage', { headers: { 'x-api-key': who.key } })).json()) as {
      requests: { used: number };
      bandwidthBytes: { used: number };
    };

    it('counts hits against the request quota and their bytes as bandwidth', async () => {
      const metered = await tenantWith({ quotas: { monthlyRequests: 3 } });
      const statuses: string[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await get(image('metered.jpg'), {}, metered);
        statuses.push(`${res.status} ${res.headers['x-cache-status']}`);
        // Counted once the response ended: the next request's check sees it.
        await waitFor('the request counted', async () => (await usage(metered)).requests.used === i + 1);
      }
      expect(statuses).toEqual(['200 MISS', '200 HIT', '200 HIT']);
      const refused = await get(image('metered.jpg'), {}, metered);
      expect([refused.status, JSON.parse(refused.body.toString()).error.code]).toEqual([429, 'quota_exceeded']);
      expect(callsFor(backend, 'metered.jpg')).toBe(1);
      await waitFor('the bytes counted', async () => (await usage(metered)).bandwidthBytes.used === 3 * IMAGE.length);
      expect((await usage(metered)).requests.used).toBe(3);
      // Three requests, one render: the hits spared the backend.
      await gw.app.get(UsageService).flush();
      const days = await (await gw.fetch('/api/v1/usage?granularity=day', { headers: { 'x-api-key': metered.key } })).json();
      expect(days.series.at(-1)).toMatchObject({ requests: 3, bandwidthBytes: 3 * IMAGE.length, renders: 1 });
    });

    it('applies the tenant’s rate limit to hits', async () => {
      const limited = await tenantWith({ rateLimits: { perMinute: 2, perHour: 1000 } });
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) statuses.push((await get(image('limited.jpg'), {}, limited)).status);
      expect(statuses).toEqual([200, 200, 429]);
      expect(callsFor(backend, 'limited.jpg')).toBe(1);
    });
  });
});

describe('cache purge on every instance, through the image routes', () => {
  let backend: TestBackend;
  let a: TestApp;
  let b: TestApp;
  let tenant: TenantWithKey;
  let uploads: string;

  beforeAll(async () => {
    backend = await startBackend({ name: 'render' });
    backend.handler = imageHandler();
    uploads = mkdtempSync(join(tmpdir(), 'igw-cache-uploads-'));
    a = await createTestApp({ config: config(backend, { uploads: { root: uploads } }) });
    b = await createTestApp({ config: config(backend, { uploads: { root: uploads } }), database: a.database, redisPrefix: a.redisPrefix });
    tenant = await createTenantWithKey(a, { scopes: ['images:read', 'images:write'], ...UNLIMITED });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
    await backend?.stop();
    rmSync(uploads, { recursive: true, force: true });
  });

  const status = async (gw: TestApp, path: string) => (await rawRequest(gw.url, path, { headers: { 'x-api-key': tenant.key } })).headers['x-cache-status'];

  it('drops real entries on both instances: the next request is a MISS on each', async () => {
    for (const gw of [a, b]) {
      expect(await status(gw, image('purged/1.jpg'))).toBe('MISS');
      expect(await status(gw, image('purged/1.jpg'))).toBe('HIT');
      expect(await status(gw, image('kept/1.jpg'))).toBe('MISS');
    }
    const res = await a.admin('/admin/v1/cache/purge', { method: 'POST', json: { tenantId: tenant.tenantId, prefix: 'local:///purged/' } });
    expect([res.status, (await res.json()).dropped]).toEqual([200, 1]);
    expect(await status(a, image('purged/1.jpg'))).toBe('MISS');
    await waitFor('the purge on the other instance', async () => (await status(b, image('purged/1.jpg'))) === 'MISS', 3_000);
    for (const gw of [a, b]) expect(await status(gw, image('kept/1.jpg'))).toBe('HIT');
    expect(callsFor(backend, 'purged/1.jpg')).toBe(4);
  });

  it('drops the cached variants of a deleted upload on both instances', async () => {
    const png = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#204060' } }).png().toBuffer();
    const created = await a.fetch('/api/v1/images', { method: 'POST', headers: { 'x-api-key': tenant.key, 'content-type': 'image/png' }, body: png });
    expect(created.status).toBe(201);
    const { id, source } = (await created.json()) as { id: string; source: string };
    const variants = ['/rs:fit:10', '/rs:fit:20/q:50'].map((options) => `/i/insecure${options}/plain/${source}`);
    for (const gw of [a, b]) {
      for (const variant of variants) {
        await status(gw, variant);
        expect(await status(gw, variant)).toBe('HIT');
      }
    }
    const deleted = await b.fetch(`/api/v1/images/${id}`, { method: 'DELETE', headers: { 'x-api-key': tenant.key } });
    expect(deleted.status).toBe(204);
    for (const variant of variants) expect(await status(b, variant)).toBe('MISS');
    await waitFor('the purge on the other instance', async () => (await status(a, variants[0])) === 'MISS', 3_000);
    expect(await status(a, variants[1])).toBe('MISS');
  });
});

describe('disk tier across a gateway restart', () => {
  let backend: TestBackend;
  let dir: string;
  let first: TestApp;
  /** The instance running now (closed after the spec). */
  let running: TestApp | undefined;
  let tenant: TenantWithKey;

  beforeAll(async () => {
    backend = await startBackend({ name: 'render' });
    backend.handler = imageHandler();
    dir = mkdtempSync(join(tmpdir(), 'igw-cache-dir-'));
    first = running = await withDisk();
    tenant = await createTenantWithKey(first, { scopes: ['images:read'], ...UNLIMITED });
  });
  afterAll(async () => {
    await running?.close();
    await backend?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function withDisk(from?: TestApp): Promise<TestApp> {
    const gw = await createTestApp({ config: config(backend, { cache: { dir } }), database: from?.database, redisPrefix: from?.redisPrefix });
    await gw.app.get(CachePurgeService).whenDiskReady();
    return gw;
  }

  const status = async (gw: TestApp, path: string) => (await rawRequest(gw.url, path, { headers: { 'x-api-key': tenant.key } })).headers['x-cache-status'];

  /** The entry files under the directory (two hex characters, then the key's hash). */
  function entryFiles(): string[] {
    return readdirSync(dir)
      .filter((name) => /^[0-9a-f]{2}$/.test(name))
      .flatMap((sub) => readdirSync(join(dir, sub)).map((file) => join(dir, sub, file)));
  }

  it('serves what it stored before the restart without a backend call, and drops a corrupt file', async () => {
    expect(await status(first, image('kept.jpg'))).toBe('MISS');
    await first.app.get(ProxyCache).disk!.flush();
    const [file] = entryFiles();
    expect(statSync(file).size).toBeGreaterThan(IMAGE.length);
    await first.close();
    running = undefined;

    const second = (running = await withDisk(first));
    expect(await status(second, image('kept.jpg'))).toBe('HIT');
    expect(callsFor(backend, 'kept.jpg')).toBe(1);
    expect(await status(second, image('damaged.jpg'))).toBe('MISS');
    await second.app.get(ProxyCache).disk!.flush();
    await second.close();
    running = undefined;

    // Flip the last byte of the body of the newest file.
    const damaged = entryFiles().find((path) => path !== file)!;
    const bytes = readFileSync(damaged);
    bytes[bytes.length - 1] ^= 0xff;
    writeFileSync(damaged, bytes);

    const third = (running = await withDisk(first));
    const res = await rawRequest(third.url, image('damaged.jpg'), { headers: { 'x-api-key': tenant.key } });
    expect([res.headers['x-cache-status'], res.body.toString()]).toEqual(['MISS', IMAGE.toString()]);
    expect(callsFor(backend, 'damaged.jpg')).toBe(2);
    expect(await status(third, image('kept.jpg'))).toBe('HIT');
  });
});
