import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { downstreamResponseHeaders } from '../../proxy/proxy-headers';
import { type Validators, validatorsOf } from './conditional';

/**
 * Sees the status and headers of an answer before they are written (CORS, a route's response
 * header rules) and may change them. Only routes that have such steps pass one: without it an
 * answer is written from the precomputed name/value array.
 */
export type HeadersHook = (statusCode: number, headers: OutgoingHttpHeaders) => void;

/**
 * Headers the cache writes itself on every answer, so the backend's copies are dropped; the
 * request id is each answer's own (imgproxy echoes the leader's).
 */
const OWN = new Set(['content-length', 'age', 'x-cache-status', 'x-request-id']);

/** What a 304 repeats of the 200 (RFC 9110 §15.4.5), plus Last-Modified for caches downstream. */
const NOT_MODIFIED_FIELDS = new Set(['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary', 'last-modified']);

const EMPTY: readonly string[] = [];

/**
 * A backend response's status and end-to-end headers, flattened once into the name/value array
 * `writeHead` takes, so every answer from it (a hit above all) costs one array copy, not a
 * header object walk.
 */
export class ResponseHead {
  /** Every end-to-end header except Content-Length, Age, X-Cache-Status and X-Request-ID, as name/value pairs. */
  readonly fields: readonly string[];
  /** The subset a 304 carries. */
  readonly notModifiedFields: readonly string[];
  readonly contentLength: number | undefined;
  readonly validators: Validators;
  /** Age the backend (or a cache before it) reported, in seconds. */
  readonly initialAge: number;

  constructor(
    readonly statusCode: number,
    fields: readonly string[],
  ) {
    const kept: string[] = [];
    const notModified: string[] = [];
    let contentLength: number | undefined;
    let etag: string | undefined;
    let lastModified: string | undefined;
    let age = 0;
    for (let i = 0; i < fields.length; i += 2) {
      const name = fields[i];
      const value = fields[i + 1];
      if (OWN.has(name)) {
        if (name === 'content-length' && /^\d+$/.test(value)) contentLength = Number(value);
        else if (name === 'age' && /^\d+$/.test(value)) age = Number(value);
        continue;
      }
      if (name === 'etag') etag = value;
      else if (name === 'last-modified') lastModified = value;
      kept.push(name, value);
      if (NOT_MODIFIED_FIELDS.has(name)) notModified.push(name, value);
    }
    this.fields = kept;
    this.notModifiedFields = notModified;
    this.contentLength = contentLength;
    this.validators = validatorsOf(etag, lastModified);
    this.initialAge = age;
  }

  /**
   * From a backend's headers: hop-by-hop ones dropped (the proxy's own rules), names in lower
   * case, Set-Cookie only when `keepCookies` (an answer for its own client alone).
   */
  static fromHeaders(statusCode: number, headers: IncomingHttpHeaders | OutgoingHttpHeaders, keepCookies = false): ResponseHead {
    return new ResponseHead(statusCode, flatten(downstreamResponseHeaders(headers as IncomingHttpHeaders, { keepCookies })));
  }

  /** Headers as an object, for the freshness rules and for hooks. */
  toObject(): OutgoingHttpHeaders {
    return toObject(this.fields, EMPTY, EMPTY);
  }
}

/** Name/value pairs of a header object; a repeated header becomes one pair per value. */
export function flatten(headers: OutgoingHttpHeaders): string[] {
  const out: string[] = [];
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if (Array.isArray(value)) for (const v of value) out.push(lower, v);
    else out.push(lower, String(value));
  }
  return out;
}

function toObject(a: readonly string[], b: readonly string[], c: readonly string[]): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const list of [a, b, c]) {
    for (let i = 0; i < list.length; i += 2) {
      const name = list[i];
      const current = out[name];
      if (current === undefined) out[name] = list[i + 1];
      else out[name] = Array.isArray(current) ? [...current, list[i + 1]] : [String(current), list[i + 1]];
    }
  }
  return out;
}

/**
 * One `writeHead`: the stored fields, the cache's own (Content-Length, Age, X-Cache-Status) and
 * the request's extra pairs (request id, rate-limit headers), in that order. With a hook, the
 * hook sees the stored and own headers and the extra pairs are set after it, replacing any of
 * the same name: what the proxy does with a backend's headers.
 */
export function writeHead(
  res: ServerResponse,
  statusCode: number,
  fields: readonly string[],
  own: readonly string[],
  extra: readonly string[] | undefined,
  hook: HeadersHook | undefined,
): void {
  if (hook !== undefined) {
    const headers = toObject(fields, own, EMPTY);
    hook(statusCode, headers);
    if (extra !== undefined) for (let i = 0; i < extra.length; i += 2) headers[extra[i]] = extra[i + 1];
    res.writeHead(statusCode, headers);
    return;
  }
  res.writeHead(statusCode, extra === undefined || extra.length === 0 ? fields.concat(own) : fields.concat(own, extra));
}
