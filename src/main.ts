import 'reflect-metadata';
import { ConsoleLogger, Logger } from '@nestjs/common';
import { createGatewayApp } from './app.factory';
import { ConfigError, loadConfig } from './config/config.loader';
import { EmbeddedPostgres, startEmbeddedPostgres } from './database/embedded-postgres';
import { runMigrations } from './database/migration-runner';
import { installGracefulShutdown } from './lifecycle/graceful-shutdown';

async function bootstrap(): Promise<void> {
  // JSON from the first line on; nestjs-pino takes over once the application exists.
  Logger.overrideLogger(new ConsoleLogger({ json: true }));
  let loaded;
  try {
    loaded = loadConfig({ generateDevSecrets: true });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`imgproxy-gateway: ${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
  const { config, generated } = loaded;
  const logger = new Logger('Bootstrap');

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

  const app = await createGatewayApp(config);
  installGracefulShutdown(app, config, async () => embedded?.close());
  await app.listen(config.server.port, config.server.host);
  const url = await app.getUrl();
  logger.log(`imgproxy-gateway listening on ${url} (admin API /admin/v1, docs ${url}/docs)`);
  if (generated.includes('adminToken')) {
    // Printed once, when generated; it is kept in <dataDir>/dev-secrets.json for later runs.
    process.stdout.write(`\n  Development admin token: ${config.security.adminToken}\n  (stored in ${config.dataDir}/dev-secrets.json)\n\n`);
  } else if (config.env !== 'production' && !process.env.ADMIN_TOKEN) {
    logger.log(`development admin token is in ${config.dataDir}/dev-secrets.json`);
  }
}

bootstrap().catch((error: Error) => {
  process.stderr.write(`imgproxy-gateway failed to start: ${error.stack ?? error.message}\n`);
  process.exit(1);
});
