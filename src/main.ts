import 'reflect-metadata';
import cluster from 'node:cluster';
import { join } from 'node:path';
import { Logger } from '@nestjs/common';
import type { Logger as PinoInstance } from 'pino';
import type { GatewayAppOptions } from './bootstrap/app.factory';
import { ClusterPrimary } from './bootstrap/cluster-primary';
import { DEV_WORKER_URL_ENV, WORKER_INDEX_ENV, applyWorkerShare, clusterProblem } from './bootstrap/cluster-plan';
import { startDevWorkerIfWanted } from './bootstrap/dev-worker';
import { LISTEN_ERRORS, describeListenProblem, listenProblem } from './bootstrap/listen-check';
import { ConfigError, loadConfig, type LoadedConfig } from './config/config.loader';
import { GatewayConfig } from './config/gateway-config';
import { EmbeddedPostgres, startEmbeddedPostgres } from './database/embedded-postgres';
import { runMigrations } from './database/migration-runner';
import { installGracefulShutdown } from './bootstrap/graceful-shutdown';
import { GatewayLogger } from './logging/gateway-logger';
import { createBootLogger, createRootLogger } from './logging/logging.options';
import { serveWorkerMetrics } from './metrics/cluster-metrics';

// Every line is pino JSON from the first one on: before the configuration exists (it may be the
// problem) a logger at info, then the configuration's own, which Nest's Logger also writes to.
let log: PinoInstance = createBootLogger();

async function bootstrap(): Promise<void> {
  let loaded: LoadedConfig;
  try {
    loaded = loadConfig({ generateDevSecrets: true });
  } catch (error) {
    if (error instanceof ConfigError) {
      log.error({ context: 'Bootstrap', problems: error.problems }, `invalid configuration: ${error.problems.join(' | ')}`);
      return exit(78); // EX_CONFIG
    }
    throw error;
  }
  const { config, generated } = loaded;
  log = createRootLogger(config);
  Logger.overrideLogger(GatewayLogger.over(log));
  if (cluster.isWorker) return startWorker(loaded);
  const logger = new Logger('Bootstrap');
  announceAdminToken(config, generated, logger);
  const clustered = clusterProblem(config);
  if (clustered) {
    logger.error(clustered);
    return exit(78);
  }
  const { port, host, workers } = config.server;
  const taken = await listenProblem(port, host);
  if (taken) {
    logger.error(describeListenProblem(taken, host, port));
    return exit(1);
  }

  let embedded: EmbeddedPostgres | undefined;
  if (!config.database.url) {
    embedded = await startEmbeddedPostgres(config.database.embeddedDir);
    config.database.url = embedded.url;
    // PGlite runs one query at a time and shares session state between connections: a second
    // connection could see another's open transaction, so the pool holds exactly one.
    config.database.poolSize = 1;
    logger.warn(`DATABASE_URL is not set: using the embedded PostgreSQL in ${config.database.embeddedDir} (development only).`);
  }
  // Once, before any worker exists: workers never migrate.
  if (config.database.migrationsRun) {
    const { applied } = await runMigrations(config.database.url);
    if (applied.length) logger.log(`migrations applied: ${applied.join(', ')}`);
  }
  const devWorker = await startDevWorkerIfWanted(config, new Logger('DevWorker'));
  // After the application has closed (requests drained, modules flushed): nothing needs them then.
  const stopHelpers = async () => {
    await devWorker?.stop();
    await embedded?.close();
  };

  if (workers > 1) return startPrimary(config, devWorker?.url, stopHelpers, logger);

  const app = await createApp(config, { source: loaded.source });
  installGracefulShutdown(app, config, stopHelpers);
  try {
    await app.listen(port, host);
  } catch (error) {
    // Taken in the moments since the check above.
    const code = (error as NodeJS.ErrnoException).code ?? '';
    if (!(code in LISTEN_ERRORS)) throw error;
    logger.error(describeListenProblem(code, host, port));
    await app.close().catch(() => undefined);
    await stopHelpers().catch(() => undefined);
    return exit(1);
  }
  const url = await app.getUrl();
  logger.log(`imgproxy-gateway listening on ${url} (admin API ${url}/admin/v1, docs ${url}/docs)`);
}

/**
 * WORKERS > 1: this process only supervises (docs/performance.md, Multi-core). The workers load
 * the same configuration; what the primary decided at run time (the development worker) goes to
 * them in their environment.
 */
async function startPrimary(config: GatewayConfig, devWorkerUrl: string | undefined, stopHelpers: () => Promise<void>, logger: Logger): Promise<void> {
  const { port, host, workers } = config.server;
  const primary = new ClusterPrimary({
    workers,
    shutdownTimeoutMs: config.server.shutdownTimeoutMs,
    logger: new Logger('Cluster'),
    env: devWorkerUrl ? { [DEV_WORKER_URL_ENV]: devWorkerUrl } : {},
  });
  primary.installSignals(stopHelpers);
  try {
    await primary.start();
  } catch (error) {
    logger.error(`imgproxy-gateway failed to start: ${(error as Error).message}`);
    await stopHelpers().catch(() => undefined);
    return exit(1);
  }
  const url = `http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${port}`;
  logger.log(`imgproxy-gateway listening on ${url} with ${workers} workers (pids ${primary.pids().join(', ')}; admin API ${url}/admin/v1, docs ${url}/docs)`);
}

/** One worker of WORKERS > 1: the whole gateway, on the port the primary shares. */
async function startWorker(loaded: LoadedConfig): Promise<void> {
  const { config } = loaded;
  const index = Number(process.env[WORKER_INDEX_ENV] ?? 0);
  const logger = new Logger(`Worker ${index}`);
  // First, so the primary's merge can reach this worker as soon as it listens.
  serveWorkerMetrics();
  applyWorkerShare(config, index, process.env[DEV_WORKER_URL_ENV]);
  if (!config.database.url) throw new Error('a worker needs DATABASE_URL');
  const app = await createApp(config, { source: loaded.source });
  installGracefulShutdown(app, config, async () => undefined);
  await app.listen(config.server.port, config.server.host);
  logger.log(`worker ${index} listening (pid ${process.pid})`);
}

/**
 * The application, loaded only where it runs: a WORKERS primary only supervises, and the whole
 * application's modules would add about as much memory to it as to each worker.
 */
function createApp(config: GatewayConfig, options: GatewayAppOptions) {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { createGatewayApp } = require('./bootstrap/app.factory') as typeof import('./bootstrap/app.factory');
  return createGatewayApp(config, options);
}

/**
 * A generated admin token is logged once, as the first line of the start, so a new user finds it
 * at the top (even when the start then fails); later starts say where it is kept.
 */
function announceAdminToken(config: GatewayConfig, generated: string[], logger: Logger): void {
  const file = join(config.dataDir, 'dev-secrets.json');
  if (generated.includes('adminToken')) {
    logger.log(`development admin token (generated now, shown once, kept in ${file}): ${config.security.adminToken}`);
  } else if (config.env !== 'production' && !process.env.ADMIN_TOKEN) {
    logger.log(`development admin token: in ${file} (ADMIN_TOKEN overrides it)`);
  }
}

/**
 * Ends the process once the lines still being written are out: pino writes asynchronously, so
 * process.exit() now could drop the last ones (the reason). The reasons are logged at error, not
 * fatal: pino writes a fatal line synchronously, ahead of lines still in flight.
 */
function exit(code: number): void {
  process.exitCode = code;
  // Whatever still holds the event loop (a pool, a child's IPC channel) must not keep it alive.
  setTimeout(() => process.exit(code), 3_000).unref();
}

bootstrap().catch((error: Error) => {
  log.error({ context: 'Bootstrap', err: error }, `imgproxy-gateway failed to start: ${error.message}`);
  exit(1);
});
