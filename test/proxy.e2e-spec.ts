import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import type { RawWithState, RequestState } from '../src/gateway/context';
import { TestApp, TestAppOptions, createTestApp } from './support/test-app';
import { TestBackend, echoHandler, largeBodyHandler, rawRequest, startBackend, waitFor } from './support/http-backends';
import { HIGH_RATE_LIMIT_CONFIG, TenantWithKey, UNLIMITED, createTenantWithKey, sandboxedPlainPath } from './support/tenants';

/** Every finished request's pipeline state, as the quota and metrics steps will read it. */
function recordStates(gw: TestApp): RequestState[] {
  const states: RequestState[] = [];
  gw.app.getHttpServer().on('request', (req: RawWithState, res) => res.on('close', () => req.gw && states.push(req.gw)));
  return states;
}

function backendsConfig(...backends: TestBackend[]) {
  return backends.map((b) => ({ name: b.name, url: b.url, weight: 1 }));
}

/**
 * The gateway under test with the ip and route buckets out of the way, and a tenant whose key
 * may read images and whose own limits and quotas no test here reaches: these specs are about
 * the proxy behind the full pipeline, not about the limits.
 */
async function gatewayWithTenant(options: TestAppOptions = {}): Promise<{ gw: TestApp; tenant: TenantWithKey }> {
  const gw = await createTestApp({ ...options, config: { ...HIGH_RATE_LIMIT_CONFIG, ...options.config } });
  try {
    return { gw, tenant: await createTenantWithKey(gw, { scopes: ['images:read'], ...UNLIMITED }) };
  } catch (error) {
    await gw.close();
    throw error;
  }
}

/** A header-mode URL of the tenant's own `local:///<file>`, unsigned (the API key authenticates). */
function image(file: string, options = ''): string {
  return `/i/insecure${options}/plain/local:///${file}`;
}

/** fetch() of the gateway with the tenant's key in X-API-Key (headers of `init` added). */
function fetchAs(gw: TestApp, tenant: TenantWithKey, path: string, init: RequestInit = {}): Promise<Response> {
  return gw.fetch(path, { ...init, headers: { 'x-api-key': tenant.key, ...(init.headers as Record<string, string> | undefined) } });
}

/** Ports that refuse connections: servers started and stopped again. */
async function deadBackend(name: string): Promise<TestBackend> {
  const backend = await startBackend({ name });
  await backend.stop();
  return backend;
}

describe('streaming proxy /i/*', () => {
  let backend: TestBackend;
  let gw: TestApp;
  let tenant: TenantWithKey;
  let states: RequestState[];
  const get = (path: string, init?: RequestInit) => fetchAs(gw, tenant, path, init);
  const upstream = (file: string, options = '', extension?: string) => sandboxedPlainPath(tenant.tenantId, options, file, extension);

  beforeAll(async () => {
    backend = await startBackend({ name: 'main' });
    ({ gw, tenant } = await gatewayWithTenant({
      config: {
        backends: backendsConfig(backend),
        proxy: { maxRequestBodyBytes: 16 * 1024 * 1024 },
        healthCheck: { intervalSeconds: 3600 },
        // Image routes take no body: bodies stream on a configured route to the same pool.
        routes: [{ name: 'echo', path: '/echo/*', upstream: 'imgproxy', stripPrefix: '/echo', methods: ['POST', 'PUT'] }],
      },
    }));
    states = recordStates(gw);
  });
  afterAll(async () => {
    await gw.close();
    await backend.stop();
  });
  beforeEach(() => {
    backend.handler = (_req, res) => res.end(backend.name);
  });

  it('sends the options byte for byte and the source inside the tenant folder, without the query', async () => {
    const res = await rawRequest(gw.url, `${image('a%20b/c.jpg@png', '/rs:fit:300:300/g:sm/q:80')}?api_key=secret&v=2`, { headers: { 'x-api-key': tenant.key } });
    expect(res.status).toBe(200);
    expect(backend.imageRequests.at(-1)?.url).toBe(upstream('a%20b/c.jpg', '/rs:fit:300:300/g:sm/q:80', 'png'));
  });

  it('replaces the signature segment, applies imgproxy’s `%3A` repair and keeps base64 sources base64', async () => {
    // Header mode: the key authenticates, whatever stands in the signature segment never travels upstream.
    const signed = await rawRequest(gw.url, '/i/tenantSignatureXYZ/rs%3Afit%3A10%3A10/plain/local:///a.jpg', { headers: { 'x-api-key': tenant.key } });
    expect(signed.status).toBe(200);
    expect(backend.imageRequests.at(-1)?.url).toBe(upstream('a.jpg', '/rs:fit:10:10'));

    const source = Buffer.from('local:///cat.png').toString('base64url');
    const split = `${source.slice(0, 8)}/${source.slice(8)}`; // imgproxy joins split base64 segments
    const base64 = await rawRequest(gw.url, `/i/insecure/rs:fill:300:400:0/g:sm/${split}.webp`, { headers: { 'x-api-key': tenant.key } });
    expect(base64.status).toBe(200);
    const sandboxed = Buffer.from(`local:///tenants/${tenant.tenantId}/cat.png`).toString('base64url');
    expect(backend.imageRequests.at(-1)?.url).toBe(`/insecure/rs:fill:300:400:0/g:sm/${sandboxed}.webp`);
  });

  it('refuses a source escaping the tenant folder with 400 before any backend call', async () => {
    const before = backend.hits;
    for (const path of [image('a/../../other-tenant/b.jpg'), image('%2e%2e/b.jpg'), '/i/insecure/plain/local:////etc/passwd']) {
      const res = await rawRequest(gw.url, path, { headers: { 'x-api-key': tenant.key } });
      expect(res.status).toBe(400);
      expect(JSON.parse(res.body.toString()).error.code).toBe('bad_source');
    }
    expect(backend.hits).toBe(before);
  });

  it('preserves status, body and end-to-end response headers and drops hop-by-hop ones', async () => {
    backend.handler = (_req, res) => {
      res.writeHead(203, {
        'content-type': 'image/webp',
        'content-length': '5',
        'cache-control': 'public, max-age=31536000',
        etag: '"abc"',
        'last-modified': 'Wed, 21 Oct 2026 07:28:00 GMT',
        vary: 'Accept',
        'content-disposition': 'inline; filename="x.webp"',
        expires: 'Thu, 01 Dec 2027 16:00:00 GMT',
        connection: 'keep-alive, X-Upstream-Hop',
        'x-upstream-hop': 'connection-scoped',
        'proxy-authenticate': 'Basic realm="backend"',
        'x-request-id': 'backend-made-this-up',
        'x-result-width': '300',
      });
      res.end('image');
    };
    const res = await rawRequest(gw.url, image('a.jpg'), { headers: { 'x-api-key': tenant.key, 'x-request-id': 'proxy-headers-1' } });
    expect(res.status).toBe(203);
    expect(res.body.toString()).toBe('image');
    expect(res.headers).toMatchObject({
      'content-type': 'image/webp',
      'content-length': '5',
      'cache-control': 'public, max-age=31536000',
      etag: '"abc"',
      'last-modified': 'Wed, 21 Oct 2026 07:28:00 GMT',
      vary: 'Accept',
      'content-disposition': 'inline; filename="x.webp"',
      expires: 'Thu, 01 Dec 2027 16:00:00 GMT',
      'x-result-width': '300',
      'x-request-id': 'proxy-headers-1',
    });
    expect(res.headers['x-upstream-hop']).toBeUndefined();
    expect(res.headers['proxy-authenticate']).toBeUndefined();
    expect(String(res.headers.connection ?? '')).not.toMatch(/x-upstream-hop/i);
  });

  it('strips hop-by-hop headers and credentials upstream and adds forwarding and trace headers', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const res = await rawRequest(gw.url, image('a.jpg'), {
      headers: {
        connection: 'keep-alive, X-Client-Hop',
        'keep-alive': 'timeout=30',
        'x-client-hop': 'connection-scoped',
        te: 'trailers',
        upgrade: 'websocket',
        'proxy-authorization': 'Basic cHJveHk6c2VjcmV0',
        // The tenant's real key, both ways a client may present it: it authenticates, then stays here.
        'x-api-key': tenant.key,
        authorization: `Bearer ${tenant.key}`,
        cookie: 'session=customer-session',
        'x-forwarded-for': '6.6.6.6',
        'x-forwarded-host': 'forged.example',
        'x-request-id': 'proxy-headers-2',
        traceparent: `00-${traceId}-00f067aa0ba902b7-01`,
        accept: 'image/avif,image/webp',
        'x-custom': 'kept',
      },
    });
    expect(res.status).toBe(200);
    const seen = backend.imageRequests.at(-1)!.headers;
    for (const name of ['x-client-hop', 'keep-alive', 'te', 'upgrade', 'proxy-authorization', 'x-api-key', 'authorization', 'cookie']) {
      expect(seen[name]).toBeUndefined();
    }
    expect(JSON.stringify(seen)).not.toContain(tenant.key.split('_')[2]);
    expect(seen['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen['x-forwarded-proto']).toBe('http');
    expect(seen['x-forwarded-host']).toBe(new URL(gw.url).host);
    expect(seen['x-request-id']).toBe('proxy-headers-2');
    expect(seen.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    expect(seen.traceparent).not.toContain('00f067aa0ba902b7');
    expect(seen.accept).toBe('image/avif,image/webp');
    expect(seen['x-custom']).toBe('kept');
    expect(seen.host).toBe(new URL(backend.url).host);
  });

  // Without an entry to answer from, the cache passes conditional requests to the backend as they are.
  it('passes conditional requests through and the 304 back', async () => {
    backend.handler = (req, res) => {
      const etag = '"v1"';
      if (req.headers['if-none-match'] === etag || req.headers['if-modified-since'] === 'Wed, 21 Oct 2026 07:28:00 GMT') {
        res.writeHead(304, { etag, 'cache-control': 'max-age=60' });
        res.end();
        return;
      }
      res.writeHead(200, { etag, 'content-type': 'image/png' });
      res.end('full image');
    };
    const fresh = await get(image('etagged.jpg'));
    expect(fresh.status).toBe(200);
    expect(await fresh.text()).toBe('full image');
    const byEtag = await get(image('conditional.jpg'), { headers: { 'if-none-match': '"v1"' } });
    expect(byEtag.status).toBe(304);
    expect(byEtag.headers.get('x-cache-status')).toBe('MISS');
    expect(byEtag.headers.get('etag')).toBe('"v1"');
    expect(byEtag.headers.get('cache-control')).toBe('max-age=60');
    expect(await byEtag.text()).toBe('');
    expect(backend.imageRequests.at(-1)?.headers['if-none-match']).toBe('"v1"');
    const byDate = await get(image('conditional-date.jpg'), { headers: { 'if-modified-since': 'Wed, 21 Oct 2026 07:28:00 GMT' } });
    expect(byDate.status).toBe(304);
  });

  it('answers HEAD with the backend headers and no body', async () => {
    backend.handler = (req, res) => {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': '1234' });
      res.end(req.method === 'HEAD' ? undefined : Buffer.alloc(1234));
    };
    // Nothing cached for it: the HEAD itself goes to the backend.
    const res = await rawRequest(gw.url, image('head.jpg'), { method: 'HEAD', headers: { 'x-api-key': tenant.key } });
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBe('1234');
    expect(res.body.length).toBe(0);
    expect(backend.imageRequests.at(-1)).toMatchObject({ method: 'HEAD', url: upstream('head.jpg') });
  });

  it('streams a request body of several MiB to the backend and its echo back, counting both', async () => {
    backend.handler = echoHandler;
    const body = randomBytes(6 * 1024 * 1024);
    const res = await get('/echo/upload.png', { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-request-id': 'echo-6mib' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    const echoed = Buffer.from(await res.arrayBuffer());
    expect(echoed.length).toBe(body.length);
    expect(createHash('sha256').update(echoed).digest('hex')).toBe(createHash('sha256').update(body).digest('hex'));
    expect(backend.imageRequests.at(-1)).toMatchObject({ method: 'POST', url: '/upload.png' });
    await waitFor('request state', () => states.some((s) => s.requestId === 'echo-6mib'));
    const state = states.find((s) => s.requestId === 'echo-6mib')!;
    expect(state).toMatchObject({ route: 'echo', backend: 'main', bytesIn: body.length, bytesOut: body.length });
    expect(state.auth?.tenantId).toBe(tenant.tenantId);
  });

  it('streams a chunked request body without a content length', async () => {
    backend.handler = echoHandler;
    const parts = [randomBytes(300_000), randomBytes(500_000)];
    const res = await new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
      const url = new URL(gw.url);
      const req = httpRequest(
        { host: url.hostname, port: url.port, method: 'PUT', path: '/echo/chunked.png', headers: { 'content-type': 'image/png', 'x-api-key': tenant.key }, agent: false },
        (r) => {
          const chunks: Buffer[] = [];
          r.on('data', (c: Buffer) => chunks.push(c));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, body: Buffer.concat(chunks) }));
        },
      );
      req.on('error', reject);
      req.write(parts[0]);
      setTimeout(() => req.end(parts[1]), 20);
    });
    expect(res.status).toBe(200);
    expect(res.body.equals(Buffer.concat(parts))).toBe(true);
    expect(backend.imageRequests.at(-1)?.headers['transfer-encoding']).toBe('chunked');
  });

  it('streams a response of tens of MiB, counting the bytes out', async () => {
    const size = 48 * 1024 * 1024;
    backend.handler = largeBodyHandler(size);
    const res = await get(image('large.png'), { headers: { 'x-request-id': 'large-48mib' } });
    expect(res.headers.get('content-length')).toBe(String(size));
    let received = 0;
    for await (const chunk of res.body!) received += (chunk as Uint8Array).length;
    expect(received).toBe(size);
    await waitFor('request state', () => states.some((s) => s.requestId === 'large-48mib'));
    expect(states.find((s) => s.requestId === 'large-48mib')).toMatchObject({ bytesIn: 0, bytesOut: size });
  });

  it('refuses a request body above proxy.maxRequestBodyBytes with 413', async () => {
    const res = await get('/echo/big.png', { method: 'POST', body: Buffer.alloc(17 * 1024 * 1024), headers: { 'content-type': 'image/png' } });
    expect(res.status).toBe(413);
    expect((await res.json()).error.code).toBe('payload_too_large');
  });

  it('answers methods the image routes do not serve with 405 and Allow, without a backend call', async () => {
    const before = backend.hits;
    for (const method of ['POST', 'PUT', 'DELETE', 'TRACE']) {
      const res = await rawRequest(gw.url, image('a.jpg'), { method, headers: { 'x-api-key': tenant.key } });
      expect(res.status).toBe(405);
      expect(res.headers.allow).toBe('GET, HEAD');
      expect(JSON.parse(res.body.toString()).error.code).toBe('method_not_allowed');
    }
    expect(backend.hits).toBe(before);
  });

  it('passes the backend error statuses and bodies through', async () => {
    backend.handler = (_req, res) => {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('Not found');
    };
    const res = await get(image('missing.jpg'));
    expect(res.status).toBe(404);
    expect(await res.text()).toBe('Not found');
  });

  it('keeps JSON parsing and 415s for the admin API', async () => {
    const created = await gw.admin('/admin/v1/backends', { method: 'POST', json: { name: 'json-check', url: 'http://127.0.0.1:9', weight: 0 } });
    expect(created.status).toBe(201);
    const wrongType = await gw.admin('/admin/v1/backends', { method: 'POST', body: 'x', headers: { 'content-type': 'image/png' } });
    expect(wrongType.status).toBe(415);
  });
});

describe('backend URL with a path prefix', () => {
  it('sends requests under the prefix', async () => {
    const backend = await startBackend({ name: 'prefixed' });
    const { gw, tenant } = await gatewayWithTenant({
      config: { backends: [{ name: 'prefixed', url: `${backend.url}/imgproxy/`, weight: 1 }], healthCheck: { intervalSeconds: 3600 } },
    });
    try {
      expect((await fetchAs(gw, tenant, image('a.jpg'))).status).toBe(200);
      // (the active health check goes under the prefix too: /imgproxy/health)
      expect(backend.imageRequests.map((r) => r.url)).toContain(`/imgproxy${sandboxedPlainPath(tenant.tenantId, '', 'a.jpg')}`);
    } finally {
      await gw.close();
      await backend.stop();
    }
  });
});

describe('client abort', () => {
  let backend: TestBackend;
  let gw: TestApp;
  let tenant: TenantWithKey;

  beforeAll(async () => {
    backend = await startBackend({ name: 'held' });
    // The proxy's own cancel: with the cache on, a fetch that may be stored goes on for the cache
    // (docs/cache.md; test/proxy-cache.e2e-spec.ts).
    ({ gw, tenant } = await gatewayWithTenant({
      config: { backends: backendsConfig(backend), healthCheck: { intervalSeconds: 3600 }, cache: { enabled: false } },
    }));
  });
  afterAll(async () => {
    await gw.close();
    await backend.stop();
  });

  // node:http with its own connection: the abort is a closed socket, exactly what a browser does.
  it('cancels the upstream request when the client goes away before the response', async () => {
    backend.handler = () => undefined; // never answers
    const upstreamUrl = sandboxedPlainPath(tenant.tenantId, '', 'before-headers.jpg');
    const req = httpRequest(`${gw.url}${image('before-headers.jpg')}`, { agent: false, headers: { 'x-api-key': tenant.key } });
    req.on('error', () => undefined);
    req.end();
    await waitFor('the request to reach the backend', () => backend.imageRequests.some((r) => r.url === upstreamUrl));
    req.destroy();
    await waitFor('the backend to see the request closed', () => backend.abandoned.some((r) => r.url === upstreamUrl));
  });

  it('cancels the upstream request when the client goes away mid-body', async () => {
    backend.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write(Buffer.alloc(16 * 1024));
    };
    const upstreamUrl = sandboxedPlainPath(tenant.tenantId, '', 'mid-body.jpg');
    const req = httpRequest(`${gw.url}${image('mid-body.jpg')}`, { agent: false, headers: { 'x-api-key': tenant.key } });
    req.on('error', () => undefined);
    const res = await new Promise<import('node:http').IncomingMessage>((resolve) => req.on('response', resolve).end());
    expect(res.statusCode).toBe(200);
    await new Promise((resolve) => res.once('data', resolve));
    req.destroy();
    await waitFor('the backend to see the request closed', () => backend.abandoned.some((r) => r.url === upstreamUrl));
  });
});

describe('timeouts', () => {
  let backend: TestBackend;
  let gw: TestApp;
  let tenant: TenantWithKey;

  beforeAll(async () => {
    backend = await startBackend({ name: 'slow' });
    ({ gw, tenant } = await gatewayWithTenant({
      config: {
        backends: backendsConfig(backend),
        healthCheck: { intervalSeconds: 3600 },
        proxy: { headersTimeoutMs: 300, bodyIdleTimeoutMs: 300, circuitBreaker: { failureThreshold: 100 } },
      },
    }));
  });
  afterAll(async () => {
    await gw.close();
    await backend.stop();
  });

  it('answers 504 gateway_timeout when no backend sends headers in time', async () => {
    backend.handler = () => undefined;
    const res = await fetchAs(gw, tenant, image('slow-headers.jpg'), { headers: { 'x-request-id': 'timeout-504' } });
    expect(res.status).toBe(504);
    expect((await res.json()).error).toMatchObject({ code: 'gateway_timeout', requestId: 'timeout-504' });
  });

  it('still answers a clean 504 when the backend sent headers but no body byte in time', async () => {
    backend.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': '1000', etag: '"never"' });
      res.flushHeaders();
    };
    const res = await fetchAs(gw, tenant, image('slow-first-byte.jpg'));
    expect(res.status).toBe(504);
    expect(res.headers.get('etag')).toBeNull();
    expect((await res.json()).error.code).toBe('gateway_timeout');
  });

  it('cuts the connection when the body stalls after the headers were sent', async () => {
    backend.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(1024 * 1024) });
      res.write(Buffer.alloc(64 * 1024));
    };
    const res = await fetchAs(gw, tenant, image('slow-body.jpg'));
    expect(res.status).toBe(200);
    await expect(res.arrayBuffer()).rejects.toThrow();
    const upstreamUrl = sandboxedPlainPath(tenant.tenantId, '', 'slow-body.jpg');
    await waitFor('the backend to see the request closed', () => backend.abandoned.some((r) => r.url === upstreamUrl));
  });
});

describe('failover and passive health', () => {
  it('answers 503 no_healthy_backend when no backend is configured', async () => {
    const { gw, tenant } = await gatewayWithTenant();
    try {
      const res = await fetchAs(gw, tenant, image('a.jpg'));
      expect(res.status).toBe(503);
      expect((await res.json()).error.code).toBe('no_healthy_backend');
    } finally {
      await gw.close();
    }
  });

  it('answers 502 bad_gateway once every backend refused the connection', async () => {
    const dead = [await deadBackend('dead-1'), await deadBackend('dead-2'), await deadBackend('dead-3')];
    const { gw, tenant } = await gatewayWithTenant({ config: { backends: backendsConfig(...dead), healthCheck: { intervalSeconds: 3600 } } });
    try {
      const res = await fetchAs(gw, tenant, image('a.jpg'));
      expect(res.status).toBe(502);
      expect((await res.json()).error.code).toBe('bad_gateway');
    } finally {
      await gw.close();
    }
  });

  it('fails over, invisibly to the client, from a backend that died between health checks', async () => {
    const a = await startBackend({ name: 'dies' });
    const b = await startBackend({ name: 'survives' });
    const { gw, tenant } = await gatewayWithTenant({ config: { backends: backendsConfig(a, b), healthCheck: { intervalSeconds: 3600 } } });
    try {
      for (let i = 0; i < 4; i++) expect((await fetchAs(gw, tenant, image(`warm-${i}.jpg`))).status).toBe(200);
      expect(a.hits).toBeGreaterThan(0);
      await a.stop();
      const bodies: string[] = [];
      for (let i = 0; i < 20; i++) {
        const res = await fetchAs(gw, tenant, image(`after-${i}.jpg`));
        expect(res.status).toBe(200);
        bodies.push(await res.text());
      }
      expect(new Set(bodies)).toEqual(new Set(['survives']));
      expect(b.imageRequests.at(-1)?.url).toBe(sandboxedPlainPath(tenant.tenantId, '', 'after-19.jpg'));
    } finally {
      await gw.close();
      await b.stop();
    }
  });

  it('fails over from a backend that does not send headers in time', async () => {
    const stuck = await startBackend({ name: 'stuck', handler: () => undefined });
    const ok = await startBackend({ name: 'ok' });
    const { gw, tenant } = await gatewayWithTenant({
      config: { backends: backendsConfig(stuck, ok), healthCheck: { intervalSeconds: 3600 }, proxy: { headersTimeoutMs: 300 } },
    });
    try {
      for (let i = 0; i < 4; i++) {
        const res = await fetchAs(gw, tenant, image(`t-${i}.jpg`));
        expect(res.status).toBe(200);
        expect(await res.text()).toBe('ok');
      }
      expect(stuck.hits).toBeGreaterThan(0);
      // The retry sends the same rewritten URL to the other backend.
      expect(stuck.imageRequests.map((r) => r.url).every((url) => ok.imageRequests.some((r) => r.url === url))).toBe(true);
    } finally {
      await gw.close();
      await stuck.stop();
      await ok.stop();
    }
  });

  it('shifts load away from a backend answering 429, and answers 503 with Retry-After when none is left', async () => {
    const busy = await startBackend({
      name: 'busy',
      handler: (_req, res) => {
        res.writeHead(429, { 'retry-after': '7' });
        res.end('queue full');
      },
    });
    const calm = await startBackend({ name: 'calm' });
    const { gw, tenant } = await gatewayWithTenant({ config: { backends: backendsConfig(busy, calm), healthCheck: { intervalSeconds: 3600 } } });
    try {
      for (let i = 0; i < 6; i++) {
        const res = await fetchAs(gw, tenant, image(`q-${i}.jpg`));
        expect(res.status).toBe(200);
        expect(await res.text()).toBe('calm');
      }
      // Under back-pressure the busy backend is passed over while another can serve.
      expect(busy.hits).toBe(1);
      await calm.stop();
      const res = await fetchAs(gw, tenant, image('q-last.jpg'));
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('7');
      expect((await res.json()).error).toMatchObject({ code: 'unavailable', retryAfter: 7 });
    } finally {
      await gw.close();
      await busy.stop();
    }
  });

  it('passes 5xx answers through without ejecting the backend that gave them', async () => {
    const failing = await startBackend({
      name: 'failing',
      handler: (_req, res) => {
        res.statusCode = 500;
        res.end('boom');
      },
    });
    const fine = await startBackend({ name: 'fine' });
    const { gw, tenant } = await gatewayWithTenant({
      config: { backends: backendsConfig(failing, fine), healthCheck: { intervalSeconds: 3600 }, proxy: { circuitBreaker: { failureThreshold: 2, cooldownSeconds: 3600 } } },
    });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 10; i++) statuses.push((await fetchAs(gw, tenant, image(`c-${i}.jpg`))).status);
      // An HTTP answer is the backend working (docs/proxy-and-backends.md): round robin goes on.
      expect(statuses.filter((s) => s === 500)).toHaveLength(5);
      expect(failing.hits).toBe(5);
      const report = await (await gw.fetch('/health/backends')).json();
      expect(report.backends.find((b: { name: string }) => b.name === 'failing')).toMatchObject({ circuit: 'closed', available: true, healthy: true });
    } finally {
      await gw.close();
      await failing.stop();
      await fine.stop();
    }
  });
});
