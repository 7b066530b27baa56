/**
 * Whether an error means the database could not be reached or did not answer in time, as
 * opposed to a query it refused: the request was fine and may succeed shortly, so it is answered
 * 503 `unavailable` with `Retry-After`, not 500 (docs/architecture.md, Errors).
 */

/** Socket-level failures of the driver's connection. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED']);

/**
 * SQLSTATEs of an unreachable or overwhelmed server: 57P01-57P03 (shut down, crashed, starting
 * up), 53300 (too many connections), 57014 (statement timeout, `database.statementTimeoutMs`).
 * Class 08 (connection exceptions) is matched by prefix.
 */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '57014']);

/** What pg says when a connection dies or never opens (it sets no code on these). */
const CONNECTION_MESSAGES = [
  'connection terminated',
  'timeout exceeded when trying to connect',
  'connection is not queryable',
  'client has encountered a connection error',
  'client was closed',
  'cannot use a pool after calling end',
];

export function isDatabaseUnavailable(error: unknown): boolean {
  // TypeORM wraps the driver's error (QueryFailedError.driverError); some errors carry a cause.
  for (let current = error, depth = 0; current !== null && typeof current === 'object' && depth < 4; depth++) {
    const { code, message } = current as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && (NETWORK_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code) || /^08[0-9A-Z]{3}$/.test(code))) return true;
    if (typeof message === 'string') {
      const lower = message.toLowerCase();
      if (CONNECTION_MESSAGES.some((text) => lower.includes(text))) return true;
    }
    current = (current as { driverError?: unknown; cause?: unknown }).driverError ?? (current as { cause?: unknown }).cause;
  }
  return false;
}
