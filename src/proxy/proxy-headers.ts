import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/**
 * Header rules of the streaming proxy (docs/proxy-and-backends.md), pure so the specs cover every case.
 *
 * Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection and never cross the proxy, in
 * either direction, nor do the headers a `Connection` header names.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * Never sent upstream:
 * - the gateway's credentials: `x-api-key` and `authorization` (the tenant's key; imgproxy gets
 *   its own `Authorization: Bearer <IMGPROXY_SECRET>` through `extraHeaders`), and `cookie`
 *   (a browser sends the gateway domain's cookies with every `<img>`: customer session data that
 *   imgproxy neither needs nor should see);
 * - `host` (the backend's own host is sent), `expect` (undici refuses it), and the forwarding
 *   headers, which the gateway rebuilds itself;
 * - every other header that claims to name the client (`X-Real-IP`, `True-Client-IP`,
 *   `CF-Connecting-IP`, ...): a client can send any of them, and a backend or its logs would take
 *   them as true. The gateway states the client address itself (`X-Forwarded-For`, `X-Real-IP`).
 */
const STRIPPED_UPSTREAM = new Set([
  'x-api-key',
  'authorization',
  'cookie',
  'host',
  'expect',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'forwarded',
  'x-request-id',
  'traceparent',
  'x-real-ip',
  'true-client-ip',
  'cf-connecting-ip',
  'x-client-ip',
  'x-cluster-client-ip',
  'fastly-client-ip',
]);

/**
 * Never passed to the client: the backend's request id (the gateway's own wins) and cookies. An
 * image answer is served from the gateway's domain, where a backend's `Set-Cookie` would land on
 * every tenant's users (or overwrite the gateway's own cookies). A configured route to an
 * application keeps its cookies (`keepCookies`): they are that application's sessions.
 */
const STRIPPED_DOWNSTREAM = new Set(['x-request-id', 'set-cookie']);

export interface ForwardingContext {
  requestId: string;
  traceparent?: string;
  /** The client address the gateway resolved (its trusted-proxy rule), sent as `X-Real-IP`. */
  clientIp: string;
  /** The socket's peer address (normalised). */
  peerAddress: string;
  /** Whether the peer is a trusted proxy, whose X-Forwarded-* we extend instead of replacing. */
  peerTrusted: boolean;
  /** Protocol the client used to reach this hop. */
  protocol: 'http' | 'https';
  /** Headers added last (imgproxy's Authorization, signing step's extras). */
  extra?: Readonly<Record<string, string>>;
  /**
   * Of the headers stripped by default, those a route forwards after all: a configured route's
   * upstream is an application that wants its cookies, and its Authorization when the gateway
   * did not consume it (an open route).
   */
  keep?: ReadonlySet<string>;
  /** Further headers never to forward (a route's `headers.request.remove`, spoofable ones). */
  strip?: ReadonlySet<string>;
}

/** Names listed in `Connection` (hop-by-hop by declaration). */
function connectionTokens(value: string | string[] | number | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value.join(',') : String(value);
  const tokens = text
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .filter((t) => t.length > 0);
  return tokens.length > 0 ? new Set(tokens) : undefined;
}

/**
 * The headers to send upstream. X-Forwarded-For/-Proto/-Host describe the client: when the
 * peer is a trusted proxy its values are kept and extended (standard chaining), otherwise they
 * could be forged by the client and are replaced by what the gateway saw itself.
 */
export function upstreamRequestHeaders(incoming: IncomingHttpHeaders, ctx: ForwardingContext): Record<string, string | string[]> {
  const named = connectionTokens(incoming.connection);
  const out: Record<string, string | string[]> = {};
  for (const name in incoming) {
    if (HOP_BY_HOP.has(name) || named?.has(name) || ctx.strip?.has(name)) continue;
    if (STRIPPED_UPSTREAM.has(name) && !ctx.keep?.has(name)) continue;
    const value = incoming[name];
    if (value !== undefined) out[name] = value;
  }
  const forwardedFor = ctx.peerTrusted ? joinList(incoming['x-forwarded-for']) : undefined;
  out['x-forwarded-for'] = forwardedFor ? `${forwardedFor}, ${ctx.peerAddress}` : ctx.peerAddress;
  out['x-forwarded-proto'] = (ctx.peerTrusted && firstOf(incoming['x-forwarded-proto'])) || ctx.protocol;
  const host = (ctx.peerTrusted && firstOf(incoming['x-forwarded-host'])) || incoming.host;
  if (host) out['x-forwarded-host'] = host;
  out['x-real-ip'] = ctx.clientIp;
  out['x-request-id'] = ctx.requestId;
  if (ctx.traceparent) out.traceparent = ctx.traceparent;
  if (ctx.extra) for (const name in ctx.extra) out[name.toLowerCase()] = ctx.extra[name];
  return out;
}

/**
 * The backend's response headers for the client: every end-to-end header (Content-Type,
 * Content-Length, Cache-Control, ETag, Last-Modified, Vary, Content-Disposition, Expires,
 * Content-Encoding, ...), none of the hop-by-hop ones, no cookie, and `X-Content-Type-Options:
 * nosniff` always, so a browser renders an answer only as the type it declares (an "image" that
 * is really HTML or script from a tenant's source is not run on the gateway's origin).
 */
export function downstreamResponseHeaders(
  upstream: IncomingHttpHeaders | Record<string, string | string[] | undefined>,
  options: { keepCookies?: boolean } = {},
): OutgoingHttpHeaders {
  const named = connectionTokens(upstream.connection);
  const out: OutgoingHttpHeaders = {};
  for (const name in upstream) {
    if (HOP_BY_HOP.has(name) || named?.has(name)) continue;
    if (STRIPPED_DOWNSTREAM.has(name) && !(options.keepCookies && name === 'set-cookie')) continue;
    const value = upstream[name];
    if (value !== undefined) out[name] = value;
  }
  out['x-content-type-options'] = 'nosniff';
  return out;
}

function joinList(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const text = (Array.isArray(value) ? value.join(', ') : value).trim();
  return text.length > 0 ? text : undefined;
}

function firstOf(value: string | string[] | undefined): string | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  return text?.split(',')[0]?.trim() || undefined;
}
