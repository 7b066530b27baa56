import type { BalancerStrategy, WeightedCandidate } from './balancer.strategy';
import { IpHash } from './ip-hash';
import { LeastConnections } from './least-connections';
import { WeightedRandom } from './random';
import { WeightedRoundRobin } from './weighted-round-robin';

/**
 * The strategies by name: the one place that knows them all, apart from the contract they share
 * (balancer.strategy.ts), so no strategy imports the list it is part of.
 */
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
