import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { VARY_ANY, parseVary } from './cache-key';

/** The response directives of `Cache-Control` the cache acts on (RFC 9111 §5.2.2). */
export interface ResponseCacheControl {
  noStore: boolean;
  noCache: boolean;
  private: boolean;
  maxAge?: number;
  sMaxAge?: number;
}

/** What a response allows. */
export interface Freshness {
  /**
   * May go to the other requests waiting on the same fetch: false for `private`, `no-store`,
   * `no-cache`, `Set-Cookie` and `Vary: *`, which are one client's answer.
   */
  shareable: boolean;
  /** May be stored: shareable, status 200, and fresh for at least a second. */
  storable: boolean;
  /** Seconds it stays fresh once stored, after the ceiling. */
  ttlSeconds: number;
  /** Why it is not stored, for the debug log. */
  reason?: 'private' | 'no-store' | 'no-cache' | 'set-cookie' | 'vary-any' | 'status' | 'expired';
  varyNames: readonly string[];
}

type Headers = IncomingHttpHeaders | OutgoingHttpHeaders;

/** Cache-Control of a response; unknown directives are ignored, a repeated one keeps its first value. */
export function parseCacheControl(value: string | string[] | number | undefined): ResponseCacheControl {
  const out: ResponseCacheControl = { noStore: false, noCache: false, private: false };
  if (value === undefined) return out;
  const text = Array.isArray(value) ? value.join(',') : String(value);
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    const name = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase();
    const raw = eq === -1 ? undefined : part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
    switch (name) {
      case 'no-store':
        out.noStore = true;
        break;
      // `no-cache="Set-Cookie"` names fields; treated like plain no-cache (never stored), the safe reading.
      case 'no-cache':
        out.noCache = true;
        break;
      case 'private':
        out.private = true;
        break;
      case 'max-age':
        out.maxAge ??= seconds(raw);
        break;
      case 's-maxage':
        out.sMaxAge ??= seconds(raw);
        break;
    }
  }
  return out;
}

/** A delta-seconds value; an invalid one means stale (0), as RFC 9111 §1.2.2 asks. */
function seconds(raw: string | undefined): number {
  if (raw === undefined || !/^\d+$/.test(raw)) return 0;
  return Math.min(Number(raw), 2 ** 31 - 1);
}

/**
 * Whether and how long a response may be kept. `ttlCapSeconds` is the route's TTL
 * (`cache.defaultTtlSeconds` or a route's `cache.ttlSeconds`): the lifetime when the response
 * says nothing, and the ceiling of what it says (imgproxy sends a year by default). `s-maxage`
 * wins over `max-age` (this is a shared cache), both over `Expires`.
 */
export function responseFreshness(statusCode: number, headers: Headers, ttlCapSeconds: number, nowMs: number): Freshness {
  const varyNames = parseVary(headers.vary);
  const cc = parseCacheControl(headers['cache-control']);
  const unshared = (reason: Freshness['reason']): Freshness => ({ shareable: false, storable: false, ttlSeconds: 0, reason, varyNames });
  if (headers['set-cookie'] !== undefined) return unshared('set-cookie');
  if (cc.private) return unshared('private');
  if (cc.noStore) return unshared('no-store');
  if (cc.noCache) return unshared('no-cache');
  if (varyNames.length === 1 && varyNames[0] === VARY_ANY) return unshared('vary-any');

  let lifetime = cc.sMaxAge ?? cc.maxAge ?? expiresLifetime(headers, nowMs) ?? ttlCapSeconds;
  lifetime = Math.min(lifetime, ttlCapSeconds);
  if (statusCode !== 200) return { shareable: true, storable: false, ttlSeconds: 0, reason: 'status', varyNames };
  if (lifetime < 1) return { shareable: true, storable: false, ttlSeconds: 0, reason: 'expired', varyNames };
  return { shareable: true, storable: true, ttlSeconds: lifetime, varyNames };
}

/** `Expires - Date` in seconds; an unparsable Expires means already expired. */
function expiresLifetime(headers: Headers, nowMs: number): number | undefined {
  const expires = first(headers.expires);
  if (expires === undefined) return undefined;
  const at = Date.parse(expires);
  if (Number.isNaN(at)) return 0;
  const date = first(headers.date);
  const dateMs = date === undefined ? NaN : Date.parse(date);
  return Math.max(0, Math.floor((at - (Number.isNaN(dateMs) ? nowMs : dateMs)) / 1000));
}

function first(value: string | string[] | number | undefined): string | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value[0] : String(value);
}
