import { randomBytes } from 'node:crypto';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Client } from 'pg';
import type { Type } from '@nestjs/common';
import { createGatewayApp } from '../../src/bootstrap/app.factory';
import { AppModule } from '../../src/app.module';
import { type LoadedConfig, loadConfig } from '../../src/config/config.loader';
import { GatewayConfig } from '../../src/config/gateway-config';
import { RUN_ENV, TEST_DATABASE_URL, TEST_REDIS_URL, databaseUrl, redisRunPrefix, runId } from './test-env';

export const TEST_ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';

export interface TestApp {
  app: NestFastifyApplication;
  config: GatewayConfig;
  /** http://127.0.0.1:<port> */
  url: string;
  database: string;
  redisPrefix: string;
  close(): Promise<void>;
  /** fetch() against this instance. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** fetch() with the admin token. */
  admin(path: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
}

export interface TestAppOptions {
  /** Configuration overrides (deep-merged last). */
  config?: Record<string, unknown>;
  /** Reuse another instance's database (two instances of one deployment). */
  database?: string;
  /** Reuse another instance's Redis prefix; defaults to a fresh one. */
  redisPrefix?: string;
  /** Run without Redis (embedded single-instance mode). */
  withoutRedis?: boolean;
  /** Extra modules mounted beside the gateway (a test-only route, for instance). */
  imports?: Type[];
  /**
   * A YAML file layered as CONFIG_FILE: what a reload reads again (SIGHUP, a file change). Keys
   * under test belong there, not in `config`, whose overrides every reload reapplies.
   */
  configFile?: string;
}

let counter = 0;

/** A database cloned from the run's migrated template. */
export async function createTestDatabase(): Promise<string> {
  const name = `igw_t_${runId()}_${++counter}_${randomBytes(2).toString('hex')}`;
  const admin = new Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${process.env[RUN_ENV.templateDb]}`);
  } finally {
    await admin.end();
  }
  return name;
}

export function testConfig(database: string, redisPrefix: string, options: TestAppOptions = {}): GatewayConfig {
  return loadTestConfig(database, redisPrefix, options).config;
}

function loadTestConfig(database: string, redisPrefix: string, options: TestAppOptions = {}): LoadedConfig {
  return loadConfig({
    env: options.configFile ? { NODE_ENV: 'test', CONFIG_FILE: options.configFile } : { NODE_ENV: 'test' },
    overrides: deepMerge(
      {
        database: { url: databaseUrl(database), migrationsRun: false, poolSize: 4 },
        redis: options.withoutRedis ? { keyPrefix: redisPrefix } : { url: TEST_REDIS_URL, keyPrefix: redisPrefix },
        server: { port: 0, host: '127.0.0.1', shutdownTimeoutMs: 2_000 },
        security: {
          adminToken: TEST_ADMIN_TOKEN,
          keyPepper: 'test-pepper-0123456789abcdef',
          secretsKey: '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff',
        },
        logging: { level: process.env.TEST_LOG_LEVEL ?? 'silent' },
      },
      options.config ?? {},
    ),
  });
}

/** Boots the real gateway on an ephemeral port against real PostgreSQL and Redis. */
export async function createTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const database = options.database ?? (await createTestDatabase());
  // Random part: jest loads this module afresh in every spec file, so the counter alone repeats.
  const redisPrefix = options.redisPrefix ?? `${redisRunPrefix()}${++counter}-${randomBytes(3).toString('hex')}:`;
  const { config, source } = loadTestConfig(database, redisPrefix, options);
  const root = options.imports?.length
    ? { module: class TestRoot {}, imports: [AppModule.forRoot(config, source), ...options.imports] }
    : AppModule.forRoot(config, source);
  const app = await createGatewayApp(config, { rootModule: root, source });
  await app.listen(0, '127.0.0.1');
  const address = app.getHttpServer().address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  return {
    app,
    config,
    url,
    database,
    redisPrefix,
    close: () => app.close(),
    fetch: (path, init) => fetch(url + path, init),
    admin: (path, init = {}) => {
      const { json, ...rest } = init;
      const headers = new Headers(rest.headers);
      headers.set('authorization', `Bearer ${TEST_ADMIN_TOKEN}`);
      if (json !== undefined) headers.set('content-type', 'application/json');
      return fetch(url + path, { ...rest, headers, body: json !== undefined ? JSON.stringify(json) : rest.body });
    },
  };
}

function deepMerge(base: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(extra)) {
    const current = out[key];
    const mergeable = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
    out[key] = mergeable(current) && mergeable(value) ? deepMerge(current as Record<string, unknown>, value as Record<string, unknown>) : value;
  }
  return out;
}
