import { Injectable, Logger, Optional } from '@nestjs/common';
import { GatewayConfig } from '../config/gateway-config';
import { GatewayMetrics } from '../metrics/gateway-metrics.service';
import { BackendPool, type BackendConfig, type BackendPoolObserver, type BackendSnapshot } from '../proxy/backend-state/backend-pool';

/** The pool every imgproxy request goes to unless a caller names another (docs/proxy-and-backends.md). */
export const DEFAULT_POOL = 'imgproxy';

export type BackendsChangedListener = (backends: readonly BackendConfig[]) => void;

/**
 * The live, in-memory view of every backend, one BackendPool per pool name. The request path
 * reads only this (no PostgreSQL per request); BackendsService refreshes it from the table when
 * an admin changes something on any instance, and the prober feeds it health checks.
 */
@Injectable()
export class BackendRegistry {
  private readonly pools = new Map<string, BackendPool>();
  private readonly listeners = new Set<BackendsChangedListener>();
  private current: readonly BackendConfig[] = [];
  private readonly logger = new Logger('Backends');

  constructor(
    private readonly config: GatewayConfig,
    @Optional() private readonly metrics?: GatewayMetrics,
  ) {}

  pool(name: string = DEFAULT_POOL): BackendPool | undefined {
    return this.pools.get(name);
  }

  /**
   * Makes `backends` the whole configuration. Surviving ids keep their health, circuit and
   * in-flight counts (BackendPool.replaceAll); a backend moved to another pool starts afresh
   * there. Pools left empty are dropped: in-flight leases keep their own reference.
   */
  replaceAll(backends: readonly BackendConfig[]): void {
    const byPool = new Map<string, BackendConfig[]>();
    for (const backend of backends) {
      const group = byPool.get(backend.pool) ?? [];
      group.push(backend);
      byPool.set(backend.pool, group);
    }
    for (const [name, group] of byPool) {
      let pool = this.pools.get(name);
      if (!pool) {
        pool = this.newPool(name);
        this.pools.set(name, pool);
      }
      pool.replaceAll(group);
    }
    for (const name of [...this.pools.keys()]) {
      if (!byPool.has(name)) this.pools.delete(name);
    }
    this.current = backends;
    for (const listener of this.listeners) listener(backends);
  }

  /** Told after every replaceAll, e.g. to close the connection pools of removed backends. */
  onChange(listener: BackendsChangedListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  backends(): readonly BackendConfig[] {
    return this.current;
  }

  /** Every pool's backends with their live state. */
  snapshot(): BackendSnapshot[] {
    return [...this.pools.values()].flatMap((pool) => pool.snapshot());
  }

  /** Feeds one active health check to the pool that holds `backend`. */
  reportHealthCheck(backend: BackendConfig, ok: boolean, error?: string): 'up' | 'down' | undefined {
    return this.pools.get(backend.pool)?.reportHealthCheck(backend.id, ok, error);
  }

  /**
   * Readiness (docs/proxy-and-backends.md): every pool that is meant to serve (it has an enabled backend with a
   * weight) has at least one backend that passes its active checks. `serving` counts those pools.
   */
  readiness(): { serving: number; unavailable: string[] } {
    let serving = 0;
    const unavailable: string[] = [];
    for (const [name, pool] of this.pools) {
      if (!pool.backends().some((b) => b.enabled && b.weight > 0)) continue;
      serving++;
      if (!pool.hasHealthyBackend()) unavailable.push(name);
    }
    return { serving, unavailable };
  }

  private newPool(name: string): BackendPool {
    const { healthCheck, proxy } = this.config;
    return new BackendPool({
      observer: this.panicObserver(name),
      balancer: 'weighted-round-robin',
      health: { healthyThreshold: healthCheck.healthyThreshold, unhealthyThreshold: healthCheck.unhealthyThreshold },
      circuit: {
        failureThreshold: proxy.circuitBreaker.failureThreshold,
        cooldownMs: proxy.circuitBreaker.cooldownSeconds * 1000,
      },
    });
  }

  /** The panic threshold's decisions (docs/proxy-and-backends.md): a log line per change, a count per request. */
  private panicObserver(pool: string): BackendPoolObserver {
    return {
      panicChanged: (ignored) => {
        if (ignored.length === 0) this.logger.log({ pool }, `pool ${pool}: no open circuit is ignored any more`);
        else this.logger.warn({ pool, backends: ignored.map((b) => b.name) }, `pool ${pool}: open circuits exceed half its weight; still sending to ${ignored.map((b) => b.name).join(', ')}`);
      },
      panicRouted: (backend) => this.metrics?.circuitPanic(pool, backend.name),
    };
  }
}
