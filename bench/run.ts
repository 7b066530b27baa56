/**
 * `npm run bench`: the gateway against a bare node:http + undici pass-through proxy (the SPEC §2
 * yardstick) and the backend itself, measured interleaved in one run so machine noise hits all
 * three alike. Every participant runs in its own process; the gateway's CPU µs per request and
 * RSS come from its own process.cpuUsage()/memoryUsage(). Then a 64 MiB response streams
 * through the gateway while its RSS is sampled. Only 127.0.0.1, bounded to well under 2 minutes.
 *
 * Options: --rounds N (3) --duration S (4) --connections N (50) --log-level L (warn)
 *          --with-auth   create a tenant and an API key through the admin API and send the key
 * Database: DATABASE_URL (used as is), else TEST_DATABASE_URL (a fresh database is created and
 * dropped), else an embedded PostgreSQL in this runner process (never in the gateway's, so its
 * RSS stays the gateway's). REDIS_URL when given, else in-process counters.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { Client } from 'pg';
import { request } from 'undici';
import { projectRoot } from '../src/common/project-root';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../src/database/embedded-postgres';
import { LARGE_BYTES } from './bench-backend';

interface Options {
  rounds: number;
  duration: number;
  connections: number;
  logLevel: string;
  withAuth: boolean;
}

interface Participant {
  name: string;
  child: ChildProcess;
  url: string;
}

interface Usage {
  cpuMicros: number;
  rss: number;
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
  rssMiB?: number;
}

const ADMIN_TOKEN = randomBytes(24).toString('base64url');
const IMAGE_PATH = '/insecure/rs:fit:300:300/plain/local:///bench.jpg';

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
    withAuth: argv.includes('--with-auth'),
  };
}

function spawnParticipant(name: string, role: string, env: Record<string, string>): Promise<Participant> {
  const script = role === 'gateway' ? 'gateway-child.js' : 'child.js';
  // BENCH_GATEWAY_NODE_OPTIONS, e.g. "--cpu-prof --cpu-prof-dir=bench/results", profiles the gateway.
  const execArgv = role === 'gateway' ? (process.env.BENCH_GATEWAY_NODE_OPTIONS ?? '').split(' ').filter(Boolean) : [];
  const child = fork(join(__dirname, script), [role], { env: { ...process.env, ...env }, execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code} before it was ready`)));
    child.once('message', (message: { type: string; url: string }) => {
      if (message.type === 'ready') resolve({ name, child, url: message.url });
    });
  });
}

function usageOf(participant: Participant): Promise<Usage> {
  return new Promise((resolve) => {
    participant.child.once('message', (message: Usage & { type: string }) => resolve(message));
    participant.child.send({ type: 'usage' });
  });
}

async function stop(participant: Participant): Promise<void> {
  const exited = new Promise((resolve) => participant.child.once('exit', resolve));
  participant.child.send({ type: 'stop' });
  const timer = setTimeout(() => participant.child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

async function load(url: string, headers: Record<string, string>, options: Options, duration = options.duration) {
  return autocannon({ url, connections: options.connections, duration, headers, pipelining: 1 });
}

/** A database for the gateway, and how to get rid of it afterwards. */
async function prepareDatabase(dataDir: string): Promise<{ url: string; poolSize: number; kind: string; cleanup: () => Promise<void> }> {
  if (process.env.DATABASE_URL) return { url: process.env.DATABASE_URL, poolSize: 10, kind: 'DATABASE_URL', cleanup: async () => undefined };
  if (process.env.TEST_DATABASE_URL) {
    const name = `igw_bench_${Date.now().toString(36)}`;
    const admin = new Client({ connectionString: process.env.TEST_DATABASE_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const url = new URL(process.env.TEST_DATABASE_URL);
    url.pathname = `/${name}`;
    return {
      url: url.toString(),
      poolSize: 10,
      kind: 'TEST_DATABASE_URL (fresh database)',
      cleanup: async () => {
        const c = new Client({ connectionString: process.env.TEST_DATABASE_URL });
        await c.connect();
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await c.end();
      },
    };
  }
  const embedded: EmbeddedPostgres = await startEmbeddedPostgres(join(dataDir, 'pg'));
  return { url: embedded.url, poolSize: 1, kind: 'embedded PGlite (in the runner process)', cleanup: () => embedded.close() };
}

/** --with-auth: one tenant and one key, created the way an operator would. */
async function createApiKey(gatewayUrl: string): Promise<string> {
  const admin = async (path: string, body: unknown) => {
    const res = await request(gatewayUrl + path, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const json = (await res.body.json()) as Record<string, unknown>;
    if (res.statusCode >= 300) throw new Error(`--with-auth: POST ${path} answered ${res.statusCode}: ${JSON.stringify(json)}`);
    return json;
  };
  const tenant = await admin('/admin/v1/tenants', { name: 'bench', email: `bench-${Date.now()}@example.com` });
  const key = await admin(`/admin/v1/tenants/${tenant.id as string}/keys`, { name: 'bench' });
  return key.key as string;
}

/**
 * Streams a 64 MiB response through `proxy`, sampling its RSS every 20 ms. Run for the gateway
 * and for the baseline: the peak includes freed-but-not-yet-collected chunk buffers, so the
 * baseline's figure is the floor any Node pass-through pays; buffering would add the whole body.
 */
async function streamingMemoryCheck(proxy: Participant, url: string, headers: Record<string, string>) {
  const gateway = proxy;
  const before = (await usageOf(gateway)).rss;
  let peak = before;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, (await usageOf(gateway)).rss);
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

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const startedAt = Date.now();
  const dataDir = mkdtempSync(join(tmpdir(), 'igw-bench-'));
  const database = await prepareDatabase(dataDir);
  const participants: Participant[] = [];
  try {
    const backend = await spawnParticipant('backend', 'backend', {});
    participants.push(backend);
    const baseline = await spawnParticipant('baseline', 'baseline', { BENCH_UPSTREAM: backend.url });
    participants.push(baseline);
    const gatewayConfig = {
      dataDir,
      database: { url: database.url, poolSize: database.poolSize, migrationsRun: true },
      redis: process.env.REDIS_URL ? { url: process.env.REDIS_URL, keyPrefix: `igw-bench-${Date.now().toString(36)}:` } : {},
      security: { adminToken: ADMIN_TOKEN, keyPepper: randomBytes(24).toString('base64url'), secretsKey: randomBytes(32).toString('hex') },
      backends: [{ name: 'bench', url: backend.url, weight: 1 }],
      // The limits must not be what is measured.
      rateLimit: { ip: { perMinute: 1_000_000_000 }, routes: { proxy: { perMinute: 1_000_000_000 } } },
      logging: { level: options.logLevel },
    };
    const gateway = await spawnParticipant('gateway', 'gateway', { BENCH_GATEWAY_CONFIG: JSON.stringify(gatewayConfig) });
    participants.push(gateway);

    const headers: Record<string, string> = {};
    if (options.withAuth) headers['x-api-key'] = await createApiKey(gateway.url);
    const targets = [
      { name: 'direct', url: backend.url + IMAGE_PATH, process: backend },
      { name: 'baseline', url: baseline.url + IMAGE_PATH, process: baseline },
      { name: 'gateway', url: `${gateway.url}/i${IMAGE_PATH}`, process: gateway },
    ];

    // Warm-up: JIT, connection pools, caches.
    for (const target of targets) {
      const warm = await load(target.url, headers, options, 2);
      if (warm.non2xx > 0 || warm.errors > 0) throw new Error(`${target.name} answered ${warm.non2xx} non-2xx and ${warm.errors} errors while warming up`);
    }
    const memory = await streamingMemoryCheck(gateway, `${gateway.url}/i/large`, headers);
    const baselineMemory = await streamingMemoryCheck(baseline, `${baseline.url}/large`, headers);

    const samples: Sample[] = [];
    for (let round = 1; round <= options.rounds; round++) {
      // Alternate the order each round so no target always runs right after another.
      const order = round % 2 ? targets : [...targets].reverse();
      for (const target of order) {
        const before = await usageOf(target.process);
        const result = await load(target.url, headers, options);
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
        });
        process.stdout.write(`round ${round} ${target.name.padEnd(8)} ${String(Math.round(result.requests.average)).padStart(6)} req/s  p50 ${result.latency.p50} ms  p99 ${result.latency.p99} ms\n`);
      }
    }

    const summary = Object.fromEntries(
      targets.map((t) => {
        const of = samples.filter((s) => s.target === t.name);
        const cpu = of.map((s) => s.cpuMicrosPerRequest).filter((v): v is number => v !== undefined);
        return [
          t.name,
          {
            requestsPerSecond: median(of.map((s) => s.requestsPerSecond)),
            p50Ms: median(of.map((s) => s.p50)),
            p99Ms: median(of.map((s) => s.p99)),
            cpuMicrosPerRequest: cpu.length ? median(cpu) : undefined,
            rssMiB: Math.max(...of.map((s) => s.rssMiB ?? 0)),
            errors: of.reduce((n, s) => n + s.errors + s.non2xx, 0),
          },
        ];
      }),
    ) as Record<string, { requestsPerSecond: number; p50Ms: number; p99Ms: number; cpuMicrosPerRequest?: number; rssMiB: number; errors: number }>;
    const g = summary.gateway;
    const b = summary.baseline;
    const ratios = {
      requestsPerSecond: Math.round((g.requestsPerSecond / b.requestsPerSecond) * 100) / 100,
      cpuMicrosPerRequest: Math.round(((g.cpuMicrosPerRequest ?? 0) / (b.cpuMicrosPerRequest ?? 1)) * 100) / 100,
      p99DeltaMs: g.p99Ms - b.p99Ms,
    };
    const result = {
      at: new Date(startedAt).toISOString(),
      durationSeconds: Math.round((Date.now() - startedAt) / 1000),
      options,
      environment: { node: process.version, database: database.kind, redis: process.env.REDIS_URL ? 'REDIS_URL' : 'in-process', bodyBytes: 8192 },
      summary,
      ratios,
      targets: { requestsPerSecondRatio: '≥ 0.5 (aim 0.75)', cpuRatio: '≤ 2', p99DeltaMs: '≤ 10', rssMiB: '< 150' },
      streamingMemoryCheck: { gateway: memory, baseline: baselineMemory },
      samples,
    };
    const dir = join(projectRoot(), 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `bench-${result.at.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify(result, null, 2));

    process.stdout.write('\n             req/s     p50 ms   p99 ms   CPU µs/req   RSS MiB\n');
    for (const [name, s] of Object.entries(summary)) {
      process.stdout.write(
        `${name.padEnd(10)} ${String(s.requestsPerSecond).padStart(8)} ${String(s.p50Ms).padStart(9)} ${String(s.p99Ms).padStart(8)} ${String(s.cpuMicrosPerRequest ?? '-').padStart(12)} ${String(s.rssMiB).padStart(9)}\n`,
      );
    }
    process.stdout.write(
      `\ngateway/baseline: ${ratios.requestsPerSecond}× req/s, ${ratios.cpuMicrosPerRequest}× CPU per request, p99 ${ratios.p99DeltaMs >= 0 ? '+' : ''}${ratios.p99DeltaMs} ms` +
        `\n64 MiB streamed through the gateway in ${memory.seconds.toFixed(2)} s: RSS ${memory.rssBeforeMiB} → peak ${memory.rssPeakMiB} MiB (+${memory.rssGrowthMiB} MiB), complete: ${memory.complete}; baseline +${baselineMemory.rssGrowthMiB} MiB` +
        `\nauth: ${options.withAuth ? 'tenant API key' : 'none (pipeline guards not yet on the route)'}; database: ${database.kind}; result: ${file}\n`,
    );
  } finally {
    for (const participant of participants.reverse()) await stop(participant).catch(() => participant.child.kill('SIGKILL'));
    await database.cleanup();
  }
}

main().catch((error: Error) => {
  process.stderr.write(`bench failed: ${error.stack ?? error.message}\n`);
  process.exit(1);
});
