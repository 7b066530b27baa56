import { join } from 'node:path';
import { GatewayConfig } from '../config/gateway-config';
import { RestartBackoff, applyWorkerShare, clusterProblem } from './cluster-plan';

function config(workers: number, database?: string, redis?: string): GatewayConfig {
  const c = new GatewayConfig();
  c.server.workers = workers;
  c.database.url = database;
  c.redis.url = redis;
  return c;
}

describe('clusterProblem', () => {
  it('accepts one worker on the embedded database and without Redis', () => {
    expect(clusterProblem(config(1))).toBeUndefined();
  });

  it('refuses several workers on the embedded database, saying what to set', () => {
    expect(clusterProblem(config(2, undefined, 'redis://127.0.0.1:6379'))).toMatch(/^WORKERS=2 \(server\.workers\) needs DATABASE_URL: the embedded .*PGlite.*one process/);
  });

  it('refuses several workers without Redis, whose limits would multiply', () => {
    expect(clusterProblem(config(3, 'postgres://db/gw'))).toMatch(/^WORKERS=3 .*needs REDIS_URL/);
  });

  it('accepts several workers on PostgreSQL and Redis', () => {
    expect(clusterProblem(config(4, 'postgres://db/gw', 'redis://cache:6379'))).toBeUndefined();
  });
});

describe('applyWorkerShare', () => {
  it('splits the cache budgets evenly and gives each worker a disk directory of its own', () => {
    const c = config(4, 'postgres://db/gw', 'redis://cache:6379');
    c.cache.memoryMaxBytes = 64 * 1024 * 1024;
    c.cache.diskMaxBytes = 8 * 1024 * 1024 * 1024;
    c.cache.dir = '/var/cache/igw';
    applyWorkerShare(c, 2);
    expect(c.cache.memoryMaxBytes).toBe(16 * 1024 * 1024);
    expect(c.cache.diskMaxBytes).toBe(2 * 1024 * 1024 * 1024);
    expect(c.cache.dir).toBe(join('/var/cache/igw', 'worker-2'));
    expect(c.backends).toEqual([]);
  });

  it('never goes below the smallest budget the configuration accepts, and keeps memory-only caches so', () => {
    const c = config(64, 'postgres://db/gw', 'redis://cache:6379');
    c.cache.memoryMaxBytes = 2 * 1024 * 1024;
    applyWorkerShare(c, 0);
    expect(c.cache.memoryMaxBytes).toBe(1024 * 1024);
    expect(c.cache.dir).toBeUndefined();
  });

  it('adds the development worker the primary started as backend', () => {
    const c = config(2, 'postgres://db/gw', 'redis://cache:6379');
    applyWorkerShare(c, 1, 'http://127.0.0.1:45678');
    expect(c.backends).toEqual([expect.objectContaining({ name: 'dev-worker', url: 'http://127.0.0.1:45678', pool: 'imgproxy', enabled: true })]);
  });
});

describe('RestartBackoff', () => {
  it('doubles the delay for a worker that keeps dying, up to the cap', () => {
    const backoff = new RestartBackoff(1_000, 8_000, 60_000);
    expect([100, 100, 100, 100, 100, 100].map((lived) => backoff.next(lived))).toEqual([1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
  });

  it('starts over once a worker has run long enough before it crashed', () => {
    const backoff = new RestartBackoff(1_000, 30_000, 60_000);
    backoff.next(10);
    backoff.next(10);
    expect(backoff.next(10)).toBe(4_000);
    expect(backoff.next(60_000)).toBe(1_000);
    expect(backoff.next(10)).toBe(2_000);
  });
});
