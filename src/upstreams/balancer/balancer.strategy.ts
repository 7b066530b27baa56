/**
 * The contract of the load-balancing strategies (docs/proxy-and-backends.md, docs/routes.md),
 * Kong-style: small interchangeable classes behind one interface, chosen by name (balancers.ts),
 * no Nest and no I/O, so the pools and the specs drive them with plain arrays.
 *
 * A strategy only orders and picks: the caller (BackendPool) decides which backends are
 * candidates at all (enabled, healthy, circuit allowing). Strategies keep their per-backend state
 * keyed by `id`, so ids must be unique within one strategy instance and stable across config
 * reloads.
 */
export interface WeightedCandidate {
  readonly id: string;
  /** Relative share; 0 (or anything not a positive finite number) means drained: never picked. */
  readonly weight: number;
}

export interface BalancerContext {
  /** Resolved client address (docs/proxy-and-backends.md), used by ip-hash. */
  clientIp?: string;
  /** Ids already tried by this request, so a retry lands on another backend. */
  exclude?: ReadonlySet<string>;
}

export interface BalancerStrategy<T extends WeightedCandidate = WeightedCandidate> {
  /** One of `candidates`, or undefined when every candidate is excluded or drained. */
  pick(candidates: readonly T[], ctx?: BalancerContext): T | undefined;
  /** A request to `id` started (least-connections counts these). */
  acquire?(id: string): void;
  /** A request to `id` finished, whatever its outcome. */
  release?(id: string): void;
  /** `id` left the configuration: drop whatever the strategy remembers about it. */
  forget?(id: string): void;
}
