import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { GatewayProcess, freePort, spawnGateway, waitUntilReady } from './support/gateway-process';
import { TEST_DATABASE_URL, TEST_REDIS_URL, databaseUrl, redisRunPrefix, runId } from './support/test-env';

jest.setTimeout(60_000);

const secrets = {
  ADMIN_TOKEN: 'startup-admin-token-0123456789',
  KEY_PEPPER: 'startup-pepper-0123456789',
  SECRETS_KEY: 'cd'.repeat(32),
};

describe('gateway process', () => {
  it('refuses a bad value with a non-zero exit and a message naming the key', async () => {
    const gw = spawnGateway({ ...secrets, PORT: 'not-a-port', NODE_ENV: 'test' });
    expect(await gw.exited).not.toBe(0);
    expect(gw.output()).toMatch(/PORT \(server\.port\): .*integer/);
  });

  it('refuses to start in production without its secrets', async () => {
    const gw = spawnGateway({ NODE_ENV: 'production', PORT: String(await freePort()) });
    expect(await gw.exited).not.toBe(0);
    expect(gw.output()).toMatch(/ADMIN_TOKEN .*required in production/);
  });

  describe('on DATABASE_URL and REDIS_URL', () => {
    const database = `igw_t_${runId()}_startup`;
    let gw: GatewayProcess;

    beforeAll(async () => {
      const admin = new Client({ connectionString: TEST_DATABASE_URL });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${database}`); // empty: the start must migrate it
      await admin.end();
      gw = spawnGateway({
        ...secrets,
        NODE_ENV: 'development',
        LOG_LEVEL: 'info',
        DATA_DIR: mkdtempSync(join(tmpdir(), 'igw-startup-')),
        PORT: String(await freePort()),
        HOST: '127.0.0.1',
        DATABASE_URL: databaseUrl(database),
        REDIS_URL: TEST_REDIS_URL,
        REDIS_KEY_PREFIX: `${redisRunPrefix()}startup:`,
      });
      await waitUntilReady(gw);
    });

    afterAll(() => {
      if (gw.child.exitCode === null) gw.child.kill('SIGKILL');
    });

    it('migrates an empty database at start, creating every table of the schema', async () => {
      const db = new Client({ connectionString: databaseUrl(database) });
      await db.connect();
      const { rows } = await db.query<{ table_name: string }>(
        `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`,
      );
      await db.end();
      expect(rows.map((r) => r.table_name)).toEqual(
        expect.arrayContaining(['plans', 'tenants', 'api_keys', 'ip_allowlist', 'backends', 'usage_counters', 'images', 'request_logs', 'audit_log']),
      );
    });

    it('logs JSON lines carrying the request id', async () => {
      await fetch(`${gw.url}/no-such-page`, { headers: { 'x-request-id': 'startup-log-check' } });
      await new Promise((r) => setTimeout(r, 200));
      const line = gw.output().split('\n').find((l) => l.includes('startup-log-check'));
      expect(line).toBeDefined();
      expect(JSON.parse(line!)).toMatchObject({ requestId: 'startup-log-check', status: 404 });
    });

    it('stops cleanly with exit code 0 on SIGTERM', async () => {
      gw.child.kill('SIGTERM');
      expect(await gw.exited).toBe(0);
      expect(gw.output()).toContain('stopped cleanly');
    });
  });
});
