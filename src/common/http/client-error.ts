import type { GatewayException } from '../errors/gateway.exception';
import { refusals } from '../errors/refusals';

/** Methods a gateway route may serve; TRACE and CONNECT never (docs/architecture.md, Errors). */
export const SERVABLE_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/**
 * The answer to a request Node's HTTP parser refused before any route saw it (Fastify's
 * `clientErrorHandler`), in the catalogue's shape: 408 when the client was too slow, 431 when
 * its headers overflow the limit, 405 (with the path's `Allow`) for a well-formed request line
 * whose method no route knows, 400 for anything else that is not valid HTTP. Undefined when the connection is already
 * gone and there is no one to answer.
 *
 * `allowFor` names the methods served at a path; the path comes from the raw request line, the
 * only part of the request there is.
 */
export function clientErrorRefusal(
  error: { code?: string; rawPacket?: Buffer },
  allowFor: (path: string) => readonly string[],
): GatewayException | undefined {
  switch (error.code) {
    case 'ECONNRESET':
      return undefined;
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return refusals.requestTimeout();
    case 'HPE_HEADER_OVERFLOW':
      return refusals.headersTooLarge();
    case 'HPE_INVALID_METHOD': {
      // A well-formed request line with a method token no route knows; otherwise just garbage.
      const path = requestLineOf(error.rawPacket)?.path;
      if (path) return refusals.methodNotAllowed(allowFor(path));
      return notHttp();
    }
    default:
      return notHttp();
  }
}

/** Method and path of the first line of a raw request, when it has the shape of one. */
export function requestLineOf(packet: Buffer | undefined): { method: string; path: string } | undefined {
  if (!packet) return undefined;
  const end = packet.indexOf('\r\n');
  const line = packet.toString('latin1', 0, end === -1 ? Math.min(packet.length, 8192) : Math.min(end, 8192));
  const match = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\/\S*) HTTP\/\d\.\d$/.exec(line);
  return match ? { method: match[1], path: match[2] } : undefined;
}

function notHttp(): GatewayException {
  return refusals.validationFailed([], 'The request is not valid HTTP.');
}
