import type { IncomingHttpHeaders } from 'node:http';

/** The validators a cached response carries. */
export interface Validators {
  etag?: string;
  /** `Last-Modified` as epoch milliseconds. */
  lastModifiedMs?: number;
}

/** Whether the request asks for a validation at all (then a miss may not lead a fetch). */
export function isConditional(headers: IncomingHttpHeaders): boolean {
  return headers['if-none-match'] !== undefined || headers['if-modified-since'] !== undefined;
}

/**
 * RFC 9110 §13.2.2 for GET and HEAD: `If-None-Match` decides when present (weak comparison, `*`
 * matches any stored response); otherwise `If-Modified-Since` against `Last-Modified`. True means
 * answer 304 from the stored response.
 */
export function notModified(headers: IncomingHttpHeaders, validators: Validators): boolean {
  const inm = headers['if-none-match'];
  if (inm !== undefined) {
    if (inm.trim() === '*') return true;
    if (validators.etag === undefined) return false;
    const stored = opaque(validators.etag);
    for (const tag of inm.split(',')) if (opaque(tag.trim()) === stored) return true;
    return false;
  }
  const ims = headers['if-modified-since'];
  if (ims === undefined || validators.lastModifiedMs === undefined) return false;
  const since = Date.parse(ims);
  return !Number.isNaN(since) && validators.lastModifiedMs <= since;
}

/** An entity tag without its weakness marker: the weak comparison of RFC 9110 §8.8.3.2. */
function opaque(tag: string): string {
  return tag.startsWith('W/') ? tag.slice(2) : tag;
}

/** The validators of response headers. */
export function validatorsOf(etag: string | undefined, lastModified: string | undefined): Validators {
  const lastModifiedMs = lastModified === undefined ? NaN : Date.parse(lastModified);
  return { etag, lastModifiedMs: Number.isNaN(lastModifiedMs) ? undefined : lastModifiedMs };
}
