import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { ResponseFill } from '../../proxy/response-fill';
import type { HeadersHook } from './response-head';

export type { HeadersHook } from './response-head';

/**
 * The seam between the cache and a request chain (docs/cache.md): plain Node types only, so a
 * compiled chain step and a Nest handler can use it alike.
 */

/** One request as the cache sees it, after authentication and the upstream rewrite. */
export interface CacheRequest {
  /** Whose entry this is; tenants never share one. Routes without a tenant pass a fixed namespace. */
  readonly tenantId: string;
  readonly method: string;
  /** Path and query sent upstream, after the sandbox rewrite and re-signing. */
  readonly upstreamPath: string;
  /**
   * What purge prefixes are matched against: for the image routes the decoded source in the
   * tenant's own namespace (`local:///avatars/a.jpg`, `https://cdn.example.com/a.jpg`, see
   * `tenantSourceUrl`); for other routes the request path.
   */
  readonly sourceUrl: string;
  /** The client's request headers (Vary values, Accept, validators, Range). */
  readonly requestHeaders: IncomingHttpHeaders;
  /** The route's TTL; `cache.defaultTtlSeconds` when absent. The response may shorten it, never lengthen it. */
  readonly ttlSeconds?: number;
  /**
   * The route passes a backend's Set-Cookie on (configured routes): kept on an answer that is
   * never shared or stored, i.e. the leader's own. Off for the image routes.
   */
  readonly keepCookies?: boolean;
}

/** Where the body bytes an answer writes are counted as they go (the request context's `bytesOut`). */
export interface ByteSink {
  bytesOut: number;
}

/**
 * Starts the upstream request of a fill: the caller's proxy, with this request's own method and
 * headers, feeding what it receives into the fill (`feedFill` does it for an undici response).
 * Called by the cache when this request leads a fetch, and again when a coalesced request turns
 * out to need a fetch of its own (its Vary values differ, or the shared response was private).
 * `request` is the one passed to `lookup` for that request, so one function can serve a route.
 */
export type UpstreamFetch = (fill: CacheFill, request: CacheRequest) => void;

/** An answer the cache writes (a stored entry, or a fetch streaming to its waiters). */
export interface CacheResponse {
  /** X-Cache-Status it writes: `HIT` from an entry, `MISS` from a fetch. */
  readonly status: 'HIT' | 'MISS';
  /** The status it writes (200, 304, or the backend's). */
  readonly statusCode: number;
  /**
   * Writes the answer with one `writeHead` (the stored headers, Content-Length, Age,
   * X-Cache-Status, then `extraHeaders`: flat name/value pairs such as the request id and rate-limit
   * headers, which win over stored ones) and returns the body bytes written. A hit is
   * synchronous; a fetch resolves when its body has been written (or the client left), and
   * rejects when the fetch failed (the connection is then cut, unless nothing was written yet, so
   * the caller can still answer the error). A fetch also adds each chunk to `sink` as it is
   * written, for accounting that runs when the response closes, before this promise settles.
   */
  respond(res: ServerResponse, extraHeaders?: readonly string[], onHeaders?: HeadersHook, sink?: ByteSink): number | Promise<number>;
}

/** A fresh entry in memory: answer now. */
export interface CacheHit extends CacheResponse {
  readonly kind: 'hit';
  readonly status: 'HIT';
  respond(res: ServerResponse, extraHeaders?: readonly string[], onHeaders?: HeadersHook, sink?: ByteSink): number;
}

/**
 * Answer once `response` settles: an entry read from disk, or a fetch (led by this request, or
 * coalesced onto another's). It resolves as soon as the response head is known, and rejects with
 * the fetch's error (a GatewayException: the same one for every waiter) when the fetch failed
 * before that.
 */
export interface CacheWait {
  readonly kind: 'wait';
  readonly response: Promise<CacheResponse>;
}

/**
 * The cache takes no part: proxy as usual and add `X-Cache-Status: <status>`. `BYPASS` when the
 * request is not cacheable (method) or its resource was just found uncacheable; `MISS` for a HEAD,
 * conditional or Range request that found nothing to answer from and cannot lead a fetch.
 */
export interface CachePass {
  readonly kind: 'pass';
  readonly status: 'MISS' | 'BYPASS';
}

export type CacheLookup = CacheHit | CacheWait | CachePass;

/** The fill a fetch feeds (src/proxy/response-fill.ts): the forwarder's side of the seam. */
export type CacheFill = ResponseFill;
