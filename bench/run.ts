/**
 * `npm run bench`: the gateway and its peers in one run, each in its own process, measured in
 * interleaved rounds so machine noise hits every target alike; ratios are to the bare
 * node:http + undici pass-through proxy (the yardstick). Targets (bench/README.md):
 *
 *   direct              the backend itself
 *   baseline            node:http + undici pass-through (bench/baseline-proxy.ts)
 *   reply-from          bare Fastify + @fastify/reply-from
 *   nest                a minimal NestJS app on Fastify, one handler streaming through undici
 *   gateway             the full image pipeline on /i/*, rateLimit policy exact
 *   gateway-local-sync  the same with imageRoutes.header.rateLimit.policy: local-sync
 *   gateway-no-auth     the gateway process of `gateway` on a configured route without auth
 *   gateway-cache-hit   /i/* answered from the response cache (only once the gateway says HIT)
 *   gateway-workers-2   the full pipeline with WORKERS=2 (primary and workers counted together)
 *
 * Options: --rounds N (3) --duration S (4) --warmup S (2) --connections N (50) --log-level L (warn)
 *          --targets a,b (only these; the baseline is always loaded, ratios need it)
 *          --quick (2 rounds of 2 s, 1 s warm-up) --no-docs (leave docs/performance.md alone)
 * PostgreSQL: TEST_DATABASE_URL, else DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres.
 * Redis:      BENCH_REDIS_URL, else a private redis-server started here, else REDIS_URL /
 *             TEST_REDIS_URL / redis://127.0.0.1:6379 (shared: its counters include other clients).
 * BENCH_GATEWAY_NODE_OPTIONS="--cpu-prof --cpu-prof-dir=bench/results" profiles the gateways.
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
import { STEP_TIMINGS_ENV } from '../src/gateway/step-timings';
import { IMAGE_BYTES, LARGE_BYTES, LARGE_SOURCE } from './bench-backend';
import type { Usage } from './participant';
import { type RedisStats, redisDelta, redisStats, startPrivateRedis } from './redis-server';
import { type BenchResult, type StepFigure, type TargetSummary, renderMarkdown, renderTable, stepBudget, updatePerformanceDoc } from './report';

interface Options {
  rounds: number;
  duration: number;
  warmup: number;
  connections: number;
  logLevel: string;
  targets?: string[];
  docs: boolean;
}

interface Participant {
  name: string;
  child: ChildProcess;
  url: string;
}

interface TargetDef {
  name: string;
  participant: string;
  path: string;
  key: boolean;
  /** The compiled route whose chain the step timings are read from. */
  route?: string;
  /** Set when the target cannot be measured on this build, with the reason. */
  unavailable?: string;
}

interface Target extends TargetDef {
  url: string;
  headers: Record<string, string>;
  process: Participant;
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
  cpuMicrosPerRequest: number;
  rssPeakMiB: number;
  redisWritesPerRequest?: number;
  redisCommandsPerRequest?: number;
  redisCpuMicrosPerRequest?: number;
  timingsNanos?: Record<string, number>;
}

const ADMIN_TOKEN = randomBytes(24).toString('base64url');
const IMAGE_PATH = '/insecure/rs:fit:300:300/plain/local:///bench.jpg';
const LARGE_PATH = `/insecure/plain/local:///${LARGE_SOURCE}`;
const DEFAULT_DATABASE = 'postgres://postgres@127.0.0.1:5432/postgres';
const DEFAULT_REDIS = 'redis://127.0.0.1:6379';
/** Prefix of the configured pass-through route of the `gateway-no-auth` target. */
const PASS_THROUGH_PREFIX = '/passthrough';
/** Requests sent one at a time to count Redis round trips. */
const PROBE_REQUESTS = 200;
/** How often the RSS of the loaded process is sampled for its peak. */
const RSS_SAMPLE_MS = 250;

const TARGETS: TargetDef[] = [
  { name: 'direct', participant: 'backend', path: IMAGE_PATH, key: false },
  { name: 'baseline', participant: 'baseline', path: IMAGE_PATH, key: false },
  { name: 'reply-from', participant: 'reply-from', path: IMAGE_PATH, key: false },
  { name: 'nest', participant: 'nest', path: IMAGE_PATH, key: false },
  { name: 'gateway', participant: 'gateway', path: `/i${IMAGE_PATH}`, key: true, route: 'proxy' },
  { name: 'gateway-local-sync', participant: 'gateway-local-sync', path: `/i${IMAGE_PATH}`, key: true, route: 'proxy' },
  { name: 'gateway-no-auth', participant: 'gateway', path: PASS_THROUGH_PREFIX + IMAGE_PATH, key: false, route: 'passthrough' },
  { name: 'gateway-cache-hit', participant: 'gateway-cache', path: `/i${IMAGE_PATH}`, key: true, route: 'proxy' },
  { name: 'gateway-workers-2', participant: 'gateway-workers-2', path: `/i${IMAGE_PATH}`, key: true, route: 'proxy' },
];

function parseOptions(argv: string[]): Options {
  const value = (name: string, fallback: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 && argv[i + 1] ? argv[i + 1] : fallback;
  };
  const quick = argv.includes('--quick');
  const targets = argv.includes('--targets') ? value('targets', '').split(',').filter(Boolean) : undefined;
  const unknown = targets?.filter((name) => !TARGETS.some((t) => t.name === name)) ?? [];
  if (unknown.length) throw new Error(`unknown target(s) ${unknown.join(', ')}; known: ${TARGETS.map((t) => t.name).join(', ')}`);
  return {
    rounds: Number(value('rounds', quick ? '2' : '3')),
    duration: Number(value('duration', quick ? '2' : '4')),
    warmup: Number(value('warmup', quick ? '1' : '2')),
    connections: Number(value('connections', '50')),
    logLevel: value('log-level', 'warn'),
    // The yardstick is always there: every ratio is to it.
    targets: targets && !targets.includes('baseline') ? [...targets, 'baseline'] : targets,
    docs: !argv.includes('--no-docs'),
  };
}

function spawnParticipant(name: string, script: string, args: string[], env: Record<string, string>, execArgv: string[] = []): Promise<Participant> {
  const child = fork(join(__dirname, script), args, { env: { ...process.env, ...env }, execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code} before it was ready`)));
    child.once('message', (message: { type: string; url: string }) => {
      if (message.type === 'ready') resolve({ name, child, url: message.url });
    });
  });
}

let usageRequests = 0;

/** The participant's CPU time and memory (a primary's include its workers'), and its counters. */
function usageOf(participant: Participant, gc = false): Promise<Usage> {
  const id = ++usageRequests;
  return new Promise((resolve) => {
    const onMessage = (message: Usage & { type: string; id?: number }) => {
      if (message.type !== 'usage' || message.id !== id) return;
      participant.child.off('message', onMessage);
      resolve(message);
    };
    participant.child.on('message', onMessage);
    participant.child.send({ type: 'usage', id, gc });
  });
}

async function stop(participant: Participant): Promise<void> {
  if (participant.child.exitCode !== null) return;
  participant.child.removeAllListeners('exit');
  const exited = new Promise((resolve) => participant.child.once('exit', resolve));
  participant.child.send({ type: 'stop' });
  const timer = setTimeout(() => participant.child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

function load(target: Target, options: Options, duration: number) {
  return autocannon({ url: target.url, connections: options.connections, duration, headers: target.headers, pipelining: 1 });
}

/** Peak RSS of `participant` while `work` runs, sampled every RSS_SAMPLE_MS. */
async function withPeakRss<T>(participant: Participant, work: Promise<T>): Promise<{ result: T; peak: number }> {
  let peak = 0;
  let running = true;
  const sampler = (async () => {
    while (running) {
      peak = Math.max(peak, (await usageOf(participant)).rss);
      await new Promise((resolve) => setTimeout(resolve, RSS_SAMPLE_MS));
    }
  })();
  const result = await work;
  running = false;
  await sampler;
  peak = Math.max(peak, (await usageOf(participant)).rss);
  return { result, peak };
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

/**
 * The Redis the gateways use: BENCH_REDIS_URL, else a private server (clean INFO counters), else
 * the shared one, with a key prefix of the run's own whose keys are removed afterwards.
 */
async function prepareRedis(): Promise<{ url: string; prefix: string; shared: boolean; client: Redis; cleanup: () => Promise<void> }> {
  const own = process.env.BENCH_REDIS_URL ? undefined : await startPrivateRedis();
  const url = process.env.BENCH_REDIS_URL ?? own?.url ?? process.env.REDIS_URL ?? process.env.TEST_REDIS_URL ?? DEFAULT_REDIS;
  const prefix = `igw-bench-${Date.now().toString(36)}:`;
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: 3_000 });
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    client.disconnect();
    await own?.stop();
    throw new Error(`Redis at ${redactUrl(url)} does not answer (${(error as Error).message}); set BENCH_REDIS_URL or REDIS_URL, or install redis-server`);
  }
  return {
    url,
    prefix,
    shared: !own,
    client,
    cleanup: async () => {
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        if (keys.length) await client.unlink(...keys);
        cursor = next;
      } while (cursor !== '0');
      await client.quit();
      await own?.stop();
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
 * Redis cost of one proxied request with no other request in flight, PROBE_REQUESTS times:
 * round trips = socket writes on the gateway's Redis command connection (each write is one round
 * trip; commands sent together share it), commands = INFO commandstats (inside scripts included),
 * and of those, the ones the gateway sent itself as a Redis MONITOR sees them (naming the prefix).
 */
async function probeRedis(target: Target, redis: { url: string; prefix: string; client: Redis }) {
  const connection = new Redis(redis.url);
  const monitor = await connection.monitor();
  // ioredis can take the first lines of a busy MONITOR for replies ("Command queue state error"):
  // those lines are lost to the count, which only says which commands the gateway sent itself.
  monitor.on('error', () => undefined);
  connection.on('error', () => undefined);
  let sent = 0;
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (source !== 'lua' && args.some((arg) => arg.startsWith(redis.prefix))) sent++;
  });
  const before = await usageOf(target.process);
  const statsBefore = await redisStats(redis.client);
  for (let i = 0; i < PROBE_REQUESTS; i++) {
    const res = await request(target.url, { headers: target.headers });
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`Redis probe: ${target.name} answered ${res.statusCode}`);
  }
  // Work after the response (usage counts) leaves a moment later.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const after = await usageOf(target.process);
  const delta = redisDelta(statsBefore, await redisStats(redis.client));
  monitor.disconnect();
  connection.disconnect();
  return {
    requests: PROBE_REQUESTS,
    roundTripsPerRequest: round2(((after.redisWrites ?? 0) - (before.redisWrites ?? 0)) / PROBE_REQUESTS),
    commandsPerRequest: round2(delta.commands / PROBE_REQUESTS),
    commandsSentPerRequest: round2(sent / PROBE_REQUESTS),
    // No Redis CPU here: feeding the MONITOR connection costs Redis more than the commands do.
    byCommand: Object.fromEntries(Object.entries(delta.byCommand).map(([name, n]) => [name, round2(n / PROBE_REQUESTS)])),
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

/** Whether the gateway answers a repeated image request from its cache; the reason when not. */
async function cacheHitProblem(url: string, headers: Record<string, string>): Promise<string | undefined> {
  let status = '';
  for (let i = 0; i < 3; i++) {
    const res = await request(url, { headers });
    await res.body.dump();
    if (res.statusCode !== 200) return `the gateway answered ${res.statusCode}`;
    status = String(res.headers['x-cache-status'] ?? '');
    if (status === 'HIT') return undefined;
  }
  return `not available: the gateway does not answer X-Cache-Status: HIT on /i/* yet (got ${status ? `"${status}"` : 'no X-Cache-Status'})`;
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

function nanosDelta(before: Usage, after: Usage): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, figures] of Object.entries(after.timings ?? {})) out[name] = figures.nanos - (before.timings?.[name]?.nanos ?? 0);
  return out;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const startedAt = Date.now();
  const wanted = TARGETS.filter((t) => !options.targets || options.targets.includes(t.name));
  const needs = new Set(wanted.map((t) => t.participant));
  const dataDir = mkdtempSync(join(tmpdir(), 'igw-bench-'));
  const database = await prepareDatabase();
  const redis = await prepareRedis().catch(async (error: Error) => {
    await database.cleanup();
    throw error;
  });
  const participants = new Map<string, Participant>();
  const stopAll = async () => {
    for (const participant of [...participants.values()].reverse()) await stop(participant).catch(() => participant.child.kill('SIGKILL'));
  };
  // Interrupted (Ctrl-C, a timeout): no participant, private Redis or database outlives the run.
  const interrupted = (code: number) => {
    for (const participant of participants.values()) participant.child.kill('SIGKILL');
    void Promise.allSettled([database.cleanup(), redis.cleanup()]).finally(() => process.exit(code));
  };
  process.once('SIGINT', () => interrupted(130));
  process.once('SIGTERM', () => interrupted(143));
  process.once('uncaughtException', (error) => {
    process.stderr.write(`bench failed: ${error.stack ?? error.message}\n`);
    interrupted(1);
  });
  try {
    const backend = await spawnParticipant('backend', 'child.js', ['backend'], {});
    participants.set('backend', backend);
    const gatewayConfig = (extra: Record<string, unknown> = {}) => ({
      dataDir,
      database: { url: database.url, poolSize: 10, migrationsRun: true },
      redis: { url: redis.url, keyPrefix: redis.prefix },
      security: { adminToken: ADMIN_TOKEN, keyPepper: 'bench-pepper-0123456789abcdef', secretsKey: 'ab'.repeat(32) },
      backends: [{ name: 'bench', url: backend.url, weight: 1 }],
      // The IP and route buckets are checked on every request but must not be what is measured.
      rateLimit: { ip: { perMinute: 1_000_000_000 }, routes: { proxy: { perMinute: 1_000_000_000 } } },
      logging: { level: options.logLevel },
      // Measured apart (gateway-cache-hit): the other gateway targets go to the backend every time.
      cache: { enabled: false },
      // The same process and proxy on a configured route without authentication, limits or rewriting.
      routes: [{ name: 'passthrough', path: `${PASS_THROUGH_PREFIX}/*`, upstream: 'imgproxy', auth: 'none', stripPrefix: PASS_THROUGH_PREFIX, methods: ['GET'] }],
      ...extra,
    });
    const gatewayNodeOptions = (process.env.BENCH_GATEWAY_NODE_OPTIONS ?? '').split(' ').filter(Boolean);
    const spawnGateway = (name: string, config: Record<string, unknown>, workers = 1) =>
      spawnParticipant(name, 'gateway-child.js', [], { BENCH_GATEWAY_CONFIG: JSON.stringify(config), BENCH_WORKERS: String(workers), [STEP_TIMINGS_ENV]: '1' }, gatewayNodeOptions);

    const peers = (['baseline', 'reply-from', 'nest'] as const).filter((name) => needs.has(name));
    // The first gateway migrates the database alone; the others start on it together.
    const [first] = await Promise.all([
      spawnGateway('gateway', gatewayConfig()),
      ...peers.map(async (name) => participants.set(name, await spawnParticipant(name, 'child.js', [name], { BENCH_UPSTREAM: backend.url }))),
    ]);
    participants.set('gateway', first);
    const others: [string, Record<string, unknown>, number][] = [
      ['gateway-local-sync', gatewayConfig({ imageRoutes: { header: { rateLimit: { policy: 'local-sync' } } } }), 1],
      ['gateway-cache', gatewayConfig({ cache: { enabled: true } }), 1],
      ['gateway-workers-2', gatewayConfig(), 2],
    ];
    await Promise.all(
      others.filter(([name]) => needs.has(name)).map(async ([name, config, workers]) => participants.set(name, await spawnGateway(name, config, workers))),
    );

    // At rest: started, nothing sent yet.
    const rssAtRest = new Map<string, number>();
    for (const [name, participant] of participants) rssAtRest.set(name, (await usageOf(participant)).rss);

    const apiKey = { 'x-api-key': await createApiKey(first.url) };
    const targets: Target[] = wanted.map((def) => {
      const owner = participants.get(def.participant)!;
      return { ...def, process: owner, url: owner.url + def.path, headers: def.key ? apiKey : {} };
    });
    const cacheTarget = targets.find((t) => t.name === 'gateway-cache-hit');
    if (cacheTarget) {
      cacheTarget.unavailable = await cacheHitProblem(cacheTarget.url, cacheTarget.headers);
      if (cacheTarget.unavailable) {
        await stop(cacheTarget.process);
        participants.delete(cacheTarget.participant);
      }
    }
    const measured = targets.filter((t) => !t.unavailable);

    // Warm-up: JIT, connection pools, the key cache, the tenant's month view.
    for (const target of measured) {
      const warm = await load(target, options, options.warmup);
      if (warm.non2xx > 0 || warm.errors > 0) throw new Error(`${target.name} answered ${warm.non2xx} non-2xx and ${warm.errors} errors while warming up`);
    }
    const redisProbes: Record<string, Awaited<ReturnType<typeof probeRedis>>> = {};
    for (const target of measured.filter((t) => t.key)) redisProbes[target.name] = await probeRedis(target, redis);

    const samples: Sample[] = [];
    for (let round = 1; round <= options.rounds; round++) {
      // Alternate the order each round so no target always runs right after another.
      const order = round % 2 ? measured : [...measured].reverse();
      for (const target of order) {
        const gatewayProcess = target.route !== undefined;
        const before = await usageOf(target.process);
        const statsBefore: RedisStats | undefined = gatewayProcess ? await redisStats(redis.client) : undefined;
        const { result, peak } = await withPeakRss(target.process, load(target, options, options.duration));
        const after = await usageOf(target.process);
        const delta = statsBefore ? redisDelta(statsBefore, await redisStats(redis.client)) : undefined;
        const requests = Math.max(1, result.requests.total);
        samples.push({
          target: target.name,
          round,
          requestsPerSecond: Math.round(result.requests.average),
          p50: result.latency.p50,
          p99: result.latency.p99,
          requests: result.requests.total,
          errors: result.errors,
          non2xx: result.non2xx,
          cpuMicrosPerRequest: Math.round((after.cpuMicros - before.cpuMicros) / requests),
          rssPeakMiB: mib(peak),
          redisWritesPerRequest: gatewayProcess ? round2(((after.redisWrites ?? 0) - (before.redisWrites ?? 0)) / requests) : undefined,
          redisCommandsPerRequest: delta ? round2(delta.commands / requests) : undefined,
          redisCpuMicrosPerRequest: delta ? round2(delta.cpuMicros / requests) : undefined,
          timingsNanos: gatewayProcess ? nanosDelta(before, after) : undefined,
        });
        process.stdout.write(
          `round ${round} ${target.name.padEnd(19)} ${String(Math.round(result.requests.average)).padStart(6)} req/s  p50 ${result.latency.p50} ms  p99 ${result.latency.p99} ms\n`,
        );
      }
    }
    const atEnd = new Map<string, Usage>();
    for (const [name, participant] of participants) atEnd.set(name, await usageOf(participant, true));
    // Last, so the memory it leaves behind (freed chunks V8 has not given back) is in no RSS figure above.
    const gatewayTarget = measured.find((t) => t.name === 'gateway');
    const baselineTarget = measured.find((t) => t.name === 'baseline')!;
    const streaming = gatewayTarget
      ? {
          gateway: await streamingMemoryCheck(gatewayTarget.process, `${gatewayTarget.process.url}/i${LARGE_PATH}`, apiKey),
          baseline: await streamingMemoryCheck(baselineTarget.process, baselineTarget.process.url + LARGE_PATH, {}),
        }
      : undefined;

    const summary: Record<string, TargetSummary> = {};
    for (const t of targets) {
      if (t.unavailable) {
        summary[t.name] = { unavailable: t.unavailable };
        continue;
      }
      const of = samples.filter((s) => s.target === t.name);
      const defined = (pick: (s: Sample) => number | undefined) => of.map(pick).filter((v): v is number => v !== undefined);
      const redisCommands = defined((s) => s.redisCommandsPerRequest);
      const redisCpu = defined((s) => s.redisCpuMicrosPerRequest);
      const writes = defined((s) => s.redisWritesPerRequest);
      summary[t.name] = {
        requestsPerSecond: Math.round(median(of.map((s) => s.requestsPerSecond))),
        p50Ms: round2(median(of.map((s) => s.p50))),
        p99Ms: round2(median(of.map((s) => s.p99))),
        cpuMicrosPerRequest: Math.round(median(of.map((s) => s.cpuMicrosPerRequest))),
        rssPeakMiB: Math.max(...of.map((s) => s.rssPeakMiB)),
        rssAtRestMiB: mib(rssAtRest.get(t.participant) ?? 0),
        processes: atEnd.get(t.participant)?.processes ?? 1,
        errors: of.reduce((n, s) => n + s.errors + s.non2xx, 0),
        redis: t.route
          ? {
              commandsPerRequest: redisCommands.length ? round2(median(redisCommands)) : undefined,
              cpuMicrosPerRequest: redisCpu.length ? round2(median(redisCpu)) : undefined,
              socketWritesPerRequest: writes.length ? round2(median(writes)) : undefined,
              roundTripsPerRequest: redisProbes[t.name]?.roundTripsPerRequest,
            }
          : undefined,
      };
    }
    const base = summary.baseline;
    for (const s of Object.values(summary)) {
      if (s.requestsPerSecond === undefined || base.requestsPerSecond === undefined) continue;
      s.ratios = {
        requestsPerSecond: round2(s.requestsPerSecond / base.requestsPerSecond),
        cpuMicrosPerRequest: round2(s.cpuMicrosPerRequest! / base.cpuMicrosPerRequest!),
        p99DeltaMs: round2(s.p99Ms! - base.p99Ms!),
      };
    }

    // Per-step µs per request over every round, per target whose process keeps step timings.
    const steps: Record<string, StepFigure[]> = {};
    for (const t of measured.filter((m) => m.route)) {
      const of = samples.filter((s) => s.target === t.name);
      const requests = of.reduce((n, s) => n + s.requests, 0);
      const totals: Record<string, number> = {};
      for (const s of of) for (const [name, nanos] of Object.entries(s.timingsNanos ?? {})) totals[name] = (totals[name] ?? 0) + nanos;
      steps[t.name] = stepBudget(totals, t.route!, requests, summary[t.name].cpuMicrosPerRequest!, summary.baseline.cpuMicrosPerRequest!);
    }

    const localSync = redisProbes['gateway-local-sync'];
    const exact = redisProbes.gateway;
    const notes: string[] = [];
    if (localSync && exact && localSync.roundTripsPerRequest >= exact.roundTripsPerRequest) {
      notes.push(
        `gateway-local-sync: rateLimit.policy local-sync is not honoured by this build yet (${localSync.roundTripsPerRequest} Redis round trips per request, as exact's ${exact.roundTripsPerRequest}).`,
      );
    }
    if (redis.shared) notes.push('Redis: shared server (no redis-server binary to start a private one): its INFO counters include other clients.');
    for (const t of targets) if (t.unavailable) notes.push(`${t.name}: ${t.unavailable}.`);

    const result: BenchResult = {
      at: new Date(startedAt).toISOString(),
      durationSeconds: Math.round((Date.now() - startedAt) / 1000),
      options,
      environment: {
        node: process.version,
        gatewayNodeOptions: process.env.BENCH_GATEWAY_NODE_OPTIONS ?? '',
        database: `fresh database on ${database.server}`,
        redis: redis.shared ? `${redactUrl(redis.url)} (shared) prefix ${redis.prefix}` : 'private redis-server started by the run',
        bodyBytes: IMAGE_BYTES,
        connections: options.connections,
      },
      summary,
      steps,
      redisProbes,
      notes,
      streamingMemoryCheck: streaming,
      memoryAtEnd: Object.fromEntries([...atEnd].map(([name, u]) => [name, { rssMiB: mib(u.rss), heapUsedMiB: mib(u.heapUsed) }])),
      samples,
    };
    const dir = join(projectRoot(), 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `bench-${result.at.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify(result, null, 2));
    const markdown = renderMarkdown(result);
    writeFileSync(join(dir, 'latest.md'), markdown);
    const complete = !options.targets && targets.every((t) => summary[t.name]);
    const docsUpdated = options.docs && complete ? updatePerformanceDoc(join(projectRoot(), 'docs', 'performance.md'), result) : false;

    process.stdout.write(`\n${renderTable(result)}\n`);
    if (streaming) {
      process.stdout.write(
        `64 MiB streamed through the gateway in ${streaming.gateway.seconds.toFixed(2)} s: RSS ${streaming.gateway.rssBeforeMiB} → peak ${streaming.gateway.rssPeakMiB} MiB ` +
          `(+${streaming.gateway.rssGrowthMiB}), complete: ${streaming.gateway.complete}; baseline +${streaming.baseline.rssGrowthMiB} MiB\n`,
      );
    }
    process.stdout.write(
      `results: ${file}, bench/results/latest.md${docsUpdated ? ', docs/performance.md' : ' (docs/performance.md left as is: a partial run or --no-docs)'}; ${result.durationSeconds} s\n`,
    );
  } finally {
    await stopAll();
    await database.cleanup();
    await redis.cleanup();
  }
}

main().catch((error: Error) => {
  process.stderr.write(`bench failed: ${error.stack ?? error.message}\n`);
  process.exit(1);
});
