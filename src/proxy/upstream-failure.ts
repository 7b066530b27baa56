/**
 * What went wrong with one upstream attempt, in the terms the proxy acts on (docs/proxy-and-backends.md):
 * - `timeout`: connect or response-headers timeout → failover, then 504 gateway_timeout;
 * - `connect`: the backend could not be reached, or reset or closed the connection before
 *   answering → failover, then 502 bad_gateway;
 * - `protocol`: the backend answered with something that is not HTTP (a malformed status line,
 *   header or length) → failover, then 502 bad_gateway;
 * - `aborted`: the client went away; nobody is left to answer and the backend is not to blame.
 * `timeout`, `connect` and `protocol` count against the backend's circuit: they are what a
 * broken or overloaded server does, whoever sent the request.
 */
export type UpstreamFailureKind = 'timeout' | 'connect' | 'protocol' | 'aborted';

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'ETIMEDOUT']);
/** undici's codes for a reply that breaks HTTP/1.1 (its HTTPParserError carries no code, only its name). */
const PROTOCOL_CODES = new Set(['UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'UND_ERR_INFO']);

export function classifyUpstreamError(error: unknown, clientAborted: boolean): UpstreamFailureKind {
  if (clientAborted) return 'aborted';
  const { code, name } = (error ?? {}) as { code?: string; name?: string };
  if (code !== undefined && TIMEOUT_CODES.has(code)) return 'timeout';
  if (name === 'TimeoutError') return 'timeout';
  if (name === 'HTTPParserError' || (code !== undefined && (PROTOCOL_CODES.has(code) || code.startsWith('HPE_')))) return 'protocol';
  return 'connect';
}

/**
 * What an HTTP answer from a backend means for its circuit. Any answer, 5xx included, is the
 * backend working: imgproxy answers 4xx/5xx for a tenant's broken, missing or slow source, and
 * counting those would let one tenant's URLs eject a backend for every tenant. A 429 is
 * back-pressure (its queue is full): shift load away, no failure.
 */
export function classifyUpstreamAnswer(status: number): 'answered' | 'busy' {
  return status === 429 ? 'busy' : 'answered';
}

/** Only idempotent requests without a body may be replayed on another backend. */
export function isReplayable(method: string): boolean {
  return method === 'GET' || method === 'HEAD';
}

/** `Retry-After` (delta seconds or HTTP date) in milliseconds, when the backend gave one. */
export function retryAfterMs(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return undefined;
  if (/^\d+$/.test(text.trim())) return Number(text.trim()) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
