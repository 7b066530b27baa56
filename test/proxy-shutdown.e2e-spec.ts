import { mkdtempSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { GatewayProcess, freePort, spawnGateway, waitUntilReady } from './support/gateway-process';
import { TestBackend, startBackend } from './support/http-backends';
import { createTestDatabase } from './support/test-app';
import { TEST_REDIS_URL, databaseUrl, redisRunPrefix } from './support/test-env';
import { HIGH_RATE_LIMIT_ENV, TenantWithKey, UNLIMITED, adminClient, createTenantWithKey, sandboxedPlainPath } from './support/tenants';

jest.setTimeout(60_000);

const CHUNKS = 12;
const CHUNK = Buffer.alloc(4096, 'x');
const ADMIN_TOKEN = 'shutdown-admin-token-0123456789';

describe('graceful shutdown with a proxied response in flight', () => {
  let backend: TestBackend;
  let gw: GatewayProcess;
  let database: string;
  let tenant: TenantWithKey;

  beforeAll(async () => {
    // A slow image: 12 chunks, 150 ms apart.
    backend = await startBackend({
      name: 'slow',
      handler: (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(CHUNKS * CHUNK.length) });
        let sent = 0;
        const timer = setInterval(() => {
          res.write(CHUNK);
          if (++sent === CHUNKS) {
            clearInterval(timer);
            res.end();
          }
        }, 150);
        res.on('close', () => clearInterval(timer));
      },
    });
    database = await createTestDatabase();
    gw = spawnGateway({
      NODE_ENV: 'test',
      ADMIN_TOKEN,
      KEY_PEPPER: 'shutdown-pepper-0123456789',
      SECRETS_KEY: 'ab'.repeat(32),
      DATA_DIR: mkdtempSync(join(tmpdir(), 'igw-shutdown-')),
      PORT: String(await freePort()),
      HOST: '127.0.0.1',
      DATABASE_URL: databaseUrl(database),
      REDIS_URL: TEST_REDIS_URL,
      REDIS_KEY_PREFIX: `${redisRunPrefix()}shutdown:`,
      BACKENDS: `slow=${backend.url}|1`,
      HEALTH_CHECK_INTERVAL: '3600',
      ...HIGH_RATE_LIMIT_ENV,
    });
    await waitUntilReady(gw);
    // The tenant and key come from the spawned gateway's own admin API, under the token it started with.
    tenant = await createTenantWithKey(adminClient(gw.url, ADMIN_TOKEN), { scopes: ['images:read'], ...UNLIMITED });
  });

  afterAll(async () => {
    if (gw.child.exitCode === null) gw.child.kill('SIGKILL');
    await backend.stop();
  });

  it('lets a slow streaming response finish on SIGTERM and exits 0', async () => {
    const received = await new Promise<{ status: number; bytes: number; complete: boolean }>((resolve, reject) => {
      const req = httpRequest(`${gw.url}/i/insecure/plain/local:///image.jpg`, { agent: false, headers: { 'x-api-key': tenant.key } }, (res) => {
        let bytes = 0;
        res.once('data', () => gw.child.kill('SIGTERM'));
        res.on('data', (chunk: Buffer) => (bytes += chunk.length));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, complete: res.complete }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    expect(received).toEqual({ status: 200, bytes: CHUNKS * CHUNK.length, complete: true });
    expect(await gw.exited).toBe(0);
    expect(backend.imageRequests.map((r) => r.url)).toEqual([sandboxedPlainPath(tenant.tenantId, '', 'image.jpg')]);
    expect(backend.abandoned).toHaveLength(0);

    // The drained request was counted, and the shutdown flushed it to PostgreSQL (docs/rate-limits-and-quotas.md).
    const db = new Client({ connectionString: databaseUrl(database) });
    await db.connect();
    try {
      const { rows } = await db.query<{ requests: string; bytes_out: string }>(
        'SELECT sum(requests)::text AS requests, sum(bytes_out)::text AS bytes_out FROM usage_counters WHERE tenant_id = $1',
        [tenant.tenantId],
      );
      expect(rows[0]).toEqual({ requests: '1', bytes_out: String(CHUNKS * CHUNK.length) });
    } finally {
      await db.end();
    }
  });
});
