/**
 * What Redis itself spends per proxied request (docs/performance.md): commands (INFO commandstats:
 * the EVALSHA and every command a script runs, the batches and flushes included) and CPU (INFO cpu,
 * user + system), as deltas over a few thousand requests. The gateway runs in its own process
 * against a private redis-server that nothing else uses; autocannon drives the full pipeline on
 * `/i/*` with a cached key. The command count is asserted; the CPU figure is reported, never
 * asserted (timings vary with the machine's load). Set REDIS_COST_REQUESTS to change the volume.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import Redis from 'ioredis';
import { OwnRedis } from './quota-probe';
import { type GatewayProcess, freePort, spawnGateway, waitUntilReady } from './support/gateway-process';
import { type TestBackend, startBackend } from './support/http-backends';
import { HIGH_RATE_LIMIT_ENV, UNLIMITED, adminClient, createTenantWithKey } from './support/tenants';
import { createTestDatabase } from './support/test-app';
import { databaseUrl } from './support/test-env';

jest.setTimeout(180_000);

const REQUESTS = Number(process.env.REDIS_COST_REQUESTS ?? 5000);
const CONNECTIONS = 32;
const ADMIN_TOKEN = 'redis-cost-admin-token-0123456789';
const IMAGE = '/i/insecure/rs:fit:100:100/plain/local:///cat.png';
/** After a load: two batch intervals, and a flush of the journal with its replay (every 5 s). */
const SETTLE_MS = 5_600;

interface RedisCounters {
  commands: Record<string, number>;
  cpuSeconds: number;
  /** Socket reads: how many requests' commands arrive together (automatic pipelining). */
  reads: number;
}

async function countersOf(redis: Redis): Promise<RedisCounters> {
  const [stats, cpu, totals] = await Promise.all([redis.info('commandstats'), redis.info('cpu'), redis.info('stats')]);
  const commands: Record<string, number> = {};
  for (const match of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) commands[match[1]] = Number(match[2]);
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(cpu)?.[1] ?? 0);
  const reads = Number(/^total_reads_processed:(\d+)/m.exec(totals)?.[1] ?? 0);
  return { commands, cpuSeconds: field('used_cpu_user') + field('used_cpu_sys'), reads };
}

describe('Redis cost per proxied request', () => {
  let redis: OwnRedis;
  let backend: TestBackend;
  let gw: GatewayProcess;
  let probe: Redis;
  let key: string;

  beforeAll(async () => {
    redis = await OwnRedis.start();
    backend = await startBackend({
      name: 'pool',
      handler: (_req, res) => {
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': '9' });
        res.end('png-bytes');
      },
    });
    gw = spawnGateway({
      NODE_ENV: 'test',
      ADMIN_TOKEN,
      KEY_PEPPER: 'redis-cost-pepper-0123456789',
      SECRETS_KEY: 'cd'.repeat(32),
      DATA_DIR: mkdtempSync(join(tmpdir(), 'igw-redis-cost-')),
      PORT: String(await freePort()),
      HOST: '127.0.0.1',
      DATABASE_URL: databaseUrl(await createTestDatabase()),
      REDIS_URL: redis.url,
      BACKENDS: `pool=${backend.url}|1`,
      HEALTH_CHECK_INTERVAL: '3600',
      LOG_LEVEL: 'warn',
      ...HIGH_RATE_LIMIT_ENV,
    });
    await waitUntilReady(gw);
    key = (await createTenantWithKey(adminClient(gw.url, ADMIN_TOKEN), { scopes: ['images:read'], ...UNLIMITED })).key;
    probe = new Redis(redis.url);
  });
  afterAll(async () => {
    probe?.disconnect();
    if (gw && gw.child.exitCode === null) {
      gw.child.kill('SIGTERM');
      await gw.exited;
    }
    await backend?.stop();
    await redis?.down();
  });

  const load = async (amount: number) => {
    const result = await autocannon({ url: gw.url + IMAGE, connections: CONNECTIONS, amount, headers: { 'x-api-key': key } });
    expect(result.non2xx).toBe(0);
    expect(result.errors).toBe(0);
    return result;
  };

  it('costs at most 8 Redis commands per request, scripts, batches and flushes included', async () => {
    // Warm-up: the key is cached, the month view seeded, the scripts loaded.
    await load(500);
    await sleep(SETTLE_MS);
    // Redis's own housekeeping over the same time, without requests, is taken off the figure.
    const idleStart = await countersOf(probe);
    await sleep(SETTLE_MS);
    const idleEnd = await countersOf(probe);
    const before = await countersOf(probe);
    const started = Date.now();
    const result = await load(REQUESTS);
    const loadSeconds = (Date.now() - started) / 1000;
    await sleep(SETTLE_MS);
    const after = await countersOf(probe);
    const idleCpu = ((idleEnd.cpuSeconds - idleStart.cpuSeconds) * (loadSeconds * 1000 + SETTLE_MS)) / SETTLE_MS;
    const perCommand: Record<string, number> = {};
    let commands = 0;
    for (const [name, calls] of Object.entries(after.commands)) {
      // The INFO calls of these samples are the probe's, not the gateway's.
      const delta = calls - (before.commands[name] ?? 0) - (name === 'info' ? 3 : 0);
      if (delta <= 0) continue;
      commands += delta;
      perCommand[name] = Math.round((delta / REQUESTS) * 100) / 100;
    }
    const report = {
      requests: REQUESTS,
      connections: CONNECTIONS,
      requestsPerSecond: Math.round(result.requests.average),
      commandsPerRequest: Math.round((commands / REQUESTS) * 100) / 100,
      socketReadsPerRequest: Math.round(((after.reads - before.reads) / REQUESTS) * 100) / 100,
      redisCpuMicrosecondsPerRequest: Math.round((((after.cpuSeconds - before.cpuSeconds - idleCpu) * 1e6) / REQUESTS) * 10) / 10,
      perCommand,
    };
    process.stdout.write(`redis cost per request: ${JSON.stringify(report)}\n`);
    expect(commands / REQUESTS).toBeLessThanOrEqual(8);
  });
});
