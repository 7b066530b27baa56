import 'reflect-metadata';
import { join } from 'node:path';
import { Logger } from '@nestjs/common';
import type { Logger as PinoInstance } from 'pino';
import { createGatewayApp } from './bootstrap/app.factory';
import { startDevWorkerIfWanted } from './bootstrap/dev-worker';
import { LISTEN_ERRORS, describeListenProblem, listenProblem } from './bootstrap/listen-check';
import { ConfigError, loadConfig, type LoadedConfig } from './config/config.loader';
import { GatewayConfig } from './config/gateway-config';
import { EmbeddedPostgres, startEmbeddedPostgres } from './database/embedded-postgres';
import { runMigrations } from './database/migration-runner';
import { installGracefulShutdown } from './bootstrap/graceful-shutdown';
import { GatewayLogger } from './logging/gateway-logger';
import { createBootLogger, createRootLogger } from './logging/logging.options';

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
  const logger = new Logger('Bootstrap');
  announceAdminToken(config, generated, logger);
  const { port, host } = config.server;
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

  const app = await createGatewayApp(config, { source: loaded.source });
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
