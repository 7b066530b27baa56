/**
 * What Redis itself spends per proxied request (docs/performance.md): commands (INFO commandstats,
 * the EVALSHA and every command a script runs) and CPU (INFO cpu, user + system), as deltas over a
 * few thousand requests on a private redis-server that only this gateway uses. The command count
 * is asserted; the CPU figure is reported, never asserted (timings vary with the machine's load).
 */
import Redis from 'ioredis';
import { UsageService } from '../src/usage/usage.service';
import { OwnRedis } from './quota-probe';
import { type TestBackend, startBackend } from './support/http-backends';
import { HIGH_RATE_LIMIT_CONFIG, UNLIMITED, createTenantWithKey } from './support/tenants';
import { type TestApp, createTestApp } from './support/test-app';

const REQUESTS = Number(process.env.REDIS_COST_REQUESTS ?? 3000);
const CONCURRENCY = 32;
const IMAGE = '/i/insecure/rs:fit:100:100/plain/local:///cat.png';

interface RedisCounters {
  commands: number;
  byCommand: Record<string, number>;
  cpuSeconds: number;
}

async function countersOf(redis: Redis): Promise<RedisCounters> {
  const [stats, cpu] = await Promise.all([redis.info('commandstats'), redis.info('cpu')]);
  const byCommand: Record<string, number> = {};
  let commands = 0;
  for (const match of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    byCommand[match[1]] = Number(match[2]);
    commands += Number(match[2]);
  }
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(cpu)?.[1] ?? 0);
  return { commands, byCommand, cpuSeconds: field('used_cpu_user') + field('used_cpu_sys') };
}

describe('Redis cost per proxied request', () => {
  let redis: OwnRedis;
  let backend: TestBackend;
  let gw: TestApp;
  let probe: Redis;

  beforeAll(async () => {
    redis = await OwnRedis.start();
    backend = await startBackend({
      name: 'pool',
      handler: (_req, res) => {
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': '9' });
        res.end('png-bytes');
      },
    });
    gw = await createTestApp({
      config: {
        ...HIGH_RATE_LIMIT_CONFIG,
        redis: { url: redis.url },
        backends: [{ name: 'pool', url: backend.url, weight: 1 }],
        healthCheck: { intervalSeconds: 3600 },
      },
    });
    probe = new Redis(redis.url);
  });
  afterAll(async () => {
    probe?.disconnect();
    await gw?.close();
    await backend?.stop();
    await redis?.down();
  });

  it('costs at most 8 Redis commands per request, scripts included', async () => {
    const tenant = await createTenantWithKey(gw, { scopes: ['images:read', 'usage:read'], ...UNLIMITED });
    const headers = { 'x-api-key': tenant.key };
    const run = async (count: number) => {
      let next = 0;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next++ < count) {
            const res = await gw.fetch(IMAGE, { headers });
            expect(res.status).toBe(200);
            await res.arrayBuffer();
          }
        }),
      );
      await gw.app.get(UsageService).settled();
    };
    // Warm-up: the key is cached, the month view seeded, the scripts loaded.
    await run(200);
    await new Promise((resolve) => setTimeout(resolve, 600));
    const before = await countersOf(probe);
    const started = Date.now();
    await run(REQUESTS);
    await new Promise((resolve) => setTimeout(resolve, 600));
    const after = await countersOf(probe);
    const seconds = (Date.now() - started) / 1000;
    // The two INFO calls of `countersOf` are commands too.
    const commands = after.commands - before.commands - 2;
    const perCommand = Object.fromEntries(
      Object.entries(after.byCommand)
        .map(([name, calls]) => [name, Math.round(((calls - (before.byCommand[name] ?? 0)) / REQUESTS) * 100) / 100])
        .filter(([, perRequest]) => (perRequest as number) > 0),
    );
    const report = {
      requests: REQUESTS,
      concurrency: CONCURRENCY,
      requestsPerSecond: Math.round(REQUESTS / seconds),
      commandsPerRequest: Math.round((commands / REQUESTS) * 100) / 100,
      redisCpuMicrosecondsPerRequest: Math.round(((after.cpuSeconds - before.cpuSeconds) * 1e6) / REQUESTS * 10) / 10,
      perCommand,
    };
    process.stdout.write(`redis cost per request: ${JSON.stringify(report)}\n`);
    expect(commands / REQUESTS).toBeLessThanOrEqual(8);
  }, 120_000);
});
