import { mkdtempSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GatewayProcess, freePort, spawnBuiltGateway } from './support/gateway-process';
import { TestBackend, startBackend, waitFor } from './support/http-backends';
import { metricValue } from './support/metrics';
import { createTestDatabase } from './support/test-app';
import { TEST_REDIS_URL, databaseUrl, redisRunPrefix } from './support/test-env';
import { HIGH_RATE_LIMIT_ENV, TenantWithKey, UNLIMITED, adminClient, createTenantWithKey } from './support/tenants';

jest.setTimeout(120_000);

const ADMIN_TOKEN = 'workers-admin-token-0123456789';

/** One request on a connection of its own, so the primary's round-robin spreads them over the workers. */
function fresh(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    }).on('error', reject);
  });
}

interface LogLine {
  pid: number;
  msg: string;
  requestId?: string;
  context?: string;
}

function lines(gw: GatewayProcess): LogLine[] {
  return gw
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

/** Worker pids by slot, from the workers' own "listening" lines (the latest start of each slot). */
function workerPids(gw: GatewayProcess): number[] {
  const bySlot = new Map<string, number>();
  for (const line of lines(gw)) {
    const slot = /^worker (\d+) listening \(pid \d+\)$/.exec(line.msg)?.[1];
    if (slot !== undefined) bySlot.set(slot, line.pid);
  }
  return [...bySlot.values()];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('WORKERS=2: one port, merged metrics, restarts and graceful shutdown', () => {
  let gw: GatewayProcess;
  let backend: TestBackend;
  let tenant: TenantWithKey;

  beforeAll(async () => {
    backend = await startBackend({ name: 'a' });
    const database = await createTestDatabase();
    gw = spawnBuiltGateway({
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      WORKERS: '2',
      ADMIN_TOKEN,
      KEY_PEPPER: 'workers-pepper-0123456789',
      SECRETS_KEY: 'cd'.repeat(32),
      DATA_DIR: mkdtempSync(join(tmpdir(), 'igw-workers-')),
      PORT: String(await freePort()),
      HOST: '127.0.0.1',
      DATABASE_URL: databaseUrl(database),
      REDIS_URL: TEST_REDIS_URL,
      REDIS_KEY_PREFIX: `${redisRunPrefix()}workers:`,
      BACKENDS: `a=${backend.url}|1`,
      ...HIGH_RATE_LIMIT_ENV,
    });
    await waitFor('both workers listening', () => gw.output().includes('with 2 workers') || gw.child.exitCode !== null, 60_000, 100);
    if (gw.child.exitCode !== null) throw new Error(`the gateway exited:\n${gw.output()}`);
    tenant = await createTenantWithKey(adminClient(gw.url, ADMIN_TOKEN), { scopes: ['images:read'], ...UNLIMITED });
  });

  afterAll(async () => {
    if (gw.child.exitCode === null) gw.child.kill('SIGKILL');
    await backend.stop();
  });

  it('serves from both workers, and one scrape of /metrics counts the requests of both', async () => {
    expect(workerPids(gw)).toHaveLength(2);
    for (let i = 0; i < 20; i++) expect(await fresh(`${gw.url}/no/such/path`, { 'x-request-id': `workers-404-${i}` })).toBe(404);
    for (let i = 0; i < 6; i++) {
      expect(await fresh(`${gw.url}/i/insecure/plain/local:///w${i}.jpg`, { 'x-api-key': tenant.key, 'x-request-id': `workers-img-${i}` })).toBe(200);
    }

    const served = () => lines(gw).filter((line) => line.requestId?.startsWith('workers-') && line.msg === 'request completed');
    await waitFor('every request line', () => served().length === 26);
    // Both workers answered some: a scrape answered by one worker alone would miss the other's.
    expect(new Set(served().map((line) => line.pid)).size).toBe(2);

    const scrape = { fetch: (path: string) => fetch(gw.url + path) };
    expect(await metricValue(scrape, 'gateway_requests_total', 'route="unmatched",method="GET",status="404"')).toBe(20);
    expect(await metricValue(scrape, 'gateway_requests_total', 'route="/i/*",method="GET",status="200"')).toBe(6);
    expect(await metricValue(scrape, 'gateway_cluster_workers')).toBe(2);
    expect(backend.hits).toBe(6);
  });

  it('starts a worker that crashed again, and keeps serving meanwhile', async () => {
    const [victim, survivor] = workerPids(gw);
    process.kill(victim, 'SIGKILL');
    await waitFor('the restarted worker', () => workerPids(gw).length === 2 && !workerPids(gw).includes(victim), 30_000, 100);
    expect(workerPids(gw)).toContain(survivor);
    expect(lines(gw).some((line) => line.msg.includes(`(pid ${victim}) exited with signal SIGKILL: starting it again in`))).toBe(true);

    const scrape = { fetch: (path: string) => fetch(gw.url + path) };
    await waitFor('both workers listening again', async () => (await metricValue(scrape, 'gateway_cluster_workers')) === 2, 10_000, 100);
    expect(await metricValue(scrape, 'gateway_cluster_worker_restarts_total')).toBe(1);
    for (let i = 0; i < 6; i++) expect(await fresh(`${gw.url}/health/live`)).toBe(200);
  });

  it('SIGTERM: every worker drains and exits cleanly, then the primary exits 0', async () => {
    const pids = workerPids(gw);
    // A signal to the whole process group (Ctrl-C, `timeout`, `kill -- -pgid`) reaches each worker
    // itself and again through the primary: a worker already draining must not die of the repeat.
    for (const pid of pids) process.kill(pid, 'SIGTERM');
    const draining = () => lines(gw).filter((line) => line.msg === 'SIGTERM received: draining in-flight requests').length === pids.length;
    await waitFor('both workers draining', draining, 10_000, 5);
    gw.child.kill('SIGTERM');
    expect(await gw.exited).toBe(0);
    const stopped = lines(gw).filter((line) => line.msg === 'stopped cleanly').map((line) => line.pid);
    expect(stopped.sort()).toEqual([...pids].sort());
    expect(lines(gw).some((line) => line.msg === 'every worker stopped cleanly')).toBe(true);
    for (const pid of pids) expect(alive(pid)).toBe(false);
  });
});

describe('WORKERS=2 on the embedded development database', () => {
  it('refuses to start, saying why and what to set', async () => {
    const gw = spawnBuiltGateway({
      NODE_ENV: 'development',
      WORKERS: '2',
      REDIS_URL: TEST_REDIS_URL,
      DATA_DIR: mkdtempSync(join(tmpdir(), 'igw-workers-embedded-')),
      PORT: String(await freePort()),
      HOST: '127.0.0.1',
    });
    expect(await gw.exited).toBe(78);
    expect(gw.output()).toContain('WORKERS=2 (server.workers) needs DATABASE_URL: the embedded development database (PGlite) runs inside one process');
  });
});
