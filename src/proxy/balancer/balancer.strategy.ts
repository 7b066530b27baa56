/**
 * Load-balancing strategies chosen by name (docs/proxy-and-backends.md, docs/routes.md), Kong-style: small interchangeable
 * classes behind one interface, no Nest and no I/O, so the proxy service and the specs drive them
 * with plain arrays.
 *
 * A strategy only orders and picks: the caller (BackendPool) decides which backends are
 * candidates at all (enabled, healthy, circuit allowing). Strategies keep their per-backend state
 * keyed by `id`, so ids must be unique within one strategy instance and stable across config
 * reloads.
 */
import { IpHash } from './ip-hash';
import { LeastConnections } from './least-connections';
import { WeightedRandom } from './random';
import { WeightedRoundRobin } from './weighted-round-robin';

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

export const BALANCER_NAMES = ['weighted-round-robin', 'least-connections', 'ip-hash', 'random'] as const;
export type BalancerName = (typeof BALANCER_NAMES)[number];

export interface BalancerOptions {
  /** Uniform in [0, 1); only `random` uses it. Injected by specs for reproducible draws. */
  rng?: () => number;
}

/** A fresh strategy (its own state) for one upstream pool. */
export function createBalancer<T extends WeightedCandidate = WeightedCandidate>(
  name: BalancerName,
  options: BalancerOptions = {},
): BalancerStrategy<T> {
  switch (name) {
    case 'weighted-round-robin':
      return new WeightedRoundRobin<T>();
    case 'least-connections':
      return new LeastConnections<T>();
    case 'ip-hash':
      return new IpHash<T>();
    case 'random':
      return new WeightedRandom<T>(options.rng);
    default: {
      // Config is validated against BALANCER_NAMES at the edge; reaching here is a programming error.
      const unknown: never = name;
      throw new RangeError(`unknown balancer: ${String(unknown)}`);
    }
  }
}
