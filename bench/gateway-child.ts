/**
 * The gateway in its own process, configured by the runner through BENCH_GATEWAY_CONFIG
 * (overrides of config/production.yaml). With BENCH_WORKERS=N > 1 this process is the primary of
 * the gateway's own cluster supervisor (src/bootstrap/cluster-primary.ts) and forks N workers that
 * run this same file; its usage answer then adds up the primary and every worker. With
 * GATEWAY_STEP_TIMINGS=1 (the runner sets it) the answer carries the per-step counters.
 */
import cluster, { type Worker } from 'node:cluster';
import { createServer } from 'node:net';
import 'reflect-metadata';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { ClusterPrimary } from '../src/bootstrap/cluster-primary';
import { WORKER_INDEX_ENV, applyWorkerShare } from '../src/bootstrap/cluster-plan';
import { loadConfig } from '../src/config/config.loader';
import type { GatewayConfig } from '../src/config/gateway-config';
import { runMigrations } from '../src/database/migration-runner';
import type { GatewayService as GatewayServiceType } from '../src/gateway/gateway.service';
import { installGracefulShutdown } from '../src/bootstrap/graceful-shutdown';
import { serveWorkerMetrics } from '../src/metrics/cluster-metrics';
import { outsideChain } from '../src/gateway/step-timings';
import type { RedisService as RedisServiceType } from '../src/redis/redis.service';
import { type Usage, ownUsage, requiredEnv, serveParticipant } from './participant';
import { chainKey } from './report';

const WORKERS = Number(process.env.BENCH_WORKERS ?? '1');
/** The port a primary shares with its workers. */
const PORT_ENV = 'BENCH_GATEWAY_PORT';

function benchConfig(): GatewayConfig {
  const overrides = JSON.parse(requiredEnv('BENCH_GATEWAY_CONFIG')) as Record<string, unknown>;
  const server = { ...(overrides.server as object), workers: WORKERS };
  // Production settings (config/production.yaml), with the secrets and limits the runner sets.
  return loadConfig({ env: { NODE_ENV: 'production' }, overrides: { ...overrides, server } }).config;
}

/** What one gateway process reports beside its CPU and memory: Redis writes and step timings. */
function gatewayCounters(app: NestFastifyApplication): () => Partial<Usage> {
  // Required here for the same reason as the application (see startApp).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { RedisService } = require('../src/redis/redis.service') as typeof import('../src/redis/redis.service');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { GatewayService } = require('../src/gateway/gateway.service') as typeof import('../src/gateway/gateway.service');
  const redisWrites = countRedisWrites(app.get<RedisServiceType>(RedisService));
  const gateway = app.get<GatewayServiceType>(GatewayService);
  return () => {
    const timings: NonNullable<Usage['timings']> = {};
    for (const route of gateway.current().routes) {
      const chain = route.chain.timings;
      if (!chain) continue;
      chain.names.forEach((name, i) => (timings[chainKey(route.spec.name, name)] = { nanos: chain.nanos[i], calls: chain.calls[i] }));
      const terminal = chain.names.length;
      timings[chainKey(route.spec.name, 'proxy')] = { nanos: chain.nanos[terminal], calls: chain.calls[terminal] };
    }
    Object.assign(timings, outsideChain?.snapshot());
    return { redisWrites: redisWrites(), timings };
  };
}

async function startApp(config: GatewayConfig, port: number): Promise<NestFastifyApplication> {
  // Loaded here, not at the top: the primary of the WORKERS participant never builds the application.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { createGatewayApp } = require('../src/bootstrap/app.factory') as typeof import('../src/bootstrap/app.factory');
  const app = await createGatewayApp(config);
  await app.listen(port, '127.0.0.1');
  return app;
}

function urlOf(app: NestFastifyApplication): string {
  const address = app.getHttpServer().address();
  return `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
}

if (cluster.isWorker) {
  // One worker of the WORKERS participant: the whole gateway, answering the primary's usage requests.
  const config = benchConfig();
  applyWorkerShare(config, Number(process.env[WORKER_INDEX_ENV] ?? 0));
  serveWorkerMetrics();
  void startApp(config, Number(requiredEnv(PORT_ENV))).then((app) => {
    installGracefulShutdown(app, config, async () => undefined);
    const counters = gatewayCounters(app);
    process.on('message', (message: { type?: string; id?: number }) => {
      if (message.type === 'bench:usage') process.send?.({ type: 'bench:usage', id: message.id, ...ownUsage(), ...counters() });
    });
  });
} else if (WORKERS > 1) {
  serveParticipant(`gateway (${WORKERS} workers)`, async () => {
    const config = benchConfig();
    if (config.database.url && config.database.migrationsRun) await runMigrations(config.database.url);
    const port = await freePort();
    const answers = new Map<number, (usage: Usage) => void>();
    const primary = new ClusterPrimary({
      workers: WORKERS,
      shutdownTimeoutMs: config.server.shutdownTimeoutMs,
      logger: { log: () => undefined, warn: (m) => process.stderr.write(`${m}\n`), error: (m) => process.stderr.write(`${m}\n`) },
      exec: __filename,
      execArgv: process.execArgv,
      env: { [PORT_ENV]: String(port) },
      onWorkerMessage: (_worker: Worker, message) => {
        const answer = message as Usage & { type?: string; id?: number };
        if (answer.type === 'bench:usage' && answer.id !== undefined) answers.get(answer.id)?.(answer);
      },
    });
    await primary.start();
    let nextId = 0;
    const ask = (worker: Worker) =>
      new Promise<Usage>((resolve) => {
        const id = ++nextId;
        answers.set(id, (usage) => {
          answers.delete(id);
          resolve(usage);
        });
        worker.send({ type: 'bench:usage', id });
      });
    return {
      url: `http://127.0.0.1:${port}`,
      close: () => primary.stop('SIGTERM'),
      // The whole instance: the primary (it accepts every connection) and each worker.
      usage: async (gc) => sumUsage([ownUsage(gc), ...(await Promise.all(primary.listeningWorkers().map(ask)))]),
    };
  });
} else {
  serveParticipant('gateway', async () => {
    const config = benchConfig();
    if (config.database.url && config.database.migrationsRun) await runMigrations(config.database.url);
    const app = await startApp(config, 0);
    return { url: urlOf(app), close: () => app.close(), extra: gatewayCounters(app) };
  });
}

function sumUsage(parts: Usage[]): Usage {
  const total: Usage = { cpuMicros: 0, rss: 0, heapUsed: 0, redisWrites: 0, timings: {}, processes: 0 };
  for (const part of parts) {
    total.cpuMicros += part.cpuMicros;
    total.rss += part.rss;
    total.heapUsed += part.heapUsed;
    total.redisWrites! += part.redisWrites ?? 0;
    total.processes! += part.processes ?? 1;
    for (const [name, figures] of Object.entries(part.timings ?? {})) {
      const sum = (total.timings![name] ??= { nanos: 0, calls: 0 });
      sum.nanos += figures.nanos;
      sum.calls += figures.calls;
    }
  }
  return total;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/**
 * Socket writes on the gateway's Redis command connection. Measured while requests are sent one
 * at a time, each write is one round trip of that request (commands sent together share it);
 * under load the connection's automatic pipelining merges the writes of concurrent requests.
 */
function countRedisWrites(redis: RedisServiceType): () => number {
  let writes = 0;
  const client = redis.client as unknown as { stream?: { write: (...args: unknown[]) => boolean } } | undefined;
  const stream = client?.stream;
  if (!stream) return () => 0;
  const write = stream.write;
  stream.write = function (...args: unknown[]) {
    writes++;
    return write.apply(this, args);
  };
  return () => writes;
}
