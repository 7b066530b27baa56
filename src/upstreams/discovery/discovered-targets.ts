import { isIPv6 } from 'node:net';
import type { BackendConfig } from '../backend-state/backend-pool';

/** One backend found in DNS. */
export interface DiscoveredTarget {
  /** `<upstream>-<address>-<port>`: stable across refreshes, so health and circuit state survive them. */
  readonly id: string;
  /** The IP address (what is connected to). */
  readonly host: string;
  readonly port: number;
  /** The balancer weight: 1 for `dns`, the SRV record's weight for `srv` (0 becomes 1). */
  readonly weight: number;
  /** `<scheme>://<host>:<port>`, IPv6 in brackets. */
  readonly url: string;
  /** The SRV target the address belongs to (`srv` only). */
  readonly target?: string;
}

export interface SrvAnswer {
  name: string;
  port: number;
  priority: number;
  weight: number;
}

export function targetId(upstream: string, host: string, port: number): string {
  return `${upstream}-${host}-${port}`;
}

export function makeTarget(upstream: string, scheme: string, host: string, port: number, weight: number, target?: string): DiscoveredTarget {
  const authority = isIPv6(host) ? `[${host}]` : host;
  return Object.freeze({
    id: targetId(upstream, host, port),
    host,
    port,
    weight,
    url: `${scheme}://${authority}:${port}`,
    ...(target !== undefined ? { target } : {}),
  });
}

/**
 * SRV records grouped by priority, lowest (most preferred) first (RFC 2782). A target of `.`
 * means "no service here" and is dropped.
 */
export function priorityGroups(records: readonly SrvAnswer[]): SrvAnswer[][] {
  const groups = new Map<number, SrvAnswer[]>();
  for (const record of records) {
    if (record.name === '' || record.name === '.') continue;
    const group = groups.get(record.priority) ?? [];
    group.push(record);
    groups.set(record.priority, group);
  }
  return [...groups.entries()].sort(([a], [b]) => a - b).map(([, group]) => group);
}

/**
 * RFC 2782's weight is a relative share within one priority group, which is what a balancer
 * weight is. 0 ("rarely") becomes 1: the pool reads 0 as "drained, never chosen".
 */
export function srvWeight(weight: number): number {
  return weight > 0 ? weight : 1;
}

/**
 * One entry per id, sorted by id. Two records naming the same address and port (two SRV targets
 * resolving to one machine) add their weights: each record asked for its share.
 */
export function normaliseTargets(targets: readonly DiscoveredTarget[]): DiscoveredTarget[] {
  const byId = new Map<string, DiscoveredTarget>();
  for (const target of targets) {
    const seen = byId.get(target.id);
    byId.set(target.id, seen ? Object.freeze({ ...seen, weight: seen.weight + target.weight }) : target);
  }
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Whether two normalised sets would configure the pool alike. */
export function sameTargets(a: readonly DiscoveredTarget[], b: readonly DiscoveredTarget[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((target, i) => target.id === b[i].id && target.weight === b[i].weight && target.url === b[i].url);
}

/** A discovered target as the upstream's pool takes it (BackendPool.replaceAll). */
export function toBackendConfig(target: DiscoveredTarget, pool: string): BackendConfig {
  return { id: target.id, name: target.id, url: target.url, weight: target.weight, enabled: true, pool };
}
