import { connect } from 'node:net';
import { TEST_ADMIN_TOKEN, TestApp, createTestApp } from './support/test-app';
import { rawRequest } from './support/http-backends';

/**
 * Every answer the gateway writes has the catalogue's shape and a request id, whatever refused
 * the request: the router (a malformed escape), Node's HTTP parser (garbage, oversized headers,
 * an unknown method), a method no route serves, the JSON body parser (docs/architecture.md, Errors).
 */

const KEY_ID = 'AbCdEfGh1234';
const SIGNATURE = 'c2lnbmF0dXJlLXRoYXQtbXVzdC1ub3QtYmUtZWNob2Vk';

/** Writes raw bytes on a fresh connection; resolves with everything received until the server closes it. */
function rawExchange(url: string, bytes: string): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), '127.0.0.1');
    let received = '';
    const timer = setTimeout(() => socket.destroy(), 3_000);
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
    socket.write(bytes);
  });
}

/** Status line, lower-cased headers and the JSON body of a raw HTTP/1.1 answer. */
function parseRaw(answer: string): { status: number; headers: Record<string, string>; body: { error: Record<string, unknown> } } {
  const [head, ...rest] = answer.split('\r\n\r\n');
  const [statusLine, ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body: JSON.parse(rest.join('\r\n')) };
}

function expectCatalogueShape(body: { error: Record<string, unknown> }, code: string, requestId?: string): void {
  expect(body.error).toMatchObject({ code, message: expect.any(String), requestId: requestId ?? expect.stringMatching(/^[0-9a-f-]{36}$/) });
}

describe('errors outside the routes, in the catalogue shape', () => {
  let gw: TestApp;
  const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };

  beforeAll(async () => {
    gw = await createTestApp({ config: { rateLimit: { ip: { perMinute: 100_000 } } } });
  });
  afterAll(async () => {
    await gw.close();
  });

  it('answers a malformed escape in the path with 400 bad_url and the request id, never echoing the path', async () => {
    for (const path of [`/t/${KEY_ID}/${SIGNATURE}/%E9/plain/a.jpg`, `/i/${SIGNATURE}/%ZZ/x`]) {
      const res = await rawRequest(gw.url, path, { headers: { 'x-request-id': 'bad-escape' } });
      expect(res.status).toBe(400);
      expect(res.headers['x-request-id']).toBe('bad-escape');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      const text = res.body.toString();
      expectCatalogueShape(JSON.parse(text), 'bad_url', 'bad-escape');
      expect(text).not.toContain(SIGNATURE);
      expect(text).not.toContain(KEY_ID);
      expect(text).not.toContain('%');
    }
  });

  it('never echoes the path of an unknown route either', async () => {
    const res = await rawRequest(gw.url, `/nothing/here/${SIGNATURE}`);
    expect(res.status).toBe(404);
    expect(res.body.toString()).not.toContain(SIGNATURE);
    expectCatalogueShape(JSON.parse(res.body.toString()), 'not_found', res.headers['x-request-id'] as string);
  });

  it('answers what the HTTP parser refuses in the same shape: 400, 431, 405 for an unknown method', async () => {
    const garbage = parseRaw(await rawExchange(gw.url, 'GARBAGE\r\n\r\n'));
    expect(garbage.status).toBe(400);
    expectCatalogueShape(garbage.body, 'validation_failed', garbage.headers['x-request-id']);

    const big = parseRaw(await rawExchange(gw.url, `GET /health/live HTTP/1.1\r\nHost: gw\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`));
    expect(big.status).toBe(431);
    expectCatalogueShape(big.body, 'headers_too_large', big.headers['x-request-id']);

    const unknown = parseRaw(await rawExchange(gw.url, 'FOO /admin/v1/tenants HTTP/1.1\r\nHost: gw\r\n\r\n'));
    expect(unknown.status).toBe(405);
    expect(unknown.headers.allow).toBe('GET, HEAD, POST');
    expectCatalogueShape(unknown.body, 'method_not_allowed', unknown.headers['x-request-id']);
  });

  it('answers TRACE and CONNECT with 405 and Allow, never running a route', async () => {
    const trace = await rawRequest(gw.url, '/admin/v1/tenants', { method: 'TRACE', headers: admin });
    expect(trace.status).toBe(405);
    expect(trace.headers.allow).toBe('GET, HEAD, POST');
    expectCatalogueShape(JSON.parse(trace.body.toString()), 'method_not_allowed', trace.headers['x-request-id'] as string);
    expect(trace.body.toString()).not.toContain(TEST_ADMIN_TOKEN);

    const traceImage = await rawRequest(gw.url, '/i/insecure/plain/local:///a.jpg', { method: 'TRACE' });
    expect(traceImage.status).toBe(405);

    const tunnel = parseRaw(await rawExchange(gw.url, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'));
    expect(tunnel.status).toBe(405);
    expect(tunnel.headers).toHaveProperty('allow');
    expectCatalogueShape(tunnel.body, 'method_not_allowed', tunnel.headers['x-request-id']);
  });

  it('answers a method a route does not serve with 405 and its Allow', async () => {
    const res = await gw.fetch('/health/live', { method: 'PUT' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
    expect((await res.json()).error.code).toBe('method_not_allowed');
  });

  it('takes Content-Type: application/json with an empty body as no body', async () => {
    const created = await gw.admin('/admin/v1/backends', { method: 'POST', json: { name: 'empty-body', url: 'http://127.0.0.1:9', weight: 1 } });
    expect(created.status).toBe(201);
    const { id } = await created.json();
    const tenant = await gw.admin('/admin/v1/tenants', { method: 'POST', json: { name: 'Empty', email: 'empty-body@errors.example' } });
    const { id: tenantId } = await tenant.json();

    const jsonNoBody = { ...admin, 'content-type': 'application/json' };
    const suspend = await rawRequest(gw.url, `/admin/v1/tenants/${tenantId}/suspend`, { method: 'POST', headers: { ...jsonNoBody, 'content-length': '0' } });
    expect(suspend.status).toBe(200);
    const removed = await rawRequest(gw.url, `/admin/v1/backends/${id}`, { method: 'DELETE', headers: jsonNoBody });
    expect(removed.status).toBe(204);
  });

  it('refuses JSON nested 5000 levels deep with 400, not 500', async () => {
    for (const body of ['{"a":'.repeat(5000) + '1' + '}'.repeat(5000), '['.repeat(5000) + ']'.repeat(5000)]) {
      const res = await gw.admin('/admin/v1/tenants', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect(res.status).toBe(400);
      expect((await res.json()).error.code).toBe('validation_failed');
    }
  });
});
