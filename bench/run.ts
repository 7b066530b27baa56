/**
 * `npm run bench`: the gateway against a bare node:http + undici pass-through proxy (the
 * yardstick) and the backend itself, measured interleaved in one run so machine noise hits every
 * target alike. Targets:
 *
 *   direct            the backend itself
 *   baseline          node:http + undici pass-through (bench/baseline-proxy.ts)
 *   gateway           the full pipeline on /i/*: API key (cached), tenant allowlist, every
 *                     rate-limit bucket and the quota counters (Redis), quota check, URL sandbox
 *                     and re-signing, streaming proxy, usage count (Redis), metrics, request log
 *   gateway-no-auth   the same process and proxy on a route without the guards and interceptor
 *   gateway-cache-hit the whole chain (API key, allowlist, limits and quota in Redis, usage count,
 *                     metrics, request log) on a configured route with `cache:`, answered from
 *                     the cache: one URL, so every request after the first is a hit
 *   gateway-cache-miss the same route with a new query string on every request: each one leads a
 *                     fetch, is stored (and, once the memory tier is full, evicts)
 *
 * The image routes' own cache is off here, so `gateway` stays the full pipeline through the proxy.
 * Every participant runs in its own process; CPU µs per request and memory come from that
 * process. The gateway uses a real PostgreSQL (a database of its own, created and dropped here)
 * and a real Redis (a key prefix of its own, removed afterwards). Only 127.0.0.1; about two minutes.
 *
 * Options: --rounds N (3) --duration S (4) --connections N (50) --log-level L (warn)
 *          --targets gateway,baseline   load only these (ratios need baseline; for profiling)
 * PostgreSQL: TEST_DATABASE_URL, else DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres
 *             (the server to create the benchmark's database on).
 * Redis:      REDIS_URL, else TEST_REDIS_URL, else redis://127.0.0.1:6379.
 * BENCH_GATEWAY_NODE_OPTIONS="--cpu-prof --cpu-prof-dir=bench/results" profiles the gateway.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import Redis from 'ioredis';
import { Client } from 'pg';
import { request } from 'undici';
import { projectRoot } from '../src/common/project-root';
import { IMAGE_BYTES, LARGE_BYTES, LARGE_SOURCE } from './bench-backend';

interface Options {
  rounds: number;
  duration: number;
  connections: number;
  logLevel: string;
  /** Which targets to load (all by default); e.g. `gateway` alone while profiling it. */
  targets?: string[];
}

interface Participant {
  name: string;
  child: ChildProcess;
  url: string;
}

interface Usage {
  cpuMicros: number;
  rss: number;
  heapUsed: number;
  redisWrites?: number;
}

interface Target {
  name: string;
  url: string;
  headers: Record<string, string>;
  process: Participant;
  /** A query string of its own on every request (a cache miss each time). */
  uniqueQuery?: boolean;
}

interface Sample {
  target: string;
  round: number;
  requestsPerSecond: number;
  p50: number;
  p99: number;
  requests: number;
  errors: number;
  non2xx: number;
  cpuMicrosPerRequest?: number;
  rssMiB: number;
  redisWritesPerRequest?: number;
}

interface Summary {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  cpuMicrosPerRequest?: number;
  rssMiB: number;
  errors: number;
}

const ADMIN_TOKEN = randomBytes(24).toString('base64url');
const IMAGE_PATH = '/insecure/rs:fit:300:300/plain/local:///bench.jpg';
const LARGE_PATH = `/insecure/plain/local:///${LARGE_SOURCE}`;
const DEFAULT_DATABASE = 'postgres://postgres@127.0.0.1:5432/postgres';
const DEFAULT_REDIS = 'redis://127.0.0.1:6379';
/** Requests sent one at a time to count Redis round trips. */
const PROBE_REQUESTS = 200;

function parseOptions(argv: string[]): Options {
  const value = (name: string, fallback: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 && argv[i + 1] ? argv[i + 1] : fallback;
  };
  return {
    rounds: Number(value('rounds', '3')),
    duration: Number(value('duration', '4')),
    connections: Number(value('connections', '50')),
    logLevel: value('log-level', 'warn'),
    targets: argv.includes('--targets') ? value('targets', '').split(',') : undefined,
  };
}

function spawnParticipant(name: string, role: string, env: Record<string, string>): Promise<Participant> {
  const script = role === 'gateway' ? 'gateway-child.js' : 'child.js';
  const execArgv = role === 'gateway' ? (process.env.BENCH_GATEWAY_NODE_OPTIONS ?? '').split(' ').filter(Boolean) : [];
  const child = fork(join(__dirname, script), [role], { env: { ...process.env, ...env }, execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code} before it was ready`)));
    child.once('message', (message: { type: string; url: string }) => {
      if (message.type === 'ready') resolve({ name, child, url: message.url });
    });
  });
}

function usageOf(participant: Participant, gc = false): Promise<Usage> {
  return new Promise((resolve) => {
    participant.child.once('message', (message: Usage & { type: string }) => resolve(message));
    participant.child.send({ type: 'usage', gc });
  });
}

async function stop(participant: Participant): Promise<void> {
  const exited = new Promise((resolve) => participant.child.once('exit', resolve));
  participant.child.send({ type: 'stop' });
  const timer = setTimeout(() => participant.child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

let queries = 0;

function load(target: Target, options: Options, duration = options.duration) {
  const requests = target.uniqueQuery
    ? [{ setupRequest: (req: autocannon.Request) => ({ ...req, path: `${new URL(target.url).pathname}?n=${++queries}` }) }]
    : undefined;
  return autocannon({ url: target.url, connections: options.connections, duration, headers: target.headers, pipelining: 1, requests });
}

/** A fresh database on the PostgreSQL server, dropped afterwards. */
async function prepareDatabase(): Promise<{ url: string; server: string; cleanup: () => Promise<void> }> {
  const server = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? DEFAULT_DATABASE;
  const name = `igw_bench_${Date.now().toString(36)}`;
  const admin = new Client({ connectionString: server, connectionTimeoutMillis: 3_000 });
  try {
    await admin.connect();
  } catch (error) {
    throw new Error(`PostgreSQL at ${redactUrl(server)} does not answer (${(error as Error).message}); set TEST_DATABASE_URL or start it`);
  }
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(server);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    server: redactUrl(server),
    cleanup: async () => {
      const c = new Client({ connectionString: server });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** A Redis key prefix of the run's own, whose keys are removed afterwards. */
async function prepareRedis(): Promise<{ url: string; prefix: string; cleanup: () => Promise<void> }> {
  const url = process.env.REDIS_URL ?? process.env.TEST_REDIS_URL ?? DEFAULT_REDIS;
  const prefix = `igw-bench-${Date.now().toString(36)}:`;
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: 3_000 });
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    client.disconnect();
    throw new Error(`Redis at ${redactUrl(url)} does not answer (${(error as Error).message}); set REDIS_URL or start it`);
  }
  return {
    url,
    prefix,
    cleanup: async () => {
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        if (keys.length) await client.unlink(...keys);
        cursor = next;
      } while (cursor !== '0');
      await client.quit();
    },
  };
}

function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

/** One tenant and one key, created the way an operator would; limits far above what is sent. */
async function createApiKey(gatewayUrl: string): Promise<string> {
  const admin = async (path: string, body: unknown, method: 'POST' | 'PATCH' = 'POST') => {
    const res = await request(gatewayUrl + path, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const json = (await res.body.json()) as Record<string, unknown>;
    if (res.statusCode >= 300) throw new Error(`${method} ${path} answered ${res.statusCode}: ${JSON.stringify(json)}`);
    return json;
  };
  const tenant = await admin('/admin/v1/tenants', { name: 'bench', email: `bench-${Date.now()}@example.com` });
  // Checked on every request, never tripped: the limits are not what is measured.
  await admin(
    `/admin/v1/tenants/${tenant.id as string}`,
    { rateLimits: { perMinute: 10_000_000, perHour: 1_000_000_000 }, quotas: { monthlyRequests: 1e12, monthlyBandwidthBytes: 1e15 } },
    'PATCH',
  );
  const key = await admin(`/admin/v1/tenants/${tenant.id as string}/keys`, { name: 'bench' });
  return key.key as string;
}

/**
 * Redis round trips of one proxied request, counted two ways while PROBE_REQUESTS requests are
 * sent one at a time (so no two requests share a write): socket writes on the gateway's command
 * connection (each write is one round trip; commands sent together share it), and commands
 * naming the run's key prefix seen by a MONITOR connection.
 */
async function countRedisRoundTrips(target: Target, gateway: Participant, redisUrl: string, prefix: string) {
  const connection = new Redis(redisUrl);
  const monitor = await connection.monitor();
  let commands = 0;
  let inScripts = 0;
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (!args.some((arg) => arg.startsWith(prefix))) return;
    // MONITOR also shows what the Lua scripts call inside Redis; those are no network traffic.
    if (source === 'lua') inScripts++;
    else commands++;
  });
  const before = (await usageOf(gateway)).redisWrites ?? 0;
  for (let i = 0; i < PROBE_REQUESTS; i++) {
    const res = await request(target.url, { headers: target.headers });
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`round-trip probe: ${target.name} answered ${res.statusCode}`);
  }
  // The usage count leaves after the response; give the last one time to be written.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const writes = ((await usageOf(gateway)).redisWrites ?? 0) - before;
  monitor.disconnect();
  connection.disconnect();
  return {
    requests: PROBE_REQUESTS,
    roundTripsPerRequest: round2(writes / PROBE_REQUESTS),
    commandsPerRequest: round2(commands / PROBE_REQUESTS),
    commandsInScriptsPerRequest: round2(inScripts / PROBE_REQUESTS),
    method:
      `${PROBE_REQUESTS} requests sent one at a time; round trips = socket writes on the gateway's Redis command connection ` +
      `(counted in the gateway process), commands = Redis MONITOR lines naming the run's key prefix, sent by the gateway ` +
      `(commands the Lua scripts run inside Redis are counted apart)`,
  };
}

/**
 * Streams a 64 MiB response through `proxy`, sampling its RSS every 20 ms. The peak includes
 * freed-but-not-yet-collected chunk buffers, so the baseline's figure is the floor any Node
 * pass-through pays; buffering would add the whole body.
 */
async function streamingMemoryCheck(proxy: Participant, url: string, headers: Record<string, string>) {
  const before = (await usageOf(proxy)).rss;
  let peak = before;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, (await usageOf(proxy)).rss);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const started = Date.now();
  const res = await request(url, { headers });
  let bytes = 0;
  for await (const chunk of res.body) bytes += (chunk as Buffer).length;
  const seconds = (Date.now() - started) / 1000;
  sampling = false;
  await sampler;
  return { bytes, complete: bytes === LARGE_BYTES, seconds, rssBeforeMiB: mib(before), rssPeakMiB: mib(peak), rssGrowthMiB: mib(peak - before) };
}

function mib(bytes: number): number {
  return Math.round((bytes / 1024 / 1024) * 10) / 10;
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function ratiosOf(g: Summary, b: Summary) {
  return {
    requestsPerSecond: round2(g.requestsPerSecond / b.requestsPerSecond),
    cpuMicrosPerRequest: round2((g.cpuMicrosPerRequest ?? 0) / (b.cpuMicrosPerRequest ?? 1)),
    p99DeltaMs: g.p99Ms - b.p99Ms,
  };
}

/** Prefix of the configured pass-through route of the `gateway-no-auth` target. */
const PASS_THROUGH_PREFIX = '/passthrough';
/** Prefix of the configured route with a cache of the `gateway-cache-*` targets. */
const CACHED_PREFIX = '/cached';

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const startedAt = Date.now();
  const dataDir = mkdtempSync(join(tmpdir(), 'igw-bench-'));
  const database = await prepareDatabase();
  const redis = await prepareRedis().catch(async (error: Error) => {
    await database.cleanup();
    throw error;
  });
  const participants: Participant[] = [];
  try {
    const backend = await spawnParticipant('backend', 'backend', {});
    participants.push(backend);
    const baseline = await spawnParticipant('baseline', 'baseline', { BENCH_UPSTREAM: backend.url });
    participants.push(baseline);
    const gatewayConfig = {
      dataDir,
      database: { url: database.url, poolSize: 10, migrationsRun: true },
      redis: { url: redis.url, keyPrefix: redis.prefix },
      security: { adminToken: ADMIN_TOKEN, keyPepper: randomBytes(24).toString('base64url'), secretsKey: randomBytes(32).toString('hex') },
      backends: [{ name: 'bench', url: backend.url, weight: 1 }],
      // The IP and route buckets are checked on every request but must not be what is measured.
      rateLimit: { ip: { perMinute: 1_000_000_000 }, routes: { proxy: { perMinute: 1_000_000_000 } } },
      logging: { level: options.logLevel },
      // The same process and proxy on a configured route without authentication, limits or rewriting.
      routes: [
        { name: 'passthrough', path: `${PASS_THROUGH_PREFIX}/*`, upstream: 'imgproxy', auth: 'none', stripPrefix: PASS_THROUGH_PREFIX, methods: ['GET'] },
        { name: 'cached', path: `${CACHED_PREFIX}/*`, upstream: 'imgproxy', auth: 'api-key', stripPrefix: CACHED_PREFIX, methods: ['GET'], cache: { ttlSeconds: 3600 } },
      ],
      // `gateway` measures the proxy path; the cache is measured on the `cached` route.
      cache: { enabled: false },
    };
    const gateway = await spawnParticipant('gateway', 'gateway', { BENCH_GATEWAY_CONFIG: JSON.stringify(gatewayConfig) });
    participants.push(gateway);
    const rssAtStart = (await usageOf(gateway)).rss;

    const apiKey = { 'x-api-key': await createApiKey(gateway.url) };
    const allTargets: Target[] = [
      { name: 'direct', url: backend.url + IMAGE_PATH, headers: {}, process: backend },
      { name: 'baseline', url: baseline.url + IMAGE_PATH, headers: {}, process: baseline },
      { name: 'gateway', url: `${gateway.url}/i${IMAGE_PATH}`, headers: apiKey, process: gateway },
      { name: 'gateway-no-auth', url: gateway.url + PASS_THROUGH_PREFIX + IMAGE_PATH, headers: {}, process: gateway },
      { name: 'gateway-cache-hit', url: gateway.url + CACHED_PREFIX + IMAGE_PATH, headers: apiKey, process: gateway },
      { name: 'gateway-cache-miss', url: gateway.url + CACHED_PREFIX + IMAGE_PATH, headers: apiKey, process: gateway, uniqueQuery: true },
    ];
    const full = allTargets[2];
    const targets = allTargets.filter((t) => !options.targets || options.targets.includes(t.name));

    // Warm-up: JIT, connection pools, the key cache, the tenant's month view.
    for (const target of targets) {
      const warm = await load(target, options, 2);
      if (warm.non2xx > 0 || warm.errors > 0) throw new Error(`${target.name} answered ${warm.non2xx} non-2xx and ${warm.errors} errors while warming up`);
    }
    const afterWarmUp = await usageOf(gateway);
    const redisRoundTrips = await countRedisRoundTrips(full, gateway, redis.url, redis.prefix);
    const memory = {
      gateway: await streamingMemoryCheck(gateway, `${gateway.url}/i${LARGE_PATH}`, apiKey),
      baseline: await streamingMemoryCheck(baseline, baseline.url + LARGE_PATH, {}),
    };

    const samples: Sample[] = [];
    for (let round = 1; round <= options.rounds; round++) {
      // Alternate the order each round so no target always runs right after another.
      const order = round % 2 ? targets : [...targets].reverse();
      for (const target of order) {
        const before = await usageOf(target.process);
        const result = await load(target, options);
        const after = await usageOf(target.process);
        const requests = result.requests.total;
        samples.push({
          target: target.name,
          round,
          requestsPerSecond: Math.round(result.requests.average),
          p50: result.latency.p50,
          p99: result.latency.p99,
          requests,
          errors: result.errors,
          non2xx: result.non2xx,
          cpuMicrosPerRequest: target.name === 'direct' ? undefined : Math.round((after.cpuMicros - before.cpuMicros) / Math.max(1, requests)),
          rssMiB: mib(after.rss),
          redisWritesPerRequest:
            after.redisWrites === undefined ? undefined : round2((after.redisWrites - (before.redisWrites ?? 0)) / Math.max(1, requests)),
        });
        process.stdout.write(
          `round ${round} ${target.name.padEnd(18)} ${String(Math.round(result.requests.average)).padStart(6)} req/s  p50 ${result.latency.p50} ms  p99 ${result.latency.p99} ms\n`,
        );
      }
    }
    const steady = await usageOf(gateway);
    // Only collects when the gateway runs with --expose-gc (BENCH_GATEWAY_NODE_OPTIONS).
    const collected = await usageOf(gateway, true);

    const summary: Record<string, Summary> = {};
    for (const t of targets) {
      const of = samples.filter((s) => s.target === t.name);
      const cpu = of.map((s) => s.cpuMicrosPerRequest).filter((v): v is number => v !== undefined);
      summary[t.name] = {
        requestsPerSecond: median(of.map((s) => s.requestsPerSecond)),
        p50Ms: median(of.map((s) => s.p50)),
        p99Ms: median(of.map((s) => s.p99)),
        cpuMicrosPerRequest: cpu.length ? median(cpu) : undefined,
        rssMiB: Math.max(...of.map((s) => s.rssMiB)),
        errors: of.reduce((n, s) => n + s.errors + s.non2xx, 0),
      };
    }
    const ratios: Record<string, ReturnType<typeof ratiosOf>> = {};
    for (const name of ['gateway', 'gateway-no-auth', 'gateway-cache-hit', 'gateway-cache-miss']) {
      if (summary[name] && summary.baseline) ratios[name] = ratiosOf(summary[name], summary.baseline);
    }
    const underLoad = samples.filter((s) => s.target === 'gateway').map((s) => s.redisWritesPerRequest ?? 0);
    const gatewayMemory = {
      rssAtStartMiB: mib(rssAtStart),
      rssAfterWarmUpMiB: mib(afterWarmUp.rss),
      rssSteadyMiB: mib(steady.rss),
      rssMaxMiB: Math.max(mib(steady.rss), ...samples.filter((s) => s.target.startsWith('gateway')).map((s) => s.rssMiB)),
      heapUsedSteadyMiB: mib(steady.heapUsed),
      afterFullGc: (process.env.BENCH_GATEWAY_NODE_OPTIONS ?? '').includes('--expose-gc') ? { rssMiB: mib(collected.rss), heapUsedMiB: mib(collected.heapUsed) } : undefined,
    };
    const result = {
      at: new Date(startedAt).toISOString(),
      durationSeconds: Math.round((Date.now() - startedAt) / 1000),
      options,
      environment: {
        node: process.version,
        gatewayNodeOptions: process.env.BENCH_GATEWAY_NODE_OPTIONS ?? '',
        database: `fresh database on ${database.server}`,
        redis: `${redactUrl(redis.url)} prefix ${redis.prefix}`,
        bodyBytes: IMAGE_BYTES,
      },
      summary,
      ratios,
      targets: { requestsPerSecondRatio: '≥ 0.5 (aim 0.75)', cpuRatio: '≤ 2', p99DeltaMs: '≤ 10', rssMiB: '< 150' },
      gatewayMemory,
      redisRoundTrips: { ...redisRoundTrips, socketWritesPerRequestUnderLoad: median(underLoad) },
      streamingMemoryCheck: memory,
      samples,
    };
    const dir = join(projectRoot(), 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `bench-${result.at.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify(result, null, 2));

    const out = (line: string) => process.stdout.write(`${line}\n`);
    out('\n                       req/s   p50 ms   p99 ms   CPU µs/req   RSS MiB');
    for (const [name, s] of Object.entries(summary)) {
      out(
        `${name.padEnd(19)} ${String(s.requestsPerSecond).padStart(8)} ${String(s.p50Ms).padStart(8)} ${String(s.p99Ms).padStart(8)} ${String(s.cpuMicrosPerRequest ?? '-').padStart(12)} ${String(s.rssMiB).padStart(9)}`,
      );
    }
    for (const [name, r] of Object.entries(ratios)) {
      out(`${name}/baseline: ${r.requestsPerSecond}× req/s, ${r.cpuMicrosPerRequest}× CPU per request, p99 ${r.p99DeltaMs >= 0 ? '+' : ''}${r.p99DeltaMs} ms`);
    }
    out(
      `gateway RSS: ${gatewayMemory.rssAtStartMiB} MiB at start, ${gatewayMemory.rssAfterWarmUpMiB} after warm-up, ${gatewayMemory.rssSteadyMiB} at the end ` +
        `(max ${gatewayMemory.rssMaxMiB}; heap used ${gatewayMemory.heapUsedSteadyMiB})` +
        (gatewayMemory.afterFullGc ? `; after a full GC: RSS ${gatewayMemory.afterFullGc.rssMiB}, heap used ${gatewayMemory.afterFullGc.heapUsedMiB}` : ''),
    );
    out(
      `Redis per proxied request: ${redisRoundTrips.roundTripsPerRequest} round trips, ${redisRoundTrips.commandsPerRequest} commands ` +
        `(${redisRoundTrips.method}); under load ${result.redisRoundTrips.socketWritesPerRequestUnderLoad} socket writes per request`,
    );
    out(
      `64 MiB streamed through the gateway in ${memory.gateway.seconds.toFixed(2)} s: RSS ${memory.gateway.rssBeforeMiB} → peak ${memory.gateway.rssPeakMiB} MiB ` +
        `(+${memory.gateway.rssGrowthMiB} MiB), complete: ${memory.gateway.complete}; baseline +${memory.baseline.rssGrowthMiB} MiB`,
    );
    out(`database: ${result.environment.database}; redis: ${result.environment.redis}; result: ${file}`);
  } finally {
    for (const participant of participants.reverse()) await stop(participant).catch(() => participant.child.kill('SIGKILL'));
    await database.cleanup();
    await redis.cleanup();
  }
}

main().catch((error: Error) => {
  process.stderr.write(`bench failed: ${error.stack ?? error.message}\n`);
  process.exit(1);
});
