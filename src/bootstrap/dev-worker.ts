import type { LoggerService } from '@nestjs/common';
import { Client } from 'pg';
import { GatewayConfig } from '../config/gateway-config';
import { startWorkerProcess, type WorkerProcess } from '../dev/imgproxy-worker/imgproxy-worker.process';

/** The backend name the development worker is registered under; reserved for it. */
export const DEV_WORKER_BACKEND = 'dev-worker';

export interface DevWorkerOptions {
  /** NODE_ENV=test never runs the worker unless a test asks for it here. */
  readonly allowInTest?: boolean;
}

/**
 * Whether this start runs the development worker: development mode (never production, test
 * only on request) and no backend from BACKENDS or YAML, nor in the backends table other than the
 * worker's own row from an earlier run.
 */
export function devWorkerWanted(config: GatewayConfig, tableHasOtherBackends: boolean, options: DevWorkerOptions = {}): boolean {
  return devWorkerMode(config, options) && config.backends.length === 0 && !tableHasOtherBackends;
}

function devWorkerMode(config: GatewayConfig, options: DevWorkerOptions): boolean {
  return config.env === 'development' || (config.env === 'test' && options.allowInTest === true);
}

/**
 * `npm start` on embedded defaults serves images (docs/architecture.md#first-run): with nothing
 * configured the gateway forks the built-in imgproxy-compatible worker on a loopback port and
 * seeds it as backend `dev-worker` on the uploads root, so it is health-checked, balanced and
 * listed like any other backend. Runs after migrations (it reads the backends table) and before
 * the application is built (which seeds `config.backends`). The caller stops it on shutdown.
 */
export async function startDevWorkerIfWanted(config: GatewayConfig, logger: Pick<LoggerService, 'log' | 'warn' | 'error'>, options: DevWorkerOptions = {}): Promise<WorkerProcess | undefined> {
  if (!devWorkerMode(config, options)) return undefined;
  let names: string[];
  try {
    names = await backendNames(config.database.url ?? '');
  } catch (error) {
    logger.warn(`development worker not started: the backends table could not be read (${(error as Error).message})`);
    return undefined;
  }
  const others = names.some((name) => name !== DEV_WORKER_BACKEND);
  if (!devWorkerWanted(config, others, options)) {
    if (names.includes(DEV_WORKER_BACKEND) && !config.backends.some((b) => b.name === DEV_WORKER_BACKEND)) {
      // Its port belonged to an earlier run: the row would only show as a dead backend.
      await deleteBackend(config.database.url ?? '', DEV_WORKER_BACKEND).then(
        () => logger.log(`removed backend ${DEV_WORKER_BACKEND} of an earlier run: other backends are configured`),
        (error: Error) => logger.warn(`could not remove backend ${DEV_WORKER_BACKEND} of an earlier run: ${error.message}`),
      );
    }
    return undefined;
  }

  const root = config.uploads.root;
  let worker: WorkerProcess;
  try {
    worker = await startWorkerProcess({
      root,
      keyHex: config.imgproxy.key,
      saltHex: config.imgproxy.salt,
      secret: config.imgproxy.secret,
      onStderr: (line) => logger.warn(`worker: ${line}`),
      onUnexpectedExit: (code, signal) =>
        logger.error(`the development worker exited (${signal ?? `code ${code}`}); image requests answer 503 until the gateway restarts`),
    });
  } catch (error) {
    logger.error(`development worker not started: ${(error as Error).message}; image requests answer 503 until a backend is added`);
    return undefined;
  }
  addDevWorkerBackend(config, worker.url);
  logger.log(
    `no backend configured: started the built-in development worker as backend "${DEV_WORKER_BACKEND}" on ${worker.url} ` +
      `(pid ${worker.pid}, root ${root}); set BACKENDS or POST /admin/v1/backends to use imgproxy instead`
  );
  return worker;
}

/** Seeds the running development worker as backend `dev-worker` (every worker of a cluster does it too). */
export function addDevWorkerBackend(config: GatewayConfig, url: string): void {
  config.backends.push({ name: DEV_WORKER_BACKEND, url, weight: 1, enabled: true, pool: 'imgproxy' });
}

async function backendNames(databaseUrl: string): Promise<string[]> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string }>('SELECT name FROM backends');
    return rows.map((row) => row.name);
  } finally {
    await client.end();
  }
}

async function deleteBackend(databaseUrl: string, name: string): Promise<void> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query('DELETE FROM backends WHERE name = $1', [name]);
  } finally {
    await client.end();
  }
}
