import { once } from 'node:events';
import { type IncomingMessage, type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { TestBackend, startBackend, waitFor } from './support/http-backends';
import { HIGH_RATE_LIMIT_CONFIG, TenantWithKey, UNLIMITED, createTenantWithKey } from './support/tenants';
import { TestApp, createTestApp } from './support/test-app';

jest.setTimeout(60_000);

/** A WebSocket backend of the test's own: greets every connection, then echoes what it receives. */
class WsBackend {
  readonly upgrades: IncomingMessage[] = [];
  readonly received: string[] = [];
  private readonly sockets = new Set<WebSocket>();
  private constructor(
    private readonly server: Server,
    private readonly wss: WebSocketServer,
    readonly url: string,
  ) {}

  static async start(): Promise<WsBackend> {
    const server = createServer((_req, res) => res.end('plain http'));
    const wss = new WebSocketServer({ server });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const backend = new WsBackend(server, wss, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    wss.on('connection', (socket, req) => {
      backend.upgrades.push(req);
      backend.sockets.add(socket);
      socket.on('close', () => backend.sockets.delete(socket));
      socket.send(`hello ${req.url}`);
      socket.on('message', (data) => {
        backend.received.push(data.toString());
        socket.send(`echo ${data.toString()}`);
      });
    });
    return backend;
  }

  /** Connections open on the backend side. */
  get connections(): number {
    return this.sockets.size;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

interface Refused {
  status: number;
  headers: IncomingMessage['headers'];
  body: { error: { code: string; message: string; requestId: string } };
}

/** Opens a WebSocket through the gateway; resolves with the open socket, or with the refusal. */
function open(url: string, headers: Record<string, string> = {}): Promise<{ socket: WebSocket; messages: string[] } | Refused> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    const messages: string[] = [];
    socket.on('message', (data) => messages.push(data.toString()));
    socket.once('open', () => resolve({ socket, messages }));
    socket.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(text) as Refused['body'] }));
    });
    socket.once('error', (error) => reject(error));
  });
}

/**
 * `websocket: true` routes: the upgrade passes the route's access steps (here an API key), is
 * then piped both ways to a real WebSocket server, and its bytes count as the tenant's usage.
 */
describe('WebSocket routes (e2e)', () => {
  let ws: WsBackend;
  let http: TestBackend;
  let gw: TestApp;
  let tenant: TenantWithKey;
  let base: string;

  beforeAll(async () => {
    ws = await WsBackend.start();
    http = await startBackend({ name: 'http1' });
    const gone = await startBackend({ name: 'gone' });
    await gone.stop();
    gw = await createTestApp({
      config: {
        ...HIGH_RATE_LIMIT_CONFIG,
        upstreams: {
          live: { backends: [{ name: 'ws1', url: ws.url }] },
          plain: { backends: [{ name: 'http1', url: http.url }] },
          gone: { backends: [{ name: 'gone', url: gone.url }] },
        },
        routes: [
          { name: 'gone', path: '/gone/*', upstream: 'gone', auth: 'api-key', websocket: true },
          { name: 'live', path: '/live/*', upstream: 'live', auth: 'api-key', stripPrefix: '/live', websocket: true },
          { name: 'plain', path: '/plain/*', upstream: 'plain', auth: 'none' },
        ],
      },
    });
    tenant = await createTenantWithKey(gw, { scopes: ['images:read'], ...UNLIMITED });
    base = gw.url.replace(/^http/, 'ws');
  });

  afterAll(async () => {
    await gw?.close();
    await ws?.stop();
    await http?.stop();
  });

  it('refuses an upgrade without a key in the catalogue shape, with the request id, before the backend', async () => {
    const before = ws.upgrades.length;
    const refused = (await open(`${base}/live/feed`)) as Refused;
    expect(refused.status).toBe(401);
    expect(refused.headers['www-authenticate']).toBe('Bearer realm="imgproxy-gateway"');
    expect(refused.body.error.code).toBe('unauthorized');
    expect(refused.body.error.requestId).toBe(refused.headers['x-request-id']);
    expect(ws.upgrades.length).toBe(before);
  });

  it('pipes an authenticated upgrade both ways to the backend, path stripped, tenant told', async () => {
    const opened = await open(`${base}/live/feed?room=7`, { 'x-api-key': tenant.key, 'x-gateway-tenant': '00000000-0000-4000-8000-000000000000' });
    if (!('socket' in opened)) throw new Error(`refused: ${JSON.stringify(opened.body)}`);
    const { socket, messages } = opened;
    await waitFor('the greeting', () => messages.length === 1);
    expect(messages[0]).toBe('hello /feed?room=7');
    socket.send('ping 1');
    socket.send(Buffer.alloc(10_000, 'x').toString());
    await waitFor('both echoes', () => messages.length === 3);
    expect(messages[1]).toBe('echo ping 1');
    expect(messages[2]).toBe(`echo ${'x'.repeat(10_000)}`);
    const upgrade = ws.upgrades.at(-1)!;
    expect(upgrade.headers['x-gateway-tenant']).toBe(tenant.tenantId);
    expect(upgrade.headers['x-api-key']).toBeUndefined();
    // The client going away closes the backend's side too.
    const connected = ws.connections;
    socket.close();
    await once(socket, 'close');
    await waitFor('the backend side to close', () => ws.connections === connected - 1);
  });

  it('answers 502 bad_gateway, with the request id, when the backend refuses the connection', async () => {
    const refused = (await open(`${base}/gone/x`, { 'x-api-key': tenant.key, 'x-request-id': 'ws-dead-backend' })) as Refused;
    expect([refused.status, refused.body.error.code]).toEqual([502, 'bad_gateway']);
    expect(refused.headers['x-request-id']).toBe('ws-dead-backend');
  });

  it('counts the bytes of a WebSocket session, both ways, as the tenant’s usage', async () => {
    const metered = await createTenantWithKey(gw, { ...UNLIMITED });
    const opened = await open(`${base}/live/meter`, { 'x-api-key': metered.key });
    if (!('socket' in opened)) throw new Error('refused');
    const payload = 'y'.repeat(50_000);
    opened.socket.send(payload);
    await waitFor('the echo', () => opened.messages.length === 2);
    opened.socket.close();
    await once(opened.socket, 'close');
    await waitFor('usage of the session', async () => {
      const usage = (await (await gw.admin(`/admin/v1/tenants/${metered.tenantId}/usage`)).json()) as { totals: { requests: number; bytesIn: number; bytesOut: number } };
      // Masked client frames in, the greeting and the echo out, each with their framing.
      return usage.totals.requests === 1 && usage.totals.bytesIn >= 50_000 && usage.totals.bytesOut >= 50_000 + 'hello /meter'.length;
    });
  });

  it('refuses an upgrade on a route without websocket: true, and on a path no route matches', async () => {
    const plain = (await open(`${base}/plain/x`)) as Refused;
    expect(plain.status).toBe(400);
    expect(plain.body.error.code).toBe('validation_failed');
    expect(plain.body.error.requestId).toBe(plain.headers['x-request-id']);
    expect(http.hits).toBe(0);
    const nowhere = (await open(`${base}/nowhere`)) as Refused;
    expect([nowhere.status, nowhere.body.error.code]).toEqual([404, 'not_found']);
  });
});

describe('WebSocket upgrades and the IP deny list (e2e)', () => {
  let ws: WsBackend;
  let gw: TestApp;

  beforeAll(async () => {
    ws = await WsBackend.start();
    gw = await createTestApp({
      config: {
        ...HIGH_RATE_LIMIT_CONFIG,
        // The test speaks for its clients through a trusted proxy (itself).
        server: { trustedProxies: ['127.0.0.1/32'] },
        security: { ipDenyList: ['203.0.113.0/24'] },
        upstreams: { live: { backends: [{ name: 'ws1', url: ws.url }] } },
        routes: [{ name: 'open-live', path: '/live/*', upstream: 'live', auth: 'none', websocket: true }],
      },
    });
  });

  afterAll(async () => {
    await gw?.close();
    await ws?.stop();
  });

  it('refuses a denied address’s upgrade as it refuses its requests, before any backend', async () => {
    const base = gw.url.replace(/^http/, 'ws');
    const denied = { 'x-forwarded-for': '203.0.113.9' };
    expect((await gw.fetch('/live/x', { headers: denied })).status).toBe(403);
    const answer = await open(`${base}/live/x`, denied);
    if ('socket' in answer) {
      answer.socket.terminate();
      throw new Error('the denied address was upgraded');
    }
    expect([answer.status, answer.body.error.code]).toEqual([403, 'ip_not_allowed']);
    expect(answer.headers['x-request-id']).toBe(answer.body.error.requestId);
    expect(ws.upgrades).toHaveLength(0);

    const allowed = await open(`${base}/live/x`, { 'x-forwarded-for': '198.51.100.9' });
    if (!('socket' in allowed)) throw new Error('refused');
    allowed.socket.close();
    await once(allowed.socket, 'close');
  });
});
