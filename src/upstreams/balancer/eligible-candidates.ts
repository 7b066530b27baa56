import type { WeightedCandidate } from './balancer.strategy';

/**
 * The candidates a strategy may pick: positive finite weight and not excluded. Every strategy
 * filters the same way so draining (weight 0) and retry exclusion mean the same thing whichever
 * algorithm an upstream uses.
 */
export function eligibleCandidates<T extends WeightedCandidate>(
  candidates: readonly T[],
  exclude: ReadonlySet<string> | undefined,
): T[] {
  const eligible: T[] = [];
  for (const candidate of candidates) {
    if (!hasWeight(candidate.weight)) continue;
    if (exclude?.has(candidate.id)) continue;
    eligible.push(candidate);
  }
  return eligible;
}

/** A positive finite weight; 0 (drained), negatives and NaN never take traffic. */
export function hasWeight(weight: number): boolean {
  return weight > 0 && Number.isFinite(weight);
}
