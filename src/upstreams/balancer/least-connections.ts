import type { BalancerContext, BalancerStrategy, WeightedCandidate } from './balancer.strategy';
import { eligibleCandidates } from './eligible-candidates';

/**
 * Weighted least connections (nginx `least_conn`): the backend with the fewest active requests
 * per unit of weight wins. Active counts come from the caller's `acquire`/`release`, because only
 * the caller knows when a streamed response has really finished.
 *
 * Ties, common when idle (every backend at 0), go to the tied backend picked least recently, so
 * light traffic still spreads round-robin instead of always hitting the first backend.
 */
export class LeastConnections<T extends WeightedCandidate = WeightedCandidate> implements BalancerStrategy<T> {
  private readonly active = new Map<string, number>();
  private readonly lastPicked = new Map<string, number>();
  private picks = 0;

  pick(candidates: readonly T[], ctx?: BalancerContext): T | undefined {
    const eligible = eligibleCandidates(candidates, ctx?.exclude);
    let best: T | undefined;
    let bestActive = 0;
    for (const candidate of eligible) {
      const active = this.active.get(candidate.id) ?? 0;
      if (best === undefined) {
        best = candidate;
        bestActive = active;
        continue;
      }
      // active/weight compared by cross-multiplying, as nginx does, to stay in exact arithmetic.
      const lhs = active * best.weight;
      const rhs = bestActive * candidate.weight;
      if (lhs < rhs || (lhs === rhs && this.pickedBefore(candidate, best))) {
        best = candidate;
        bestActive = active;
      }
    }
    if (best !== undefined) this.lastPicked.set(best.id, ++this.picks);
    return best;
  }

  acquire(id: string): void {
    this.active.set(id, (this.active.get(id) ?? 0) + 1);
  }

  release(id: string): void {
    const active = this.active.get(id);
    // A release after `forget` (request outlived its backend's removal) must not go negative.
    if (active === undefined) return;
    if (active <= 1) this.active.delete(id);
    else this.active.set(id, active - 1);
  }

  forget(id: string): void {
    this.active.delete(id);
    this.lastPicked.delete(id);
  }

  /** Active requests this strategy counts for `id`. */
  activeCount(id: string): number {
    return this.active.get(id) ?? 0;
  }

  private pickedBefore(a: T, b: T): boolean {
    return (this.lastPicked.get(a.id) ?? 0) < (this.lastPicked.get(b.id) ?? 0);
  }
}
