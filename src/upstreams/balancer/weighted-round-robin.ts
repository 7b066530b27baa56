import type { BalancerContext, BalancerStrategy, WeightedCandidate } from './balancer.strategy';
import { eligibleCandidates } from './eligible-candidates';

/**
 * nginx's smooth weighted round robin (ngx_http_upstream_get_peer): every eligible backend's
 * current weight grows by its weight, the largest wins (first in candidate order on a tie) and
 * gives back the total. 70/30 then yields exactly 70/30 per 100 picks, interleaved instead of
 * 70 in a row, and 5/1/1 yields a a b a c a a.
 *
 * Current weights live here, keyed by id, not in the candidate objects, so they survive the
 * per-call candidate lists the pool builds (health, circuits, retries). As in nginx, a backend
 * left out of a call keeps its current weight untouched rather than being reset.
 *
 * When the eligible set differs from the previous call's (a backend removed, added, re-weighted,
 * excluded), the carried-over weights were earned against another total and can be far apart:
 * after the 98-weight peer of 1/1/98 leaves, one weight-1 peer may lead the other by ~100, which
 * plain nginx arithmetic would pay out as ~50 picks in a row. So on a change the eligible current
 * weights are re-centred on zero (who is due next stays the same) and clamped to ±total, which
 * bounds any catch-up run to a few picks (3 for 1/1, where it would have been ~50). While the set
 * is stable this never runs, and the sequence is exactly nginx's.
 */
export class WeightedRoundRobin<T extends WeightedCandidate = WeightedCandidate> implements BalancerStrategy<T> {
  private readonly current = new Map<string, number>();
  private previousIds: string[] = [];
  private previousWeights: number[] = [];

  pick(candidates: readonly T[], ctx?: BalancerContext): T | undefined {
    const eligible = eligibleCandidates(candidates, ctx?.exclude);
    if (eligible.length === 0) return undefined;

    let total = 0;
    for (const candidate of eligible) total += candidate.weight;
    if (this.setChanged(eligible)) this.recentre(eligible, total);

    let best = eligible[0];
    let bestCurrent = -Infinity;
    for (const candidate of eligible) {
      const current = (this.current.get(candidate.id) ?? 0) + candidate.weight;
      this.current.set(candidate.id, current);
      if (current > bestCurrent) {
        best = candidate;
        bestCurrent = current;
      }
    }
    this.current.set(best.id, bestCurrent - total);
    return best;
  }

  forget(id: string): void {
    this.current.delete(id);
  }

  private setChanged(eligible: readonly T[]): boolean {
    let changed = eligible.length !== this.previousIds.length;
    for (let i = 0; !changed && i < eligible.length; i++) {
      changed = eligible[i].id !== this.previousIds[i] || eligible[i].weight !== this.previousWeights[i];
    }
    if (changed) {
      this.previousIds = eligible.map((c) => c.id);
      this.previousWeights = eligible.map((c) => c.weight);
    }
    return changed;
  }

  private recentre(eligible: readonly T[], total: number): void {
    let sum = 0;
    for (const candidate of eligible) sum += this.current.get(candidate.id) ?? 0;
    const mean = sum / eligible.length;
    for (const candidate of eligible) {
      const centred = (this.current.get(candidate.id) ?? 0) - mean;
      this.current.set(candidate.id, Math.min(total, Math.max(-total, centred)));
    }
  }
}
