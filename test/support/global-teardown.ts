import Redis from 'ioredis';
import { Client } from 'pg';
import { RUN_ENV, TEST_DATABASE_URL, TEST_REDIS_URL } from './test-env';

/** Drops this run's databases and deletes its Redis keys. */
export default async function globalTeardown(): Promise<void> {
  const runId = process.env[RUN_ENV.runId];
  if (!runId) return;
  const admin = new Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE $1`, [`igw\\_t\\_${runId}\\_%`]);
    for (const { datname } of rows) await admin.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `igw-test-${runId}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
