import { Injectable, Logger, OnApplicationShutdown, Optional } from '@nestjs/common';
import { GatewayConfig } from '../../config/gateway-config';
import type { UpstreamConfig } from '../../config/routes.config';
import { GatewayMetrics } from '../../metrics/gateway-metrics.service';
import { BackendPool, type BackendConfig, type BackendPoolObserver, type BackendSnapshot } from '../backend-state/backend-pool';
import { DnsDiscovery } from '../discovery/dns-discovery';
import { toBackendConfig } from '../discovery/discovered-targets';

/** The pool every imgproxy request goes to unless a caller names another (docs/proxy-and-backends.md). */
export const DEFAULT_POOL = 'imgproxy';

export type BackendsChangedListener = (backends: readonly BackendConfig[]) => void;

/** How the prober checks one backend; absent for an upstream without `healthCheck`. */
export interface HealthCheckSettings {
  readonly path: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Table backends persist their verdict in `backends`; configured ones live in memory only. */
  readonly persist: boolean;
}

/** A YAML upstream (docs/routes.md): its pool, how its backends are found, how they are checked. */
interface ConfiguredUpstream {
  readonly pool: BackendPool;
  /** The pool's construction options; a reload that changes them builds a fresh pool. */
  readonly optionsKey: string;
  readonly balancer: string;
  readonly healthCheck?: HealthCheckSettings;
  discovery?: DnsDiscovery;
  discoveryKey?: string;
}

/**
 * The live, in-memory view of every backend, one BackendPool per upstream. The request path
 * reads only this (no PostgreSQL per request). Two sources feed it:
 * - the backends table (imgproxy pools: BACKENDS, the admin API), refreshed by BackendsService
 *   whenever an admin changes something on any instance, health persisted in the table;
 * - the YAML upstreams, each with its own balancer, health checks and circuit breaker, backends
 *   listed in the file or found in DNS (DnsDiscovery), replaced on a configuration reload.
 * A backend whose id survives a change keeps its health, circuit and in-flight counts.
 */
@Injectable()
export class BackendRegistry implements OnApplicationShutdown {
  private readonly logger = new Logger('Upstreams');
  private readonly tablePools = new Map<string, BackendPool>();
  private readonly upstreams = new Map<string, ConfiguredUpstream>();
  private readonly listeners = new Set<BackendsChangedListener>();
  private tableBackends: readonly BackendConfig[] = [];
  private imgproxyOverrides: UpstreamConfig | undefined;

  constructor(
    private readonly config: GatewayConfig,
    @Optional() private readonly metrics?: GatewayMetrics,
  ) {
    this.configure(config.upstreams ?? {});
  }

  onApplicationShutdown(): void {
    for (const upstream of this.upstreams.values()) upstream.discovery?.stop();
  }

  pool(name: string = DEFAULT_POOL): BackendPool | undefined {
    return this.upstreams.get(name)?.pool ?? this.tablePools.get(name);
  }

  /**
   * Makes `backends` the whole content of the backends table. Pools left empty are dropped:
   * in-flight leases keep their own reference.
   */
  replaceAll(backends: readonly BackendConfig[]): void {
    const byPool = new Map<string, BackendConfig[]>();
    for (const backend of backends) {
      if (this.upstreams.has(backend.pool)) {
        this.logger.warn(`backend ${backend.name} names pool "${backend.pool}", which is a configured upstream: it is ignored`);
        continue;
      }
      const group = byPool.get(backend.pool) ?? [];
      group.push(backend);
      byPool.set(backend.pool, group);
    }
    for (const [name, group] of byPool) {
      let pool = this.tablePools.get(name);
      if (!pool) {
        pool = this.newPool(name, name === DEFAULT_POOL ? this.imgproxyOverrides : undefined);
        this.tablePools.set(name, pool);
      }
      pool.replaceAll(group);
    }
    for (const name of [...this.tablePools.keys()]) {
      if (!byPool.has(name)) this.tablePools.delete(name);
    }
    this.tableBackends = backends;
    this.notify();
  }

  /**
   * Makes `upstreams` the YAML upstreams (start, configuration reload). An upstream whose pool
   * options are unchanged keeps its pool (and its backends' state); a changed balancer is
   * switched in place; discovery restarts only when its settings changed.
   */
  configure(upstreams: Readonly<Record<string, UpstreamConfig>>): void {
    const overrides = upstreams[DEFAULT_POOL];
    if (JSON.stringify(overrides) !== JSON.stringify(this.imgproxyOverrides)) {
      this.imgproxyOverrides = overrides;
      const current = this.tablePools.get(DEFAULT_POOL);
      if (current) {
        const fresh = this.newPool(DEFAULT_POOL, overrides);
        fresh.replaceAll(current.backends());
        this.tablePools.set(DEFAULT_POOL, fresh);
      }
    }
    for (const [name, existing] of [...this.upstreams]) {
      if (upstreams[name] === undefined || name === DEFAULT_POOL) {
        existing.discovery?.stop();
        this.upstreams.delete(name);
      }
    }
    for (const [name, upstream] of Object.entries(upstreams)) {
      if (name === DEFAULT_POOL) continue;
      this.configureUpstream(name, upstream);
    }
    this.notify();
  }

  /** Told after every change, e.g. to close the connection pools of removed backends. */
  onChange(listener: BackendsChangedListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Every backend, table and configured. */
  backends(): readonly BackendConfig[] {
    const configured = [...this.upstreams.values()].flatMap((upstream) => upstream.pool.backends());
    return configured.length === 0 ? this.tableBackends : [...this.tableBackends, ...configured];
  }

  /** Every pool's backends with their live state. */
  snapshot(): BackendSnapshot[] {
    return [...this.tablePools.values(), ...[...this.upstreams.values()].map((u) => u.pool)].flatMap((pool) => pool.snapshot());
  }

  /** How the prober checks `backend`, or undefined when its upstream has no active checks. */
  healthCheckOf(backend: BackendConfig): HealthCheckSettings | undefined {
    const upstream = this.upstreams.get(backend.pool);
    if (upstream) return upstream.healthCheck;
    const { path, intervalSeconds, timeoutSeconds } = this.config.healthCheck;
    const own = backend.pool === DEFAULT_POOL ? this.imgproxyOverrides?.healthCheck : undefined;
    return {
      path: own?.path ?? path,
      intervalMs: (own?.intervalSeconds ?? intervalSeconds) * 1000,
      timeoutMs: (own?.timeoutSeconds ?? timeoutSeconds) * 1000,
      persist: true,
    };
  }

  /** Feeds one active health check to the pool that holds `backend`. */
  reportHealthCheck(backend: BackendConfig, ok: boolean, error?: string): 'up' | 'down' | undefined {
    return this.pool(backend.pool)?.reportHealthCheck(backend.id, ok, error);
  }

  /**
   * Readiness (docs/proxy-and-backends.md): every imgproxy pool that is meant to serve (it has an
   * enabled backend with a weight) has at least one backend that passes its active checks.
   * `serving` counts those pools. A configured upstream without a healthy backend fails its own
   * routes (503) but does not take the instance out of rotation for the image routes.
   */
  readiness(): { serving: number; unavailable: string[] } {
    let serving = 0;
    const unavailable: string[] = [];
    for (const [name, pool] of this.tablePools) {
      if (!pool.backends().some((b) => b.enabled && b.weight > 0)) continue;
      serving++;
      if (!pool.hasHealthyBackend()) unavailable.push(name);
    }
    return { serving, unavailable };
  }

  private configureUpstream(name: string, upstream: UpstreamConfig): void {
    const optionsKey = JSON.stringify([upstream.healthCheck ?? null, upstream.circuitBreaker ?? null]);
    const balancer = upstream.balancer ?? 'weighted-round-robin';
    let current = this.upstreams.get(name);
    if (!current || current.optionsKey !== optionsKey) {
      const pool = this.newPool(name, upstream);
      if (current) {
        pool.replaceAll(current.pool.backends());
        current.discovery?.stop();
      }
      current = { pool, optionsKey, balancer, healthCheck: this.checkSettingsOf(upstream) };
      this.upstreams.set(name, current);
    } else if (current.balancer !== balancer) {
      current.pool.setBalancer(balancer);
      current = { ...current, balancer };
      this.upstreams.set(name, current);
    }
    if (upstream.discovery) {
      const key = JSON.stringify(upstream.discovery);
      if (current.discovery && current.discoveryKey === key) return;
      current.discovery?.stop();
      const pool = current.pool;
      current.discovery = new DnsDiscovery({
        upstream: name,
        config: upstream.discovery,
        logger: this.logger,
        onChange: (targets) => {
          pool.replaceAll(targets.map((target) => toBackendConfig(target, name)));
          this.notify();
        },
      });
      current.discoveryKey = key;
      void current.discovery.start().catch((error: Error) => this.logger.warn(`discovery of upstream ${name} failed to start: ${error.message}`));
      return;
    }
    current.discovery?.stop();
    current.discovery = undefined;
    current.discoveryKey = undefined;
    current.pool.replaceAll(
      (upstream.backends ?? []).map((backend) => ({
        id: `${name}:${backend.name}`,
        name: backend.name,
        url: backend.url,
        weight: backend.weight ?? 1,
        enabled: true,
        pool: name,
      })),
    );
  }

  private checkSettingsOf(upstream: UpstreamConfig): HealthCheckSettings | undefined {
    const check = upstream.healthCheck;
    if (!check) return undefined;
    const defaults = this.config.healthCheck;
    return {
      path: check.path ?? defaults.path,
      intervalMs: (check.intervalSeconds ?? defaults.intervalSeconds) * 1000,
      timeoutMs: (check.timeoutSeconds ?? defaults.timeoutSeconds) * 1000,
      persist: false,
    };
  }

  private newPool(name: string, upstream: UpstreamConfig | undefined): BackendPool {
    const { healthCheck, proxy } = this.config;
    return new BackendPool({
      observer: this.panicObserver(name),
      balancer: upstream?.balancer ?? 'weighted-round-robin',
      health: {
        healthyThreshold: upstream?.healthCheck?.healthyThreshold ?? healthCheck.healthyThreshold,
        unhealthyThreshold: upstream?.healthCheck?.unhealthyThreshold ?? healthCheck.unhealthyThreshold,
      },
      circuit: {
        failureThreshold: upstream?.circuitBreaker?.failureThreshold ?? proxy.circuitBreaker.failureThreshold,
        cooldownMs: (upstream?.circuitBreaker?.cooldownSeconds ?? proxy.circuitBreaker.cooldownSeconds) * 1000,
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

  private notify(): void {
    if (this.listeners.size === 0) return;
    const all = this.backends();
    for (const listener of this.listeners) listener(all);
  }
}
