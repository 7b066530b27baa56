/**
 * One upstream pool's backends and everything the request path needs to choose one (docs/proxy-and-backends.md):
 * configuration, active health (HealthTracker), passive health and back-pressure
 * (CircuitBreaker), in-flight counts, and the balancing strategy. Pure and synchronous: the Nest
 * proxy service, the scheduled prober and the admin/reload code feed it events; it never does
 * I/O or keeps timers, and every time-based state lapses by itself through the injected clock.
 *
 * One BackendPool per pool name (`imgproxy`, or each configured upstream), so each can have its own
 * balancer and thresholds.
 *
 * Panic threshold (Envoy's): passive ejection (open circuits) never takes more than
 * `maxEjectedShare` (half) of the weight that active health checks admit. Open circuits are
 * honoured in the order they opened while their weight fits; the ones beyond are ignored and
 * their backends keep taking traffic, since sending requests to a backend that may be failing
 * beats answering 503 to every tenant because of circuits that one tenant's traffic may have
 * opened. Active health checks still eject any number of backends.
 */
import type { BalancerContext, BalancerStrategy, WeightedCandidate } from '../balancer/balancer.strategy';
import { type BalancerName, createBalancer } from '../balancer/balancers';
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

/** Told about the panic threshold's decisions, to log and count them (the pool itself does no I/O). */
export interface BackendPoolObserver {
  /** The set of backends whose open circuit is ignored changed; empty when the pool left panic. */
  panicChanged?(ignored: readonly BackendConfig[]): void;
  /** A request went to a backend whose open circuit the panic threshold ignores. */
  panicRouted?(backend: BackendConfig): void;
}

export interface BackendPoolOptions {
  /** A strategy name, or an instance (specs, custom strategies). Default weighted-round-robin. */
  balancer?: BalancerName | BalancerStrategy;
  health: Omit<HealthTrackerOptions, 'now'>;
  circuit: Omit<CircuitBreakerOptions, 'now'>;
  /** Largest share of the actively healthy weight open circuits may remove. Default 0.5. */
  maxEjectedShare?: number;
  observer?: BackendPoolObserver;
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
  /** The backend answered with anything but a 429, 5xx included. Returns 'closed' when that closed the circuit. */
  succeeded(): 'closed' | undefined;
  /** Transport failure (refused, reset, malformed reply) or timeout. Returns 'open' when that opened the circuit. */
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
  /** Its circuit is open but ignored: passive ejection already removes half the pool's weight. */
  circuitIgnored: boolean;
  /** Consecutive proxy failures counted by the circuit breaker. */
  consecutiveFailures: number;
  backPressure: boolean;
  inFlight: number;
  /** Whether `choose` could pick it right now (enabled, weighted, healthy, circuit allowing or ignored). */
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

  /** Enabled, weighted and passing its active checks: what passive ejection may still take away. */
  admitted(): boolean {
    return this.backend.enabled && hasWeight(this.weight) && this.health.isHealthy();
  }
}

/** Which members may take a request now, and which of them only because the panic threshold ignores their open circuit. */
interface Admission {
  /** Candidates for this request (not excluded), and those of them not under back-pressure. */
  usable: PoolMember[];
  relieved: PoolMember[];
  ignored: ReadonlySet<PoolMember>;
}

const NONE: ReadonlySet<PoolMember> = new Set();

export class BackendPool {
  private members = new Map<string, PoolMember>();
  private strategy: BalancerStrategy;
  private readonly now: () => number;
  private readonly maxEjectedShare: number;
  /** The backends whose open circuit was ignored at the last choice, to report changes once. */
  private ignoring: ReadonlySet<PoolMember> = NONE;

  constructor(private readonly options: BackendPoolOptions) {
    this.now = options.now ?? Date.now;
    this.maxEjectedShare = options.maxEjectedShare ?? 0.5;
    if (!(this.maxEjectedShare >= 0 && this.maxEjectedShare <= 1)) throw new RangeError('maxEjectedShare must be within [0, 1]');
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
   * `no_healthy_backend`). Candidates are enabled, weighted, healthy, circuit-allowing (or with
   * a circuit the panic threshold ignores) and not in `ctx.exclude`; among them, those not under
   * back-pressure are preferred, but a backend under back-pressure still serves when nothing else
   * can, since a queued request beats a 503.
   */
  choose(ctx: BalancerContext = {}): BackendLease | undefined {
    const { usable, relieved, ignored } = this.admission(ctx.exclude);
    this.notePanic(ignored);
    const picked = this.strategy.pick(relieved.length > 0 ? relieved : usable, ctx);
    const member = picked && this.members.get(picked.id);
    if (member === undefined) return undefined;

    // A backend chosen past its ignored open circuit is no probe: its outcome leaves the circuit as it is.
    const probe = member.circuit.state() === 'half-open' && member.circuit.reserveProbe();
    if (ignored.has(member)) this.options.observer?.panicRouted?.(member.backend);
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
    const { usable, ignored } = this.admission();
    const available = new Set(usable);
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
        circuitIgnored: ignored.has(member),
        consecutiveFailures: circuit.consecutiveFailures,
        backPressure: circuit.backPressureUntil !== undefined,
        inFlight: member.inFlight,
        available: available.has(member),
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

  /**
   * The members that may take a request: admitted by their active checks, and either allowing
   * requests by their circuit or beyond the panic threshold's budget. Ejected members are
   * honoured in the order their circuits opened while their weight fits within `maxEjectedShare`
   * of the admitted weight (the whole pool's: `exclude` only narrows this request's candidates);
   * the rest are ignored, that is usable. One pass in the usual case of no open circuit.
   */
  private admission(exclude?: ReadonlySet<string>): Admission {
    const usable: PoolMember[] = [];
    const relieved: PoolMember[] = [];
    const candidate = (member: PoolMember): void => {
      if (exclude?.has(member.id)) return;
      usable.push(member);
      if (!member.circuit.underBackPressure()) relieved.push(member);
    };
    let ejected: PoolMember[] | undefined;
    let admittedWeight = 0;
    for (const member of this.members.values()) {
      if (!member.admitted()) continue;
      admittedWeight += member.weight;
      if (member.circuit.canRequest()) candidate(member);
      else (ejected ??= []).push(member);
    }
    if (ejected === undefined) return { usable, relieved, ignored: NONE };
    ejected.sort((a, b) => (a.circuit.openedSince() ?? 0) - (b.circuit.openedSince() ?? 0));
    const budget = admittedWeight * this.maxEjectedShare;
    const ignored = new Set<PoolMember>();
    let ejectedWeight = 0;
    for (const member of ejected) {
      if (ejectedWeight + member.weight <= budget) {
        ejectedWeight += member.weight;
      } else {
        ignored.add(member);
        candidate(member);
      }
    }
    return { usable, relieved, ignored };
  }

  /** Reports a change of the ignored set once, not on every request. */
  private notePanic(ignored: ReadonlySet<PoolMember>): void {
    const previous = this.ignoring;
    if (previous.size === 0 && ignored.size === 0) return;
    if (previous.size === ignored.size && [...ignored].every((member) => previous.has(member))) return;
    this.ignoring = ignored;
    this.options.observer?.panicChanged?.([...ignored].map((member) => member.backend));
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
