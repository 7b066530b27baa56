/**
 * The response cache's own figures (docs/cache.md), runnable alone (`npm run build && node
 * dist/bench/cache-hit.js`) or from the main benchmark through `benchCache()`:
 *
 *   hit path    a cache hit (bench/cache-child.ts) against the bare undici pass-through proxy in
 *               front of the same backend, interleaved rounds, each in its own process: req/s, CPU
 *               µs per request, RSS, and the ratio to the baseline (target ≥ 1.0×);
 *   lookup      the cost of ProxyCache.lookup on a hit, in process (no socket);
 *   coalescing  N concurrent identical requests for an image a slow backend takes 200 ms to
 *               render: how many reached the backend.
 *
 * Options: --rounds N (3) --duration S (4) --connections N (50) --concurrent N (100)
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { type IncomingMessage, type ServerResponse, createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import 'reflect-metadata';
import autocannon from 'autocannon';
import { Pool } from 'undici';
import { GatewayException } from '../src/common/errors/gateway.exception';
import { GatewayConfig } from '../src/config/gateway-config';
import type { CacheFill } from '../src/plugins/proxy-cache/cache-lookup';
import { feedFill } from '../src/proxy/feed-fill';
import { ProxyCache } from '../src/plugins/proxy-cache/proxy-cache';

export interface CacheBenchOptions {
  rounds: number;
  duration: number;
  connections: number;
  concurrent: number;
}

interface Participant {
  name: string;
  child: ChildProcess;
  url: string;
}

interface Usage {
  cpuMicros: number;
  rss: number;
  fetches?: number;
}

export interface CacheBenchResult {
  targets: Record<string, { requestsPerSecond: number; cpuMicrosPerRequest: number; p99Ms: number; rssMiB: number; errors: number }>;
  hitToBaseline: { requestsPerSecond: number; cpuMicrosPerRequest: number };
  lookupMicros: number;
  coalescing: { concurrent: number; backendCalls: number; allAnswered: boolean };
  cacheFetchesDuringLoad: number;
}

const IMAGE_PATH = '/insecure/rs:fit:300:300/plain/local:///bench.jpg';

function spawn(name: string, script: string, args: string[], env: Record<string, string>): Promise<Participant> {
  const child = fork(join(__dirname, script), args, { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code} before it was ready`)));
    child.once('message', (message: { type: string; url: string }) => {
      if (message.type === 'ready') resolve({ name, child, url: message.url });
    });
  });
}

function usageOf(participant: Participant): Promise<Usage> {
  return new Promise((resolve) => {
    participant.child.once('message', (message: Usage) => resolve(message));
    participant.child.send({ type: 'usage' });
  });
}

async function stop(participant: Participant): Promise<void> {
  participant.child.removeAllListeners('exit');
  const exited = once(participant.child, 'exit');
  participant.child.send({ type: 'stop' });
  await exited;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** In process: microseconds per ProxyCache.lookup that hits. */
async function lookupMicros(): Promise<number> {
  const config = new GatewayConfig();
  const cache = new ProxyCache(config);
  const request = {
    tenantId: '6f1d2c3b-0000-4000-8000-000000000001',
    method: 'GET',
    upstreamPath: IMAGE_PATH,
    sourceUrl: 'local:///bench.jpg',
    requestHeaders: { accept: 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8', 'user-agent': 'bench' },
  };
  const first = cache.lookup(request, (fill) => {
    fill.response(200, { 'content-type': 'image/webp', 'cache-control': 'max-age=3600', vary: 'Accept' });
    fill.chunk(Buffer.alloc(8 * 1024));
    fill.end();
  });
  if (first.kind === 'wait') await first.response;
  const n = 1_000_000;
  for (let i = 0; i < 100_000; i++) cache.lookup(request, () => undefined);
  const started = process.hrtime.bigint();
  for (let i = 0; i < n; i++) if (cache.lookup(request, () => undefined).kind !== 'hit') throw new Error('expected a hit');
  return Number(process.hrtime.bigint() - started) / 1e3 / n;
}

/** N concurrent identical requests through the cache in front of a backend that takes 200 ms: backend calls. */
async function coalescing(concurrent: number): Promise<CacheBenchResult['coalescing']> {
  let calls = 0;
  const backend = createServer((_req, res) => {
    calls++;
    setTimeout(() => res.writeHead(200, { 'content-type': 'image/webp', 'cache-control': 'max-age=60' }).end(Buffer.alloc(20 * 1024)), 200);
  });
  backend.listen(0, '127.0.0.1');
  await once(backend, 'listening');
  const pool = new Pool(`http://127.0.0.1:${(backend.address() as AddressInfo).port}`, { connections: concurrent });
  const cache = new ProxyCache(new GatewayConfig());
  const front = createServer((req: IncomingMessage, res: ServerResponse) => {
    const outcome = cache.lookup({ tenantId: 't', method: 'GET', upstreamPath: req.url ?? '/', sourceUrl: req.url ?? '/', requestHeaders: req.headers }, (fill: CacheFill) => {
      pool
        .request({ path: req.url ?? '/', method: 'GET', signal: fill.signal })
        .then((answer) => feedFill(fill, answer))
        .catch(() => fill.fail(new GatewayException('bad_gateway')));
    });
    if (outcome.kind === 'hit') outcome.respond(res);
    else if (outcome.kind === 'wait') outcome.response.then((r) => r.respond(res)).catch(() => res.destroy());
    else res.writeHead(502).end();
  });
  front.listen(0, '127.0.0.1');
  await once(front, 'listening');
  const url = `http://127.0.0.1:${(front.address() as AddressInfo).port}${IMAGE_PATH}`;
  const statuses = await Promise.all(
    Array.from(
      { length: concurrent },
      () =>
        new Promise<number>((resolve) => {
          httpRequest(url, { agent: false }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          })
            .on('error', () => resolve(0))
            .end();
        }),
    ),
  );
  front.close();
  backend.close();
  await pool.close();
  return { concurrent, backendCalls: calls, allAnswered: statuses.every((s) => s === 200) };
}

export async function benchCache(options: CacheBenchOptions): Promise<CacheBenchResult> {
  const backend = await spawn('direct', 'child.js', ['backend'], {});
  const baseline = await spawn('baseline', 'child.js', ['baseline'], { BENCH_UPSTREAM: backend.url });
  const hit = await spawn('cache-hit', 'cache-child.js', [], { BENCH_UPSTREAM: backend.url });
  const targets = [baseline, hit];
  const samples = new Map<string, { rps: number[]; cpu: number[]; p99: number[]; rss: number[]; errors: number }>();
  try {
    for (const target of targets) {
      samples.set(target.name, { rps: [], cpu: [], p99: [], rss: [], errors: 0 });
      await autocannon({ url: target.url + IMAGE_PATH, connections: options.connections, duration: 2, headers: { accept: 'image/webp,*/*' } });
    }
    for (let round = 0; round < options.rounds; round++) {
      const order = round % 2 === 0 ? targets : [...targets].reverse();
      for (const target of order) {
        const before = await usageOf(target);
        const result = await autocannon({ url: target.url + IMAGE_PATH, connections: options.connections, duration: options.duration, headers: { accept: 'image/webp,*/*' } });
        const after = await usageOf(target);
        const s = samples.get(target.name)!;
        const answered = result.requests.total;
        s.rps.push(result.requests.average);
        s.cpu.push((after.cpuMicros - before.cpuMicros) / Math.max(1, answered));
        s.p99.push(result.latency.p99);
        s.rss.push(after.rss / 1048576);
        s.errors += result.errors + result.non2xx;
      }
    }
    const fetched = (await usageOf(hit)).fetches ?? 0;
    const out: CacheBenchResult['targets'] = {};
    for (const [name, s] of samples) {
      out[name] = { requestsPerSecond: Math.round(median(s.rps)), cpuMicrosPerRequest: Math.round(median(s.cpu)), p99Ms: median(s.p99), rssMiB: Math.round(median(s.rss)), errors: s.errors };
    }
    return {
      targets: out,
      hitToBaseline: {
        requestsPerSecond: round2(out['cache-hit'].requestsPerSecond / out.baseline.requestsPerSecond),
        cpuMicrosPerRequest: round2(out['cache-hit'].cpuMicrosPerRequest / out.baseline.cpuMicrosPerRequest),
      },
      lookupMicros: round2(await lookupMicros()),
      coalescing: await coalescing(options.concurrent),
      cacheFetchesDuringLoad: fetched,
    };
  } finally {
    for (const participant of [hit, baseline, backend]) await stop(participant);
  }
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  const value = (name: string, fallback: number) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 && argv[i + 1] ? Number(argv[i + 1]) : fallback;
  };
  benchCache({ rounds: value('rounds', 3), duration: value('duration', 4), connections: value('connections', 50), concurrent: value('concurrent', 100) })
    .then((result) => process.stdout.write(`${JSON.stringify(result, null, 2)}\n`))
    .catch((error: Error) => {
      process.stderr.write(`${error.stack ?? error.message}\n`);
      process.exit(1);
    });
}
