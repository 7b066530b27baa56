/**
 * One upstream pool's backends and everything the request path needs to choose one (docs/proxy-and-backends.md):
 * configuration, active health (HealthTracker), passive health and back-pressure
 * (CircuitBreaker), in-flight counts, and the balancing strategy. Pure and synchronous: the Nest
 * proxy service, the scheduled prober and the admin/reload code feed it events; it never does
 * I/O or keeps timers, and every time-based state lapses by itself through the injected clock.
 *
 * One BackendPool per pool name (`imgproxy`, or each configured upstream), so each can have its own
 * balancer and thresholds.
 */
import {
  createBalancer,
  type BalancerContext,
  type BalancerName,
  type BalancerStrategy,
  type WeightedCandidate,
} from '../balancer/balancer.strategy';
import { hasWeight } from '../balancer/eligible-candidates';
import { CircuitBreaker, type CircuitBreakerOptions, type CircuitState } from './circuit-breaker';
import { HealthTracker, type HealthTrackerOptions, type HealthTransition } from './health-tracker';

export interface BackendConfig {
  readonly id: string;
  readonly name: string;
  readonly url: string;
  /** 0 drains the backend: kept, checked and reported, but never chosen. */
  readonly weight: number;
  readonly enabled: boolean;
  readonly pool: string;
  /**
   * Seed for a backend this pool has not seen yet, e.g. `backends.is_healthy` at start-up.
   * Ignored for a backend already tracked: live state is newer than the database's.
   */
  readonly healthy?: boolean;
}

export interface BackendPoolOptions {
  /** A strategy name, or an instance (specs, custom strategies). Default weighted-round-robin. */
  balancer?: BalancerName | BalancerStrategy;
  health: Omit<HealthTrackerOptions, 'now'>;
  circuit: Omit<CircuitBreakerOptions, 'now'>;
  now?: () => number;
  /** For the `random` strategy. */
  rng?: () => number;
}

/**
 * One request's hold on a backend, from `choose` until the response has finished streaming.
 * Report one outcome when the response headers arrive (or the attempt fails), and release when
 * the body is done or the client went away; release is idempotent, so a `finally` is safe.
 */
export interface BackendLease {
  readonly backend: BackendConfig;
  /** This request is the single half-open probe: its outcome decides the circuit. */
  readonly probe: boolean;
  /** The backend answered (not 5xx, not 429). Returns 'closed' when that closed the circuit. */
  succeeded(): 'closed' | undefined;
  /** Connect error, timeout or 5xx. Returns 'open' when that opened the circuit. */
  failed(): 'open' | undefined;
  /** 429: prefer other backends for `ms` (the circuit breaker's default and cap apply). */
  backPressure(ms?: number): void;
  release(): void;
}

export interface BackendSnapshot {
  id: string;
  name: string;
  /** Only for admins: the health endpoint must strip it for everyone else (docs/proxy-and-backends.md). */
  url: string;
  pool: string;
  weight: number;
  enabled: boolean;
  /** Active health checks' verdict. */
  healthy: boolean;
  circuit: CircuitState;
  /** Consecutive proxy failures counted by the circuit breaker. */
  consecutiveFailures: number;
  backPressure: boolean;
  inFlight: number;
  /** Whether `choose` could pick it right now (enabled, weighted, healthy, circuit allowing). */
  available: boolean;
  lastCheckAt?: number;
  lastCheckOk?: boolean;
  lastError?: string;
}

class PoolMember implements WeightedCandidate {
  id: string;
  weight: number;
  inFlight = 0;

  constructor(
    public backend: BackendConfig,
    public health: HealthTracker,
    public circuit: CircuitBreaker,
  ) {
    this.id = backend.id;
    this.weight = backend.weight;
  }

  /** Whether the member may take a request at all, back-pressure aside. */
  usable(): boolean {
    return this.backend.enabled && hasWeight(this.weight) && this.health.isHealthy() && this.circuit.canRequest();
  }
}

export class BackendPool {
  private members = new Map<string, PoolMember>();
  private strategy: BalancerStrategy;
  private readonly now: () => number;

  constructor(private readonly options: BackendPoolOptions) {
    this.now = options.now ?? Date.now;
    this.strategy = this.buildStrategy(options.balancer ?? 'weighted-round-robin');
  }

  /**
   * Makes `backends` the pool's configuration (boot, admin change, config reload). A backend whose
   * id survives keeps its health, circuit and in-flight count, so a weight change does not put a
   * failing backend back in rotation; if its URL changed it is another server, and its health and
   * circuit start afresh. Backends not listed are dropped. Duplicate ids are refused before
   * anything changes.
   */
  replaceAll(backends: readonly BackendConfig[]): void {
    const ids = new Set<string>();
    for (const backend of backends) {
      if (ids.has(backend.id)) throw new RangeError(`duplicate backend id ${backend.id}`);
      ids.add(backend.id);
    }

    const next = new Map<string, PoolMember>();
    for (const backend of backends) {
      const config = { ...backend };
      const member = this.members.get(backend.id);
      if (member === undefined) {
        next.set(backend.id, new PoolMember(config, this.newHealth(config), this.newCircuit()));
        continue;
      }
      if (member.backend.url !== config.url) {
        member.health = this.newHealth(config);
        member.circuit = this.newCircuit();
      }
      member.backend = config;
      member.weight = config.weight;
      next.set(backend.id, member);
    }
    for (const id of this.members.keys()) {
      if (!next.has(id)) this.strategy.forget?.(id);
    }
    this.members = next;
  }

  /**
   * A backend for one request attempt, or undefined when none can take it (answer 503
   * `no_healthy_backend`). Candidates are enabled, weighted, healthy, circuit-allowing and not in
   * `ctx.exclude`; among them, those not under back-pressure are preferred, but a backend under
   * back-pressure still serves when nothing else can, since a queued request beats a 503.
   */
  choose(ctx: BalancerContext = {}): BackendLease | undefined {
    const usable: PoolMember[] = [];
    const relieved: PoolMember[] = [];
    for (const member of this.members.values()) {
      if (ctx.exclude?.has(member.id) || !member.usable()) continue;
      usable.push(member);
      if (!member.circuit.underBackPressure()) relieved.push(member);
    }
    const picked = this.strategy.pick(relieved.length > 0 ? relieved : usable, ctx);
    const member = picked && this.members.get(picked.id);
    if (member === undefined) return undefined;

    const probe = member.circuit.state() === 'half-open' && member.circuit.reserveProbe();
    member.inFlight++;
    this.strategy.acquire?.(member.id);
    return new PoolLease(member, member.circuit, probe, () => this.release(member));
  }

  /** One active health check's result; returns the transition to log, count and persist. */
  reportHealthCheck(id: string, ok: boolean, error?: string): HealthTransition | undefined {
    // The backend may have been removed while its check was running.
    return this.members.get(id)?.health.report(ok, error);
  }

  /** The configured backends, in order (for the prober). */
  backends(): BackendConfig[] {
    return [...this.members.values()].map((member) => member.backend);
  }

  /** For readiness: at least one backend that active checks consider able to serve. */
  hasHealthyBackend(): boolean {
    for (const member of this.members.values()) {
      if (member.backend.enabled && hasWeight(member.weight) && member.health.isHealthy()) return true;
    }
    return false;
  }

  snapshot(): BackendSnapshot[] {
    return [...this.members.values()].map((member) => {
      const health = member.health.snapshot();
      const circuit = member.circuit.snapshot();
      const snapshot: BackendSnapshot = {
        id: member.id,
        name: member.backend.name,
        url: member.backend.url,
        pool: member.backend.pool,
        weight: member.weight,
        enabled: member.backend.enabled,
        healthy: health.healthy,
        circuit: circuit.state,
        consecutiveFailures: circuit.consecutiveFailures,
        backPressure: circuit.backPressureUntil !== undefined,
        inFlight: member.inFlight,
        available: member.usable(),
      };
      if (health.lastCheckAt !== undefined) snapshot.lastCheckAt = health.lastCheckAt;
      if (health.lastCheckOk !== undefined) snapshot.lastCheckOk = health.lastCheckOk;
      if (health.lastError !== undefined) snapshot.lastError = health.lastError;
      return snapshot;
    });
  }

  /**
   * Switches the algorithm (config reload) without touching health or circuits. The new strategy
   * learns the requests already in flight, so least-connections does not see busy backends as idle.
   */
  setBalancer(balancer: BalancerName | BalancerStrategy): void {
    this.strategy = this.buildStrategy(balancer);
    for (const member of this.members.values()) {
      for (let i = 0; i < member.inFlight; i++) this.strategy.acquire?.(member.id);
    }
  }

  private release(member: PoolMember): void {
    member.inFlight--;
    // A member replaced or removed meanwhile is not the one the strategy now counts under this id.
    if (this.members.get(member.id) === member) this.strategy.release?.(member.id);
  }

  private buildStrategy(balancer: BalancerName | BalancerStrategy): BalancerStrategy {
    return typeof balancer === 'string' ? createBalancer(balancer, { rng: this.options.rng }) : balancer;
  }

  private newHealth(backend: BackendConfig): HealthTracker {
    return new HealthTracker({
      ...this.options.health,
      initiallyHealthy: backend.healthy ?? this.options.health.initiallyHealthy,
      now: this.now,
    });
  }

  private newCircuit(): CircuitBreaker {
    return new CircuitBreaker({ ...this.options.circuit, now: this.now });
  }
}

class PoolLease implements BackendLease {
  private settled = false;
  private released = false;

  constructor(
    private readonly member: PoolMember,
    // The circuit at choose time: if the URL changes meanwhile, this outcome is about the old server.
    private readonly circuit: CircuitBreaker,
    readonly probe: boolean,
    private readonly onRelease: () => void,
  ) {}

  get backend(): BackendConfig {
    return this.member.backend;
  }

  succeeded(): 'closed' | undefined {
    if (!this.settle()) return undefined;
    return this.circuit.onSuccess();
  }

  failed(): 'open' | undefined {
    if (!this.settle()) return undefined;
    return this.circuit.onFailure();
  }

  backPressure(ms?: number): void {
    if (!this.settle()) return;
    this.circuit.onBackPressure(ms);
    // A 429 neither condemns nor clears the backend: let another request probe it later.
    if (this.probe) this.circuit.releaseProbe();
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    // A probe that ends without a verdict (client abort) must not hold the slot until it times out.
    if (this.probe && !this.settled) this.circuit.releaseProbe();
    this.onRelease();
  }

  /**
   * True for the first outcome only. In half-open only the probe speaks: a straggler sent before
   * the circuit opened must neither close it nor re-open it with a longer cool-down.
   */
  private settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    return this.probe || this.circuit.state() !== 'half-open';
  }
}
