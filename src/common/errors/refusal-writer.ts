import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { FastifyReply } from 'fastify';
import { HSTS_HEADER, SECURITY_HEADERS, applySecurityHeaders } from '../http/security-headers';
import { errorBody } from './error-body';
import { GatewayException, TENANT_AUTH_CHALLENGE } from './gateway.exception';
import { retryAfterSeconds } from './refusals';

export interface RefusalResponse {
  status: number;
  /** Lower-case names; the catalogue's required headers included. */
  headers: Record<string, string>;
  body: string;
}

/**
 * The headers of a refusal, with what its status requires even where a call site forgot it:
 * `WWW-Authenticate` on 401, `Allow` on 405 (empty: the resource serves no method), `Retry-After`
 * on 429 and 503 (the body's `retryAfter`, a quota's reset, or 1 s).
 */
export function refusalHeaders(exception: GatewayException): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(exception.headers)) headers[name.toLowerCase()] = String(value);
  const status = exception.getStatus();
  if (status === 401) headers['www-authenticate'] ??= TENANT_AUTH_CHALLENGE;
  if (status === 405) headers.allow ??= '';
  if ((status === 429 || status === 503) && headers['retry-after'] === undefined) {
    const hinted = Number(exception.extras.retryAfter ?? headers['x-quota-reset']);
    headers['retry-after'] = String(retryAfterSeconds(hinted));
  }
  return headers;
}

/** Status, headers and JSON body of a refusal: the one shape every error answer has. */
export function refusalResponse(exception: GatewayException, requestId: string): RefusalResponse {
  const headers = refusalHeaders(exception);
  const extras = { ...exception.extras };
  if (headers['retry-after'] !== undefined && extras.retryAfter === undefined) extras.retryAfter = Number(headers['retry-after']);
  const body = JSON.stringify(errorBody(exception.code, exception.message, requestId, extras));
  return { status: exception.getStatus(), headers, body };
}

/**
 * Whether the request may still have body bytes on the wire that nobody will read. Node would
 * read and drop all of them to reuse the connection (a 1 GiB upload refused after 1 KiB costs
 * 1 GiB of reading); closing the connection after the answer costs the client one reconnect.
 */
export function bodyLeftUnread(req: IncomingMessage): boolean {
  if (req.complete) return false;
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * A refusal through a Fastify reply: the exception filter, an onRequest or preParsing hook.
 * The security headers are set here because a refusal is the gateway's own JSON even on a route
 * whose successful answers are a backend's.
 */
export function sendRefusal(reply: FastifyReply, exception: GatewayException): FastifyReply {
  const { status, headers, body } = refusalResponse(exception, String(reply.request.id));
  if (bodyLeftUnread(reply.request.raw)) headers.connection = 'close';
  applySecurityHeaders(reply, reply.request);
  reply.code(status).headers(headers).header('x-request-id', reply.request.id);
  return reply.header('content-type', 'application/json; charset=utf-8').send(body);
}

/**
 * A refusal written straight to a raw Node response, for code that runs outside Fastify's reply
 * (a compiled route chain, an upgrade handler that still has a response): catalogue body,
 * `X-Request-ID`, the security headers and the headers the chain decided before (`decided`). A
 * response whose headers are already sent can only be cut.
 */
export function writeRefusal(res: ServerResponse, exception: GatewayException, requestId: string, decided: readonly string[] = NONE): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const { status, headers, body } = refusalResponse(exception, requestId);
  const out: Record<string, string | number> = { ...SECURITY_HEADERS };
  addDecided(out, decided);
  Object.assign(out, headers);
  if ((res.socket as TLSSocket | null)?.encrypted) out[HSTS_HEADER[0]] = HSTS_HEADER[1];
  if (res.req && bodyLeftUnread(res.req)) out.connection = 'close';
  out['x-request-id'] = requestId;
  out['content-type'] = 'application/json; charset=utf-8';
  out['content-length'] = Buffer.byteLength(body);
  res.writeHead(status, out);
  res.end(body);
}

/**
 * A refusal written as raw HTTP/1.1 onto a socket that has no response object: an HTTP parser
 * error, a CONNECT or an upgrade request. The connection is closed after it.
 */
export function writeRefusalToSocket(socket: Duplex, exception: GatewayException, requestId: string, decided: readonly string[] = NONE): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const { status, headers, body } = refusalResponse(exception, requestId);
  const out: Record<string, string | number> = { ...SECURITY_HEADERS };
  addDecided(out, decided);
  Object.assign(out, headers);
  if ((socket as TLSSocket).encrypted) out[HSTS_HEADER[0]] = HSTS_HEADER[1];
  out['x-request-id'] = requestId;
  out['content-type'] = 'application/json; charset=utf-8';
  out['content-length'] = Buffer.byteLength(body);
  out.connection = 'close';
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n`;
  for (const [name, value] of Object.entries(out)) head += `${name}: ${value}\r\n`;
  socket.end(`${head}\r\n${body}`, () => socket.destroy());
}

const NONE: readonly string[] = [];

/**
 * Headers decided before the refusal (flat name/value pairs: the rate-limit and CORS headers a
 * compiled chain collected), under the refusal's own, which win.
 */
function addDecided(out: Record<string, string | number>, decided: readonly string[]): void {
  for (let i = 0; i < decided.length; i += 2) out[decided[i]] = decided[i + 1];
}
