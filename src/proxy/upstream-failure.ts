/**
 * What went wrong with one upstream attempt, in the terms the proxy acts on (docs/proxy-and-backends.md):
 * - `timeout`: connect or response-headers timeout → failover, then 504 gateway_timeout;
 * - `connect`: the backend could not be reached or dropped the connection before answering
 *   → failover, then 502 bad_gateway;
 * - `aborted`: the client went away; nobody is left to answer and the backend is not to blame.
 * Both `timeout` and `connect` count against the backend's circuit.
 */
export type UpstreamFailureKind = 'timeout' | 'connect' | 'aborted';

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'ETIMEDOUT']);

export function classifyUpstreamError(error: unknown, clientAborted: boolean): UpstreamFailureKind {
  if (clientAborted) return 'aborted';
  const { code, name } = (error ?? {}) as { code?: string; name?: string };
  if (code !== undefined && TIMEOUT_CODES.has(code)) return 'timeout';
  if (name === 'TimeoutError') return 'timeout';
  return 'connect';
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
