import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { GatewayProcess, freePort, spawnGateway, waitUntilReady } from './support/gateway-process';
import { createTestDatabase } from './support/test-app';
import { TEST_REDIS_URL, databaseUrl, redisRunPrefix } from './support/test-env';
import { HIGH_RATE_LIMIT_ENV, TenantWithKey, UNLIMITED, adminClient, createTenantWithKey } from './support/tenants';

jest.setTimeout(90_000);

const ADMIN_TOKEN = 'redaction-admin-token-S3CR3T-42';

/**
 * Credentials are masked by value as well as by name (docs/observability.md, Logs): a query key
 * under an encoded name, a key in any other parameter or in the path, the gateway's own admin
 * token wherever it appears; in the request line on stdout and in `request_logs.path`.
 */
describe('log redaction by value (spawned gateway, query keys enabled)', () => {
  let gw: GatewayProcess;
  let database: string;
  let tenant: TenantWithKey;
  let output: string;
  let lines: Record<string, unknown>[];
  let secret: string;
  const statuses: Record<string, number> = {};

  beforeAll(async () => {
    database = await createTestDatabase();
    const dir = mkdtempSync(join(tmpdir(), 'igw-redaction-'));
    const configFile = join(dir, 'gateway.yaml');
    writeFileSync(configFile, 'security:\n  allowQueryKey: true\nrequestLogs:\n  flushIntervalMs: 100\n');
    gw = spawnGateway({
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      CONFIG_FILE: configFile,
      ADMIN_TOKEN,
      KEY_PEPPER: 'redaction-pepper-0123456789',
      SECRETS_KEY: 'cd'.repeat(32),
      DATA_DIR: dir,
      PORT: String(await freePort()),
      HOST: '127.0.0.1',
      DATABASE_URL: databaseUrl(database),
      REDIS_URL: TEST_REDIS_URL,
      REDIS_KEY_PREFIX: `${redisRunPrefix()}redaction:`,
      ...HIGH_RATE_LIMIT_ENV,
    });
    await waitUntilReady(gw, '/health/live');
    tenant = await createTenantWithKey(adminClient(gw.url, ADMIN_TOKEN), { scopes: ['images:read', 'usage:read'], ...UNLIMITED });
    secret = tenant.key.slice(`igw_${tenant.keyId}_`.length);

    const send = async (id: string, path: string, headers: Record<string, string> = {}) => {
      statuses[id] = (await fetch(gw.url + path, { headers: { 'x-request-id': id, ...headers } })).status;
    };
    await send('encoded-name', `/api/v1/me?api%5Fkey=${tenant.key}`);
    await send('other-param', `/api/v1/me?x=${tenant.key}&w=1`, { 'x-api-key': tenant.key });
    await send('encoded-value', `/api/v1/me?x=${encodeURIComponent(tenant.key).replace(/_/g, '%5F')}`, { 'x-api-key': tenant.key });
    await send('in-path', `/i/insecure/plain/local:///${tenant.key}.png`, { 'x-api-key': tenant.key });
    await send('admin-token', `/api/v1/me?note=${ADMIN_TOKEN}`, { 'x-api-key': tenant.key });

    gw.child.kill('SIGTERM');
    expect(await gw.exited).toBe(0);
    output = gw.output();
    lines = output
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  });
  afterAll(() => {
    if (gw.child.exitCode === null) gw.child.kill('SIGKILL');
  });

  const isRequestLine = (line: Record<string, unknown>) => line.msg === 'request completed' || line.msg === 'request failed';
  const urlOf = (requestId: string) => (lines.find((l) => l.requestId === requestId && isRequestLine(l))?.req as { url?: string })?.url;

  it('authenticates the encoded query name, and logs it masked', () => {
    expect(statuses['encoded-name']).toBe(200);
    expect(urlOf('encoded-name')).toBe('/api/v1/me?api%5Fkey=[Redacted]');
  });

  it('masks a key in any parameter, encoded or not, and in the path', () => {
    expect(urlOf('other-param')).toBe('/api/v1/me?x=[Redacted]&w=1');
    expect(urlOf('encoded-value')).toBe('/api/v1/me?x=[Redacted]');
    expect(urlOf('in-path')).toBe('/i/insecure/plain/local:///[Redacted]');
    expect(urlOf('admin-token')).toBe('/api/v1/me?note=[Redacted]');
  });

  it('never writes the key secret or the admin token anywhere on stdout', () => {
    expect(secret).toHaveLength(32);
    expect(output).not.toContain(secret);
    expect(output).not.toContain(ADMIN_TOKEN);
  });

  it('stores request_logs paths with the key masked', async () => {
    const db = new Client({ connectionString: databaseUrl(database) });
    await db.connect();
    try {
      const { rows } = await db.query<{ request_id: string; path: string }>('SELECT request_id, path FROM request_logs');
      const inPath = rows.find((r) => r.request_id === 'in-path');
      expect(inPath?.path).toBe('/i/insecure/plain/local:///[Redacted]');
      for (const row of rows) expect(row.path).not.toContain(secret);
    } finally {
      await db.end();
    }
  });
});
