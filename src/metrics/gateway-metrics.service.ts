import { Injectable, Optional } from '@nestjs/common';
import { type Aggregator, Counter, Gauge, Histogram, Registry, register as defaultRegistry } from 'prom-client';
import { GatewayConfig } from '../config/gateway-config';

/** `gateway_circuit_state` values: 0 closed, 1 half-open, 2 open. */
export type CircuitStateName = 'closed' | 'half-open' | 'open';
const CIRCUIT_VALUE: Record<CircuitStateName, number> = { closed: 0, 'half-open': 1, open: 2 };

export type ByteDirection = 'in' | 'out';
export type MetricsStore = 'redis' | 'postgres' | (string & {});
/** `gateway_cache_requests_total{status}`: the X-Cache-Status of a lookup, in lower case. */
export type CacheRequestStatus = 'hit' | 'miss' | 'bypass';
export type CacheTier = 'memory' | 'disk';

/** Seconds; from a cached 304 (~1 ms) to a slow resize of a large image (tens of seconds). */
const REQUEST_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const UPSTREAM_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * Every gateway metric (docs/observability.md), with names and labels that docker/ (alerts, dashboard)
 * relies on. Modules call the plain-named methods; none of them touches prom-client.
 *
 * Metrics live in prom-client's default registry (the one /metrics serves) and are fetched
 * when they already exist, because two gateway instances may share one process in tests and
 * prom-client refuses to register a name twice. The per-tenant counter is a separate metric,
 * not an extra label on gateway_requests_total, so the label set of every metric is fixed
 * whatever `metrics.perTenant` says and tenant cardinality is opt-in.
 */
@Injectable()
export class GatewayMetrics {
  private readonly requests: Counter<'route' | 'method' | 'status'>;
  private readonly requestDuration: Histogram<'route' | 'method' | 'status'>;
  private readonly upstreamDuration: Histogram<'backend'>;
  private readonly backendUp: Gauge<'backend' | 'pool'>;
  private readonly backendWeight: Gauge<'backend' | 'pool'>;
  private readonly circuit: Gauge<'backend'>;
  private readonly retries: Counter<'backend'>;
  private readonly circuitPanics: Counter<'pool' | 'backend'>;
  private readonly upstreamFailures: Counter<'backend' | 'kind'>;
  private readonly rateLimitedTotal: Counter<'scope'>;
  private readonly quotaExceededTotal: Counter<'quota'>;
  private readonly authFailures: Counter<'reason'>;
  private readonly keyLookups: Counter<'result'>;
  private readonly ipDeniedTotal: Counter<'reason'>;
  private readonly inflight: Gauge;
  private readonly bytesTotal: Counter<'direction'>;
  private readonly requestLogDrops: Counter;
  private readonly storeErrors: Counter<'store'>;
  private readonly cacheRequests: Counter<'status'>;
  /** Bound once: a cache hit is the fastest request there is, and label hashing would be most of its metric cost. */
  private readonly cacheRequestSeries: Record<CacheRequestStatus, Counter.Internal>;
  private readonly cacheBytesGauge: Gauge<'tier'>;
  private readonly cacheCoalescedTotal: Counter;
  private readonly cacheEvictions: Counter<'tier'>;
  private readonly tenantRequests?: Counter<'tenant'>;
  private readonly configReloads: Counter<'result'>;
  /**
   * Label-bound children per route/method/status: prom-client otherwise hashes the label
   * object on every call, twice per request. Bounded by routes × methods × statuses.
   */
  private readonly requestSeries = new Map<string, { count: Counter.Internal; duration: Histogram.Internal<'route' | 'method' | 'status'> }>();

  constructor(config: GatewayConfig, @Optional() registry?: Registry) {
    const r = registry ?? defaultRegistry;
    this.requests = counter(r, 'gateway_requests_total', 'Requests answered, by route template, method and status.', ['route', 'method', 'status']);
    this.requestDuration = histogram(r, 'gateway_request_duration_seconds', 'Time from the first byte of the request to the end of the response.', ['route', 'method', 'status'], REQUEST_BUCKETS);
    this.upstreamDuration = histogram(r, 'gateway_upstream_duration_seconds', 'Time until a backend answered with response headers, per attempt.', ['backend'], UPSTREAM_BUCKETS);
    // With several workers each one probes and breaks circuits on its own; the merged scrape
    // (cluster-metrics.ts) shows the worst view: down if any worker sees it down, the most open circuit.
    this.backendUp = gauge(r, 'gateway_backend_up', '1 when the backend passes its active health checks, else 0.', ['backend', 'pool'], 'min');
    this.backendWeight = gauge(r, 'gateway_backend_weight', 'Configured balancer weight of the backend (0 when disabled).', ['backend', 'pool'], 'max');
    this.circuit = gauge(r, 'gateway_circuit_state', 'Circuit breaker state: 0 closed, 1 half-open, 2 open.', ['backend'], 'max');
    this.retries = counter(r, 'gateway_retries_total', 'Requests retried on another backend after a failure of this one.', ['backend']);
    this.circuitPanics = counter(
      r,
      'gateway_circuit_panic_total',
      'Requests sent to a backend whose open circuit was ignored, because open circuits already removed half the pool weight.',
      ['pool', 'backend'],
    );
    this.upstreamFailures = counter(r, 'gateway_upstream_failures_total', 'Failed upstream attempts, by backend and kind (connect, timeout, protocol).', ['backend', 'kind']);
    this.rateLimitedTotal = counter(r, 'gateway_rate_limited_total', 'Requests refused with 429 by a rate limit, by scope (ip, tenant, route).', ['scope']);
    this.quotaExceededTotal = counter(r, 'gateway_quota_exceeded_total', 'Requests refused with 429 quota_exceeded, by quota.', ['quota']);
    this.authFailures = counter(r, 'gateway_auth_failures_total', 'Failed authentications, by reason.', ['reason']);
    this.keyLookups = counter(r, 'gateway_auth_key_lookups_total', 'API-key database lookups on a key-cache miss, by result (found, unknown).', ['result']);
    this.ipDeniedTotal = counter(r, 'gateway_ip_denied_total', 'Requests refused by an IP list, by reason (deny_list, allowlist).', ['reason']);
    this.inflight = gauge(r, 'gateway_inflight_requests', 'Requests received and not yet finished or aborted.', []);
    this.bytesTotal = counter(r, 'gateway_bytes_total', 'Body bytes transferred through the proxy: in = from clients, out = to clients.', ['direction']);
    this.requestLogDrops = counter(r, 'gateway_request_log_dropped_total', 'Request-log entries dropped because the in-memory queue was full.', []);
    this.storeErrors = counter(r, 'gateway_store_errors_total', 'Failed calls to a backing store, by store (redis, postgres).', ['store']);
    this.cacheRequests = counter(r, 'gateway_cache_requests_total', 'Response-cache lookups, by X-Cache-Status (hit, miss, bypass).', ['status']);
    this.cacheRequestSeries = {
      hit: this.cacheRequests.labels({ status: 'hit' }),
      miss: this.cacheRequests.labels({ status: 'miss' }),
      bypass: this.cacheRequests.labels({ status: 'bypass' }),
    };
    this.cacheBytesGauge = gauge(r, 'gateway_cache_bytes', 'Bytes held by the response cache, by tier (memory, disk).', ['tier']);
    this.cacheCoalescedTotal = counter(r, 'gateway_cache_coalesced_total', 'Cache misses that joined a fetch already under way instead of making their own.', []);
    this.cacheEvictions = counter(r, 'gateway_cache_evictions_total', 'Cache entries dropped to make room, by tier (memory, disk).', ['tier']);
    this.configReloads = counter(r, 'gateway_config_reloads_total', 'Configuration reloads (file change, SIGHUP, admin API), by result (success, failure).', ['result']);
    if (config.metrics.perTenant) {
      this.tenantRequests = counter(r, 'gateway_tenant_requests_total', 'Authenticated requests, by tenant id (metrics.perTenant).', ['tenant']);
    }
  }

  /** A configuration reload was applied (`success`) or refused (`failure`). */
  configReloaded(result: 'success' | 'failure'): void {
    this.configReloads.inc({ result });
  }

  /** One finished (or aborted) request. Called by the metrics hook; `route` is a template. */
  requestObserved(route: string, method: string, status: number, seconds: number, tenantId?: string): void {
    const key = `${route} ${method} ${status}`;
    let series = this.requestSeries.get(key);
    if (!series) {
      const labels = { route, method, status: String(status) };
      series = { count: this.requests.labels(labels), duration: this.requestDuration.labels(labels) };
      this.requestSeries.set(key, series);
    }
    series.count.inc();
    series.duration.observe(seconds);
    if (tenantId && this.tenantRequests) this.tenantRequests.inc({ tenant: tenantId });
  }

  requestStarted(): void {
    this.inflight.inc();
  }

  requestEnded(): void {
    this.inflight.dec();
  }

  /** One upstream attempt's time to response headers (or to its failure). */
  upstreamObserved(backend: string, seconds: number): void {
    this.upstreamDuration.observe({ backend }, seconds);
  }

  /** Health and weight of a backend, set on every transition and when the admin API changes it. */
  backendState(backend: string, pool: string, up: boolean, weight: number): void {
    this.backendUp.set({ backend, pool }, up ? 1 : 0);
    this.backendWeight.set({ backend, pool }, weight);
  }

  /** A backend was deleted (or moved to another pool): stop exporting its old series. */
  backendRemoved(backend: string, pool: string): void {
    this.backendUp.remove({ backend, pool });
    this.backendWeight.remove({ backend, pool });
    this.circuit.remove({ backend });
  }

  circuitState(backend: string, state: CircuitStateName): void {
    this.circuit.set({ backend }, CIRCUIT_VALUE[state]);
  }

  retried(backend: string): void {
    this.retries.inc({ backend });
  }

  /** A request went to `backend` past its open circuit (the pool's panic threshold). */
  circuitPanic(pool: string, backend: string): void {
    this.circuitPanics.inc({ pool, backend });
  }

  /** One upstream attempt failed before the backend answered (`connect`, `timeout`, `protocol`). */
  upstreamFailed(backend: string, kind: string): void {
    this.upstreamFailures.inc({ backend, kind });
  }

  rateLimited(scope: string): void {
    this.rateLimitedTotal.inc({ scope });
  }

  quotaExceeded(quota: string): void {
    this.quotaExceededTotal.inc({ quota });
  }

  authFailed(reason: string): void {
    this.authFailures.inc({ reason });
  }

  /** A key-cache miss that went to PostgreSQL; a flood of unknown keys shows here first. */
  keyLookup(result: 'found' | 'unknown'): void {
    this.keyLookups.inc({ result });
  }

  ipDenied(reason: string): void {
    this.ipDeniedTotal.inc({ reason });
  }

  /**
   * Bytes moved outside the per-request accounting. Proxied requests need not call it: the
   * metrics hook adds `request.gw.bytesIn/bytesOut` when the response ends.
   */
  bytes(direction: ByteDirection, n: number): void {
    if (n > 0) this.bytesTotal.inc({ direction }, n);
  }

  requestLogDropped(n = 1): void {
    this.requestLogDrops.inc(n);
  }

  storeError(store: MetricsStore): void {
    this.storeErrors.inc({ store });
  }

  cacheRequest(status: CacheRequestStatus): void {
    this.cacheRequestSeries[status].inc();
  }

  cacheBytes(tier: CacheTier, bytes: number): void {
    this.cacheBytesGauge.set({ tier }, bytes);
  }

  cacheCoalesced(): void {
    this.cacheCoalescedTotal.inc();
  }

  cacheEvicted(tier: CacheTier): void {
    this.cacheEvictions.inc({ tier });
  }
}

function counter<L extends string>(r: Registry, name: string, help: string, labelNames: L[]): Counter<L> {
  return (r.getSingleMetric(name) as Counter<L> | undefined) ?? new Counter({ name, help, labelNames, registers: [r] });
}

/** `aggregator`: how the merged scrape of several workers combines this gauge (summed by default). */
function gauge<L extends string>(r: Registry, name: string, help: string, labelNames: L[], aggregator?: Aggregator): Gauge<L> {
  return (r.getSingleMetric(name) as Gauge<L> | undefined) ?? new Gauge({ name, help, labelNames, registers: [r], ...(aggregator ? { aggregator } : {}) });
}

function histogram<L extends string>(r: Registry, name: string, help: string, labelNames: L[], buckets: number[]): Histogram<L> {
  return (r.getSingleMetric(name) as Histogram<L> | undefined) ?? new Histogram({ name, help, labelNames, buckets, registers: [r] });
}
