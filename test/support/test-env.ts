/**
 * Where the tests find the machine's real services. Override with TEST_DATABASE_URL (a
 * database the tests may create databases from) and TEST_REDIS_URL.
 */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Values shared between global setup and the test files (same process, see jest --runInBand). */
export const RUN_ENV = {
  runId: 'IGW_TEST_RUN_ID',
  templateDb: 'IGW_TEST_TEMPLATE_DB',
} as const;

export function databaseUrl(name: string): string {
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

export function runId(): string {
  const id = process.env[RUN_ENV.runId];
  if (!id) throw new Error('test run id missing: run the tests through jest (globalSetup creates it)');
  return id;
}

/** Every Redis key of this run starts with this, so runs cannot collide and cleanup is exact. */
export function redisRunPrefix(): string {
  return `igw-test-${runId()}:`;
}
