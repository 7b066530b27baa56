import type { BalancerContext, BalancerStrategy, WeightedCandidate } from './balancer.strategy';
import { eligibleCandidates } from './eligible-candidates';

/**
 * Weighted random: each eligible backend is picked with probability weight / total. Stateless, so
 * several gateway instances need no coordination; the rng is injectable for reproducible specs.
 */
export class WeightedRandom<T extends WeightedCandidate = WeightedCandidate> implements BalancerStrategy<T> {
  constructor(private readonly rng: () => number = Math.random) {}

  pick(candidates: readonly T[], ctx?: BalancerContext): T | undefined {
    const eligible = eligibleCandidates(candidates, ctx?.exclude);
    if (eligible.length === 0) return undefined;
    let total = 0;
    for (const candidate of eligible) total += candidate.weight;
    let draw = this.rng() * total;
    for (const candidate of eligible) {
      if (draw < candidate.weight) return candidate;
      draw -= candidate.weight;
    }
    // Rounding in the subtractions can leave a draw just past the last slice: it belongs there.
    return eligible[eligible.length - 1];
  }
}
