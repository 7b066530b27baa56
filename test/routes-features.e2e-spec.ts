import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { TestBackend, echoHandler, largeBodyHandler, rawRequest, startBackend, waitFor } from './support/http-backends';
import { metricValue } from './support/metrics';
import { chunkedRequest, errorOf } from './support/routes';
import { HIGH_RATE_LIMIT_CONFIG, TenantWithKey, UNLIMITED, createTenantWithKey } from './support/tenants';
import { TestApp, createTestApp } from './support/test-app';

jest.setTimeout(60_000);

const ORIGIN = 'https://app.example.com';

/**
 * The route features of docs/routes.md on configured routes, seen from outside: the real gateway
 * (PostgreSQL, Redis) in front of HTTP backends of the test's own, every answer read off the wire.
 */
describe('configured routes (e2e)', () => {
  let app: TestBackend;
  let imgproxy: TestBackend;
  let gw: TestApp;
  let tenant: TenantWithKey;
  const key = () => ({ 'x-api-key': tenant.key });

  beforeAll(async () => {
    app = await startBackend({ name: 'app1' });
    imgproxy = await startBackend({ name: 'imgproxy1' });
    gw = await createTestApp({
      config: {
        ...HIGH_RATE_LIMIT_CONFIG,
        backends: [{ name: imgproxy.name, url: imgproxy.url, weight: 1 }],
        healthCheck: { intervalSeconds: 3600 },
        imageRoutes: { header: { cors: { origins: [ORIGIN] }, headers: { response: { set: { 'X-Image-Route': 'header' } } } } },
        upstreams: { app: { backends: [{ name: app.name, url: app.url }] } },
        routes: [
          {
            name: 'users-api',
            path: '/api/users/*',
            methods: ['GET', 'POST'],
            upstream: 'app',
            stripPrefix: '/api',
            auth: 'api-key',
            cors: { origins: [ORIGIN], methods: ['GET', 'POST'], headers: ['Content-Type', 'X-API-Key'], maxAgeSeconds: 600 },
            headers: {
              request: { set: { 'X-Gateway': 'imgproxy-gateway' }, remove: ['X-Internal'] },
              response: { set: { 'X-Frame-Options': 'DENY' }, remove: ['Server'] },
            },
          },
          { name: 'items', path: '/items/:id', methods: ['GET', 'DELETE'], upstream: 'app', auth: 'none' },
          { name: 'open', path: '/open/*', upstream: 'app', auth: 'none', maxBodyBytes: 16 * 1024 * 1024, cors: { origins: ['*'] } },
          { name: 'upload', path: '/upload/*', methods: ['POST', 'PUT'], upstream: 'app', auth: 'api-key', stripPrefix: '/upload', maxBodyBytes: 64 * 1024 },
          { name: 'slow', path: '/slow/*', upstream: 'app', auth: 'none', timeoutSeconds: 1, retries: 0 },
          { name: 'split-read', path: '/split/*', methods: ['GET'], upstream: 'app', auth: 'none' },
          { name: 'split-write', path: '/split/*', methods: ['POST'], upstream: 'imgproxy', auth: 'none' },
        ],
      },
    });
    tenant = await createTenantWithKey(gw, { scopes: ['images:read'], ...UNLIMITED });
  });

  afterAll(async () => {
    await gw?.close();
    await Promise.all([app?.stop(), imgproxy?.stop()]);
  });

  beforeEach(() => {
    app.handler = (_req, res) => res.end(app.name);
  });

  describe('methods', () => {
    it('answers a method the route does not list with 405 method_not_allowed and Allow, without a backend call', async () => {
      const before = app.hits;
      for (const method of ['PUT', 'PATCH', 'DELETE']) {
        const res = await rawRequest(gw.url, '/api/users/7', { method, headers: key() });
        expect([method, res.status, res.headers.allow]).toEqual([method, 405, 'GET, HEAD, POST, OPTIONS']);
        expect(errorOf(res)).toMatchObject({ code: 'method_not_allowed', allow: ['GET', 'HEAD', 'POST', 'OPTIONS'] });
        expect(res.headers['x-request-id']).toBe(errorOf(res).requestId);
      }
      const items = await rawRequest(gw.url, '/items/7', { method: 'POST' });
      expect([items.status, items.headers.allow]).toEqual([405, 'GET, HEAD, DELETE']);
      expect(app.hits).toBe(before);
    });

    it('implies HEAD where GET is allowed, and passes it on as HEAD', async () => {
      const res = await rawRequest(gw.url, '/items/7', { method: 'HEAD' });
      expect(res.status).toBe(200);
      expect(res.body.length).toBe(0);
      expect(app.requests.at(-1)).toMatchObject({ method: 'HEAD', url: '/items/7' });
    });

    it('never proxies TRACE or CONNECT, on configured and image routes alike', async () => {
      const before = app.hits + imgproxy.hits;
      for (const path of ['/items/7', '/open/x', '/i/insecure/plain/local:///a.jpg']) {
        const res = await rawRequest(gw.url, path, { method: 'TRACE', headers: key() });
        expect([path, res.status, errorOf(res).code]).toEqual([path, 405, 'method_not_allowed']);
        expect(res.headers.allow).not.toMatch(/TRACE/);
      }
      const connectAnswer = await new Promise<string>((resolve, reject) => {
        const socket = connect(Number(new URL(gw.url).port), '127.0.0.1', () => socket.write(`CONNECT ${new URL(app.url).host} HTTP/1.1\r\nHost: ${new URL(app.url).host}\r\n\r\n`));
        let text = '';
        socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
        socket.on('close', () => resolve(text));
        socket.on('error', reject);
      });
      expect(connectAnswer).toMatch(/^HTTP\/1\.1 405 /);
      expect(connectAnswer).toContain('"code":"method_not_allowed"');
      expect(app.hits + imgproxy.hits).toBe(before);
    });

    it('serves only GET and HEAD on the image routes (and OPTIONS for CORS where it is on)', async () => {
      for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
        const signed = await rawRequest(gw.url, `/t/${tenant.keyId}/sig/plain/local:///a.jpg`, { method });
        expect([method, signed.status, signed.headers.allow]).toEqual([method, 405, 'GET, HEAD']);
        const res = await rawRequest(gw.url, '/i/insecure/plain/local:///a.jpg', { method, headers: key() });
        expect([method, res.status, res.headers.allow]).toEqual([method, 405, 'GET, HEAD, OPTIONS']);
      }
      const head = await rawRequest(gw.url, '/i/insecure/plain/local:///a.jpg', { method: 'HEAD', headers: key() });
      expect(head.status).toBe(200);
      expect(imgproxy.requests.at(-1)?.method).toBe('HEAD');
    });

    it('sends one path to different routes by method', async () => {
      const read = await rawRequest(gw.url, '/split/x');
      const write = await rawRequest(gw.url, '/split/x', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
      expect([read.status, read.body.toString(), write.status, write.body.toString()]).toEqual([200, 'app1', 200, 'imgproxy1']);
      const neither = await rawRequest(gw.url, '/split/x', { method: 'DELETE' });
      expect([neither.status, neither.headers.allow]).toEqual([405, 'GET, HEAD, POST']);
    });

    it('answers 404 not_found for a path no route matches', async () => {
      const res = await rawRequest(gw.url, '/nowhere/at/all');
      expect([res.status, errorOf(res).code]).toEqual([404, 'not_found']);
    });
  });

  describe('stripPrefix and the tenant header', () => {
    it('removes the prefix, keeping the rest of the path and the query as sent', async () => {
      const res = await rawRequest(gw.url, '/api/users/7/photos%20old?sort=desc&x=%2F', { headers: key() });
      expect(res.status).toBe(200);
      expect(app.requests.at(-1)?.url).toBe('/users/7/photos%20old?sort=desc&x=%2F');
    });

    it('never sends upstream a path whose prefix was percent-encoded, stripped or not', async () => {
      const before = app.hits;
      for (const path of ['/%61pi/users/7', '/%61%70%69/users/7', '/a%70i/users/7?x=1']) {
        const res = await rawRequest(gw.url, path, { headers: key() });
        expect([path, res.status]).toEqual([path, 404]);
        expect(errorOf(res).code).toBe('not_found');
      }
      expect(app.hits).toBe(before);
    });

    it('tells the upstream of an authenticated route who the tenant is, and never takes that header from a client', async () => {
      const forged = '00000000-0000-4000-8000-000000000000';
      const res = await rawRequest(gw.url, '/api/users/me', { headers: { ...key(), 'x-gateway-tenant': forged } });
      expect(res.status).toBe(200);
      expect(app.requests.at(-1)?.headers['x-gateway-tenant']).toBe(tenant.tenantId);

      // An open route has no tenant: a client's value is dropped, not passed on.
      const open = await rawRequest(gw.url, '/open/me', { headers: { 'x-gateway-tenant': forged } });
      expect(open.status).toBe(200);
      expect(app.requests.at(-1)?.headers['x-gateway-tenant']).toBeUndefined();
    });
  });

  describe('auth', () => {
    it('refuses an api-key route without a key (401 with the challenge), and passes with one, the key not forwarded', async () => {
      const before = app.hits;
      const missing = await rawRequest(gw.url, '/api/users/7');
      expect([missing.status, missing.headers['www-authenticate'], errorOf(missing).code]).toEqual([401, 'Bearer realm="imgproxy-gateway"', 'unauthorized']);
      const wrong = await rawRequest(gw.url, '/api/users/7', { headers: { 'x-api-key': `${tenant.key.slice(0, -4)}xxxx` } });
      expect(wrong.status).toBe(401);
      expect(app.hits).toBe(before);

      const ok = await rawRequest(gw.url, '/api/users/7', { headers: { authorization: `Bearer ${tenant.key}` } });
      expect(ok.status).toBe(200);
      const seen = app.requests.at(-1)!.headers;
      expect(seen.authorization).toBeUndefined();
      expect(seen['x-api-key']).toBeUndefined();
    });

    it('lets anybody through an auth: none route, passing the credentials it did not consume', async () => {
      const res = await rawRequest(gw.url, '/open/x', { headers: { authorization: 'Bearer app-session', cookie: 'sid=1' } });
      expect(res.status).toBe(200);
      expect(app.requests.at(-1)?.headers).toMatchObject({ authorization: 'Bearer app-session', cookie: 'sid=1' });
    });
  });

  describe('header rules', () => {
    it('sets and removes request headers upstream and response headers downstream', async () => {
      app.handler = (_req, res) => {
        res.setHeader('server', 'app/1.2.3');
        res.setHeader('x-frame-options', 'SAMEORIGIN');
        res.setHeader('x-app', 'kept');
        res.end('ok');
      };
      const res = await rawRequest(gw.url, '/api/users/7', { headers: { ...key(), 'x-internal': 'secret', 'x-gateway': 'forged', 'x-other': 'kept' } });
      expect(res.status).toBe(200);
      const seen = app.requests.at(-1)!.headers;
      expect(seen['x-internal']).toBeUndefined();
      expect(seen['x-gateway']).toBe('imgproxy-gateway');
      expect(seen['x-other']).toBe('kept');
      expect(res.headers.server).toBeUndefined();
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.headers['x-app']).toBe('kept');
    });

    it('leaves the headers of a route without rules alone', async () => {
      app.handler = (_req, res) => {
        res.setHeader('server', 'app/1.2.3');
        res.end('ok');
      };
      const res = await rawRequest(gw.url, '/open/x', { headers: { 'x-internal': 'visible' } });
      expect(res.headers.server).toBe('app/1.2.3');
      expect(app.requests.at(-1)?.headers['x-internal']).toBe('visible');
    });
  });

  describe('cors', () => {
    it('answers a preflight itself, before authentication, with 204 and the allow headers', async () => {
      const before = app.hits;
      const res = await rawRequest(gw.url, '/api/users/7', {
        method: 'OPTIONS',
        headers: { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, x-api-key' },
      });
      expect(res.status).toBe(204);
      expect(res.headers).toMatchObject({
        'access-control-allow-origin': ORIGIN,
        'access-control-allow-methods': 'GET, POST',
        'access-control-allow-headers': 'Content-Type, X-API-Key',
        'access-control-max-age': '600',
      });
      expect(String(res.headers.vary)).toMatch(/Origin/);
      expect(res.headers['x-request-id']).toBeDefined();
      expect(app.hits).toBe(before);
    });

    it('gives a disallowed origin no allow header, on the preflight and on the answer', async () => {
      const preflight = await rawRequest(gw.url, '/api/users/7', { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' } });
      expect(preflight.status).toBe(204);
      expect(Object.keys(preflight.headers).filter((name) => name.startsWith('access-control-allow'))).toEqual([]);
      const actual = await rawRequest(gw.url, '/api/users/7', { headers: { ...key(), origin: 'https://evil.example' } });
      expect(actual.status).toBe(200);
      expect(actual.headers['access-control-allow-origin']).toBeUndefined();
      // A method the policy does not allow gets no allow header either.
      const method = await rawRequest(gw.url, '/api/users/7', { method: 'OPTIONS', headers: { origin: ORIGIN, 'access-control-request-method': 'DELETE' } });
      expect(method.headers['access-control-allow-origin']).toBeUndefined();
    });

    it('puts Access-Control-Allow-Origin on actual answers and on refusals, merging Vary: Origin', async () => {
      app.handler = (_req, res) => {
        res.setHeader('vary', 'Accept-Encoding');
        res.end('ok');
      };
      const ok = await rawRequest(gw.url, '/api/users/7', { headers: { ...key(), origin: ORIGIN } });
      expect(ok.status).toBe(200);
      expect(ok.headers['access-control-allow-origin']).toBe(ORIGIN);
      expect(ok.headers.vary).toBe('Accept-Encoding, Origin');

      const refused = await rawRequest(gw.url, '/api/users/7', { headers: { origin: ORIGIN } });
      expect(refused.status).toBe(401);
      expect(refused.headers['access-control-allow-origin']).toBe(ORIGIN);

      // `origins: ["*"]` answers `*` (no credentials).
      const any = await rawRequest(gw.url, '/open/x', { headers: { origin: 'https://anyone.example' } });
      expect(any.headers['access-control-allow-origin']).toBe('*');
    });

    it('says Vary: Origin on a CORS route’s answers even to a request without Origin, so a shared cache keeps them apart', async () => {
      app.handler = (_req, res) => {
        res.setHeader('vary', 'Accept');
        res.end('ok');
      };
      const plain = await rawRequest(gw.url, '/api/users/7', { headers: key() });
      expect(plain.status).toBe(200);
      expect(plain.headers['access-control-allow-origin']).toBeUndefined();
      expect(plain.headers.vary).toBe('Accept, Origin');
      // A route without CORS leaves Vary alone.
      const other = await rawRequest(gw.url, '/items/7');
      expect(other.headers.vary).toBe('Accept');
    });

    it('takes the same CORS and header rules on the image routes', async () => {
      const path = '/i/insecure/plain/local:///a.jpg';
      const preflight = await rawRequest(gw.url, path, { method: 'OPTIONS', headers: { origin: ORIGIN, 'access-control-request-method': 'GET', 'access-control-request-headers': 'x-api-key' } });
      expect([preflight.status, preflight.headers['access-control-allow-origin'], preflight.headers['access-control-allow-methods']]).toEqual([204, ORIGIN, 'GET, HEAD']);
      const image = await rawRequest(gw.url, path, { headers: { ...key(), origin: ORIGIN } });
      expect([image.status, image.headers['access-control-allow-origin'], image.headers['x-image-route']]).toEqual([200, ORIGIN, 'header']);
      // The signed route has rules of its own (none here).
      const signed = await rawRequest(gw.url, `/t/${tenant.keyId}/sig/plain/local:///a.jpg`, { method: 'OPTIONS', headers: { origin: ORIGIN, 'access-control-request-method': 'GET' } });
      expect(signed.status).toBe(405);
    });

    it('answers an OPTIONS that is no preflight with 405 on a route that does not list OPTIONS', async () => {
      const res = await rawRequest(gw.url, '/api/users/7', { method: 'OPTIONS', headers: key() });
      expect(res.status).toBe(405);
      expect(res.headers.allow).toBe('GET, HEAD, POST, OPTIONS');
    });
  });

  describe('bodies', () => {
    it('streams a large body to the upstream and its echo back', async () => {
      app.handler = echoHandler;
      const body = randomBytes(8 * 1024 * 1024);
      const res = await gw.fetch('/open/echo', { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
      expect(res.status).toBe(200);
      const echoed = Buffer.from(await res.arrayBuffer());
      expect(createHash('sha256').update(echoed).digest('hex')).toBe(createHash('sha256').update(body).digest('hex'));
    });

    it('streams a response far larger than any buffer', async () => {
      const size = 24 * 1024 * 1024;
      app.handler = largeBodyHandler(size);
      const res = await gw.fetch('/open/large');
      let received = 0;
      for await (const chunk of res.body!) received += (chunk as Uint8Array).length;
      expect(received).toBe(size);
    });

    it('refuses a declared Content-Length above maxBodyBytes with 413 before the upstream is asked', async () => {
      const before = app.hits;
      const res = await rawRequest(gw.url, '/upload/a', { method: 'POST', headers: { ...key(), 'content-type': 'application/octet-stream' }, body: Buffer.alloc(64 * 1024 + 1) });
      expect([res.status, errorOf(res).code]).toEqual([413, 'payload_too_large']);
      expect(app.hits).toBe(before);
      const fits = await rawRequest(gw.url, '/upload/a', { method: 'POST', headers: { ...key(), 'content-type': 'application/octet-stream' }, body: Buffer.alloc(64 * 1024) });
      expect(fits.status).toBe(200);
    });

    it('cuts a chunked body that passes maxBodyBytes mid-stream: 413 to the client, the upstream sees the stream end early', async () => {
      const received: number[] = [];
      const upstreamEnded: string[] = [];
      app.handler = (req, res) => {
        let bytes = 0;
        req.on('data', (chunk: Buffer) => (bytes += chunk.length));
        req.on('end', () => {
          upstreamEnded.push('complete');
          received.push(bytes);
          res.end('ok');
        });
        req.on('error', () => {
          upstreamEnded.push('aborted');
          received.push(bytes);
        });
        req.on('close', () => {
          if (!req.complete && upstreamEnded.length === 0) {
            upstreamEnded.push('aborted');
            received.push(bytes);
          }
        });
      };
      const chunks = Array.from({ length: 12 }, () => randomBytes(16 * 1024)); // 192 KiB against 64 KiB
      const res = await chunkedRequest(gw.url, '/upload/stream', { headers: key(), chunks });
      expect(res.status).toBe(413);
      expect(errorOf(res).code).toBe('payload_too_large');
      await waitFor('the upstream to see the stream end', () => upstreamEnded.length > 0);
      expect(upstreamEnded).toEqual(['aborted']);
      expect(received[0]).toBeLessThanOrEqual(64 * 1024);
    });
  });

  describe('timeouts and retries', () => {
    it('answers 504 gateway_timeout when the upstream is slower than timeoutSeconds', async () => {
      app.handler = (_req, res) => {
        setTimeout(() => res.end('late'), 2_500).unref();
      };
      const res = await rawRequest(gw.url, '/slow/x');
      expect([res.status, errorOf(res).code]).toEqual([504, 'gateway_timeout']);
    });
  });
});

describe('configured route retries (e2e)', () => {
  let dead: TestBackend;
  let live: TestBackend;
  let gw: TestApp;
  const failuresOfDead = () => metricValue(gw, 'gateway_upstream_failures_total', 'backend="dead",kind="connect"');

  beforeAll(async () => {
    // A first backend that refuses connections: started, then stopped, so its port is closed.
    dead = await startBackend({ name: 'dead' });
    await dead.stop();
    live = await startBackend({ name: 'live' });
    // Smooth round robin on a fresh upstream picks the heavier backend first: every route's
    // first attempt goes to the dead one.
    const pair = () => ({
      balancer: 'weighted-round-robin',
      backends: [{ name: 'dead', url: dead.url, weight: 100 }, { name: 'live', url: live.url, weight: 1 }],
      circuitBreaker: { failureThreshold: 1000 },
    });
    gw = await createTestApp({
      config: {
        ...HIGH_RATE_LIMIT_CONFIG,
        proxy: { retryBackoffMs: 1, retryBackoffCapMs: 2 },
        upstreams: { pairA: pair(), pairB: pair(), pairC: pair() },
        routes: [
          { name: 'retried', path: '/retried/*', upstream: 'pairA', auth: 'none', retries: 2 },
          { name: 'unretried', path: '/unretried/*', upstream: 'pairB', auth: 'none', retries: 0 },
          { name: 'posted', path: '/posted/*', upstream: 'pairC', auth: 'none', retries: 2 },
        ],
      },
    });
  });

  afterAll(async () => {
    await gw?.close();
    await live?.stop();
  });

  it('retries an idempotent request on another backend after a refused connection', async () => {
    live.handler = (req, res) => res.end(`${req.method} ok`);
    const before = await failuresOfDead();
    const res = await rawRequest(gw.url, '/retried/x');
    expect([res.status, res.body.toString()]).toEqual([200, 'GET ok']);
    expect(await failuresOfDead()).toBe(before + 1);

    const unretried = await rawRequest(gw.url, '/unretried/x');
    expect([unretried.status, errorOf(unretried).code]).toEqual([502, 'bad_gateway']);
    expect(await failuresOfDead()).toBe(before + 2);
  });

  it('never retries a POST with a body: it went to one backend, and the answer says it failed', async () => {
    live.handler = echoHandler;
    const before = live.hits;
    const failures = await failuresOfDead();
    const res = await rawRequest(gw.url, '/posted/x', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'once only' });
    expect([res.status, errorOf(res).code]).toEqual([502, 'bad_gateway']);
    expect(live.hits).toBe(before);
    expect(await failuresOfDead()).toBe(failures + 1);
  });
});
