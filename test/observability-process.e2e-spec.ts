import { mkdtempSync } from 'node:fs';
import { IncomingMessage, Server, createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GatewayProcess, freePort, spawnGateway, waitUntilReady } from './support/gateway-process';
import { createTestDatabase } from './support/test-app';
import { TEST_REDIS_URL, databaseUrl, redisRunPrefix } from './support/test-env';
import { HIGH_RATE_LIMIT_ENV, TenantWithKey, UNLIMITED, adminClient, createTenantWithKey } from './support/tenants';

jest.setTimeout(90_000);

// Secrets sent in every place a client or admin could put them; none may reach a log line.
const ADMIN_TOKEN = 'proc-admin-token-S3CR3T-0123456789';
const API_KEY = 'igw_AbCdEfGh1234_QUERYsecretQUERYsecretQUERYsecret12';
const HEADER_KEY = 'igw_ZyXwVuTs9876_HEADERsecretHEADERsecretHEADERsec34';
const BEARER_KEY = 'igw_MnOpQrSt5555_BEARERsecretBEARERsecretBEARERsec56';
const COOKIE = 'session=COOKIEsecretCOOKIEsecret';
/** Made-up keys: only their redaction matters. The real key of the proxied request is added below. */
const SECRETS = [ADMIN_TOKEN, 'QUERYsecret', 'HEADERsecret', 'BEARERsecret', 'COOKIEsecret'];

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const PARENT_ID = 'b7ad6b7169203331';

/** A stand-in OpenTelemetry collector: records every OTLP/HTTP POST. */
function startCollector(): Promise<{ server: Server; url: string; received: { path: string; body: string }[] }> {
  const received: { path: string; body: string }[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: `${req.method} ${req.url}`, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received })),
  );
}

describe('gateway process: request log lines, redaction and span export', () => {
  let gw: GatewayProcess;
  let collector: Awaited<ReturnType<typeof startCollector>>;
  let output: string;
  let logLines: Record<string, unknown>[];
  let tenant: TenantWithKey;

  beforeAll(async () => {
    collector = await startCollector();
    const database = await createTestDatabase();
    gw = spawnGateway({
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      ADMIN_TOKEN,
      KEY_PEPPER: 'proc-pepper-0123456789',
      SECRETS_KEY: 'ef'.repeat(32),
      DATA_DIR: mkdtempSync(join(tmpdir(), 'igw-obs-')),
      PORT: String(await freePort()),
      HOST: '127.0.0.1',
      DATABASE_URL: databaseUrl(database),
      REDIS_URL: TEST_REDIS_URL,
      REDIS_KEY_PREFIX: `${redisRunPrefix()}obsproc:`,
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      OTEL_SERVICE_NAME: 'gateway-under-test',
      ...HIGH_RATE_LIMIT_ENV,
    });
    await waitUntilReady(gw, '/health/live');
    // A real tenant and key, so the proxied request passes the pipeline and reaches the proxy step.
    tenant = await createTenantWithKey(adminClient(gw.url, ADMIN_TOKEN), { scopes: ['images:read'], ...UNLIMITED });

    const get = (path: string, headers: Record<string, string>) => fetch(gw.url + path, { headers });
    await get('/health/live', { 'x-request-id': 'proc-probe' });
    await get('/metrics', { 'x-request-id': 'proc-scrape' });
    await get('/admin/v1/audit-log?limit=5', {
      'x-request-id': 'proc-admin',
      authorization: `Bearer ${ADMIN_TOKEN}`,
      cookie: COOKIE,
      traceparent: `00-${TRACE_ID}-${PARENT_ID}-01`,
    });
    await get('/admin/v1/audit-log', { 'x-request-id': 'proc-bad-admin', authorization: `Bearer ${BEARER_KEY}`, cookie: COOKIE });
    await get(`/i/insecure/rs:fit:300:200/plain/local:///cat.jpg?api_key=${API_KEY}&w=1`, { 'x-request-id': 'proc-query-key', 'x-api-key': tenant.key, cookie: COOKIE });
    await get('/i/insecure/plain/local:///cat.jpg', { 'x-request-id': 'proc-bad-key', 'x-api-key': HEADER_KEY });
    await get(`/no/such/path?api_key=${API_KEY}`, { 'x-request-id': 'proc-unmatched', 'x-api-key': HEADER_KEY });
    await get(`/api/v1/usage?token=${API_KEY}`, { 'x-request-id': 'proc-token-query', authorization: `Bearer ${BEARER_KEY}` });

    // SIGTERM: graceful shutdown flushes the span batch to the collector before the exit.
    gw.child.kill('SIGTERM');
    expect(await gw.exited).toBe(0);
    output = gw.output();
    logLines = output
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  });

  afterAll(async () => {
    if (gw.child.exitCode === null) gw.child.kill('SIGKILL');
    await new Promise((resolve) => collector.server.close(resolve));
  });

  const isRequestLine = (line: Record<string, unknown>) => line.msg === 'request completed' || line.msg === 'request failed';
  const requestLine = (requestId: string) => logLines.find((line) => line.requestId === requestId && isRequestLine(line));

  it('writes one JSON line per request with its id, trace id, route template, status, duration and client', () => {
    const line = requestLine('proc-admin');
    expect(line).toMatchObject({
      requestId: 'proc-admin',
      traceId: TRACE_ID,
      method: 'GET',
      route: '/admin/v1/audit-log',
      status: 200,
      clientIp: '127.0.0.1',
      bytesIn: 0,
      bytesOut: 0,
      req: { url: '/admin/v1/audit-log?limit=5' },
    });
    expect(line!.durationMs).toEqual(expect.any(Number));
    expect(logLines.filter((l) => l.requestId === 'proc-admin' && isRequestLine(l))).toHaveLength(1);
    expect(requestLine('proc-bad-admin')).toMatchObject({ status: 401, route: '/admin/v1/audit-log' });
    expect(requestLine('proc-unmatched')).toMatchObject({ route: 'unmatched', status: 404 });
    // The proxy route names itself; the key passed the pipeline, and without a backend the proxy
    // step answers 503, logged at error with the caller's tenant and key id.
    expect(requestLine('proc-query-key')).toMatchObject({
      route: '/i/*',
      routeName: 'proxy',
      level: 50,
      status: 503,
      tenantId: tenant.tenantId,
      keyId: tenant.keyId,
    });
    // A made-up key stops at authentication: a client error, logged at info, with no tenant.
    expect(requestLine('proc-bad-key')).toMatchObject({ route: '/i/*', routeName: 'proxy', level: 30, status: 401 });
    expect(requestLine('proc-bad-key')!.tenantId).toBeUndefined();
  });

  it('keeps health probes and scrapes out of info logs', () => {
    expect(output).not.toContain('proc-probe');
    expect(output).not.toContain('proc-scrape');
  });

  it('never writes API keys, the admin token, cookies or query-string keys', () => {
    const realSecret = tenant.key.slice(`igw_${tenant.keyId}_`.length);
    expect(realSecret).toHaveLength(32);
    for (const secret of [...SECRETS, realSecret, tenant.signingKey, tenant.signingSalt]) expect(output).not.toContain(secret);
    expect(requestLine('proc-query-key')!.req).toEqual({ url: '/i/insecure/rs:fit:300:200/plain/local:///cat.jpg?api_key=[Redacted]&w=1' });
    expect(requestLine('proc-token-query')!.req).toEqual({ url: '/api/v1/usage?token=[Redacted]' });
  });

  it('exports a server span to <endpoint>/v1/traces carrying the incoming trace id and parent', () => {
    const post = collector.received.find((r) => r.body.includes(TRACE_ID));
    expect(post?.path).toBe('POST /v1/traces');
    const body = JSON.parse(post!.body);
    const spans = body.resourceSpans.flatMap((rs: { scopeSpans: { spans: unknown[] }[] }) => rs.scopeSpans.flatMap((ss) => ss.spans));
    const span = spans.find((s: { traceId: string }) => s.traceId === TRACE_ID);
    expect(span).toMatchObject({ traceId: TRACE_ID, parentSpanId: PARENT_ID, name: 'GET /admin/v1/audit-log', kind: 2 });
    expect(JSON.stringify(span.attributes)).toContain('http.response.status_code');
    expect(post!.body).toContain('gateway-under-test');
  });
});
