import 'reflect-metadata';
import { ConfigError, loadConfig } from '../config/config.loader';
import { startEmbeddedPostgres } from './embedded-postgres';
import { runMigrations } from './migration-runner';

/** `npm run migrate`: applies pending migrations to DATABASE_URL (or the embedded database). */
async function main(): Promise<void> {
  const { config } = loadConfig({ generateDevSecrets: true });
  const embedded = config.database.url ? undefined : await startEmbeddedPostgres(config.database.embeddedDir);
  try {
    const { applied, skipped } = await runMigrations(config.database.url ?? embedded!.url);
    process.stdout.write(`migrations: ${applied.length} applied${applied.length ? ` (${applied.join(', ')})` : ''}, ${skipped} already present\n`);
  } finally {
    await embedded?.close();
  }
}

main().catch((error: Error) => {
  process.stderr.write(`${error instanceof ConfigError ? error.message : (error.stack ?? error.message)}\n`);
  process.exit(1);
});
