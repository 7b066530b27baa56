import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

const SANE_ID = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * docs/proxy-and-backends.md: keep a sane incoming X-Request-ID so one id follows a request through every
 * hop; replace anything else (too long, odd characters that could forge log lines).
 */
export function requestIdFor(req: IncomingMessage): string {
  const incoming = req.headers['x-request-id'];
  const value = Array.isArray(incoming) ? incoming[0] : incoming;
  return value && SANE_ID.test(value) ? value : randomUUID();
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * W3C Trace Context: accept a valid `traceparent` (keeping its trace id) or start a trace.
 * Returns the trace id and the header to send upstream, with this hop's parent id.
 */
export function traceContextFor(
  header: string | string[] | undefined,
  newId: { span: () => string; trace: () => string },
): { traceId: string; traceparent: string } {
  const value = (Array.isArray(header) ? header[0] : header)?.trim().toLowerCase();
  const match = value ? TRACEPARENT.exec(value) : null;
  if (match && match[1] !== 'ff' && !/^0+$/.test(match[2]) && !/^0+$/.test(match[3])) {
    return { traceId: match[2], traceparent: `00-${match[2]}-${newId.span()}-${match[4]}` };
  }
  const traceId = newId.trace();
  return { traceId, traceparent: `00-${traceId}-${newId.span()}-01` };
}
