import { join } from 'node:path';
import type { GatewayConfig } from '../config/gateway-config';
import { addDevWorkerBackend } from './dev-worker';

/** Environment variable telling a forked worker its slot (0…N-1), stable across restarts. */
export const WORKER_INDEX_ENV = 'GATEWAY_WORKER_INDEX';
/** The development worker's URL, started once by the primary and used as backend by every worker. */
export const DEV_WORKER_URL_ENV = 'GATEWAY_DEV_WORKER_URL';

/**
 * Why this configuration cannot run with several workers, or undefined. Each worker is a whole
 * gateway sharing state only through PostgreSQL and Redis, like separate instances:
 * - the embedded PostgreSQL (PGlite) lives inside one process and cannot be shared;
 * - without Redis every worker would keep its own rate-limit buckets and quota counters, so each
 *   limit would silently become N times looser.
 */
export function clusterProblem(config: GatewayConfig): string | undefined {
  const workers = config.server.workers;
  if (workers <= 1) return undefined;
  if (!config.database.url) {
    return (
      `WORKERS=${workers} (server.workers) needs DATABASE_URL: the embedded development database (PGlite) runs inside one ` +
      'process and cannot be shared by several workers. Set DATABASE_URL to a PostgreSQL server, or WORKERS=1.'
    );
  }
  if (!config.redis.url) {
    return (
      `WORKERS=${workers} (server.workers) needs REDIS_URL: without Redis each worker would count rate limits and quotas ` +
      'on its own, so every limit would be that many times looser. Set REDIS_URL, or WORKERS=1.'
    );
  }
  return undefined;
}

/**
 * What a worker changes in the configuration it loaded: its share of the response cache (the
 * budgets are the instance's, split evenly, so WORKERS does not multiply the memory a pod needs)
 * and a disk tier directory of its own (one process per directory), plus the development worker
 * the primary started, as backend.
 */
export function applyWorkerShare(config: GatewayConfig, index: number, devWorkerUrl?: string): void {
  const workers = Math.max(1, config.server.workers);
  const cache = config.cache;
  cache.memoryMaxBytes = Math.max(MIN_CACHE_BYTES, Math.floor(cache.memoryMaxBytes / workers));
  cache.diskMaxBytes = Math.max(MIN_CACHE_BYTES, Math.floor(cache.diskMaxBytes / workers));
  if (cache.dir) cache.dir = join(cache.dir, `worker-${index}`);
  if (devWorkerUrl) addDevWorkerBackend(config, devWorkerUrl);
}

/** The smallest cache budget the configuration accepts. */
const MIN_CACHE_BYTES = 1_048_576;

/**
 * When a crashed worker is started again. The first restart waits `initialMs`, each further one
 * twice as long up to `maxMs`, so a worker that dies at once (a dependency down) does not spin;
 * a worker that ran `stableMs` or longer before it crashed starts the sequence over.
 */
export class RestartBackoff {
  private attempts = 0;

  constructor(
    private readonly initialMs = 1_000,
    private readonly maxMs = 30_000,
    private readonly stableMs = 60_000,
  ) {}

  /** The delay before the next start of a worker that ran `livedMs` before it exited. */
  next(livedMs: number): number {
    if (livedMs >= this.stableMs) this.attempts = 0;
    const delay = Math.min(this.maxMs, this.initialMs * 2 ** this.attempts);
    this.attempts++;
    return delay;
  }
}
