import { randomBytes } from 'node:crypto';
import Redis from 'ioredis';
import { Client } from 'pg';
import { runMigrations } from '../../src/database/migration-runner';
import { RUN_ENV, TEST_DATABASE_URL, TEST_REDIS_URL, databaseUrl } from './test-env';

const START_HINT =
  'Start them (as root):\n' +
  '  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start\n' +
  '  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no\n' +
  'or point TEST_DATABASE_URL / TEST_REDIS_URL at running servers.';

/**
 * Once per `npm test`: fail at once when PostgreSQL or Redis is missing, then migrate a
 * template database that every suite clones (CREATE DATABASE ... TEMPLATE), so each suite
 * gets a fresh, migrated database in a few milliseconds.
 */
export default async function globalSetup(): Promise<void> {
  const admin = new Client({ connectionString: TEST_DATABASE_URL, connectionTimeoutMillis: 3_000 });
  try {
    await admin.connect();
  } catch (error) {
    throw new Error(`PostgreSQL is not reachable at ${TEST_DATABASE_URL}: ${(error as Error).message}\n${START_HINT}`);
  }
  const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true, connectTimeout: 3_000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    await admin.end();
    throw new Error(`Redis is not reachable at ${TEST_REDIS_URL}: ${(error as Error).message}\n${START_HINT}`);
  } finally {
    redis.disconnect();
  }

  const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const template = `igw_t_${runId}_tpl`;
  try {
    await dropStaleDatabases(admin);
    await admin.query(`CREATE DATABASE ${template}`);
  } finally {
    await admin.end();
  }
  await runMigrations(databaseUrl(template));
  process.env[RUN_ENV.runId] = runId;
  process.env[RUN_ENV.templateDb] = template;
}

/** Databases left by runs that were killed more than a day ago. */
async function dropStaleDatabases(admin: Client): Promise<void> {
  const { rows } = await admin.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE 'igw\\_t\\_%'`);
  const dayAgo = Date.now() - 86_400_000;
  for (const { datname } of rows) {
    const stamp = parseInt(datname.split('_')[2]?.slice(0, 8) ?? '', 36);
    if (Number.isFinite(stamp) && stamp < dayAgo) await admin.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`).catch(() => undefined);
  }
}
