import type { IncomingHttpHeaders } from 'node:http';

/**
 * Cache keys (docs/cache.md). An entry is found in two steps, the classic scheme of shared caches:
 * the base key (tenant + upstream path) names a resource, and the names its last response listed
 * in `Vary` say which request headers pick one of its variants. The variant key is the base key
 * plus the values of those headers, `Accept` reduced to the bucket the backend decides on.
 */

/** What the backend's output can depend on in `Accept`: imgproxy picks AVIF, WebP or the source's format. */
export type AcceptBucket = 'avif' | 'webp' | 'other';

/** Separates the parts of a key; it cannot occur in a tenant id, a request target or a header value. */
const SEPARATOR = '\n';

/** Vary names assumed for a resource whose response has not been seen yet: what imgproxy varies on. */
export const DEFAULT_VARY: readonly string[] = Object.freeze(['accept']);

/** Stands for `Vary: *`: the response never matches another request and is never stored. */
export const VARY_ANY = '*';

/**
 * The bucket of an `Accept` header. imgproxy itself tests for the substring (`image/avif`, then
 * `image/webp`), whatever the q-values say; the bucket follows the same test, so two requests in
 * one bucket always get the same output and the raw header (thousands of browser variants) never
 * splits the cache.
 */
export function acceptBucket(accept: string | string[] | undefined): AcceptBucket {
  if (accept === undefined) return 'other';
  const text = typeof accept === 'string' ? accept : accept.join(',');
  if (text.includes('image/avif')) return 'avif';
  if (text.includes('image/webp')) return 'webp';
  return 'other';
}

/** `tenant \n upstreamPath`: tenants never share an entry, whatever their paths. */
export function baseKey(tenantId: string, upstreamPath: string): string {
  return tenantId + SEPARATOR + upstreamPath;
}

/**
 * The header names of a `Vary` value: lower case, sorted, without duplicates; `[VARY_ANY]` for
 * `*`; empty when absent. Sorting makes `Vary: Accept, DPR` and `Vary: dpr, accept` one key.
 */
export function parseVary(value: string | string[] | number | undefined): readonly string[] {
  if (value === undefined) return [];
  const text = Array.isArray(value) ? value.join(',') : String(value);
  if (text.trim() === '') return [];
  const names = new Set<string>();
  for (const part of text.split(',')) {
    const name = part.trim().toLowerCase();
    if (name === VARY_ANY) return [VARY_ANY];
    if (name !== '') names.add(name);
  }
  return [...names].sort();
}

/** The variant key of a request, given the Vary names of its resource. */
export function variantKey(base: string, varyNames: readonly string[], headers: IncomingHttpHeaders): string {
  if (varyNames.length === 0) return base;
  let key = base;
  for (let i = 0; i < varyNames.length; i++) {
    const name = varyNames[i];
    key += SEPARATOR + name + '=' + (name === 'accept' ? acceptBucket(headers.accept) : headerValue(headers[name]));
  }
  return key;
}

/** One header's value for a key: repeated headers joined, surrounding blanks dropped. */
function headerValue(value: string | string[] | undefined): string {
  if (value === undefined) return '';
  return (typeof value === 'string' ? value : value.join(', ')).trim();
}

/** Two name lists equal (both sorted, as parseVary returns them). */
export function sameNames(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
