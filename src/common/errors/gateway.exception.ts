import { HttpException } from '@nestjs/common';
import { ERROR_CATALOGUE, ErrorCode } from './error-catalogue';

/** The challenge of every 401 for a tenant credential (RFC 9110 §11.6.1). */
export const TENANT_AUTH_CHALLENGE = 'Bearer realm="imgproxy-gateway"';

/** Extra fields that help a client act: `scope`, `quota`, `retryAfter`, `details`. */
export type ErrorExtras = Record<string, unknown>;

/**
 * Thrown by guards, services and controllers; the global filter turns it into the body of
 * docs/architecture.md. `headers` are set on the error response (WWW-Authenticate, Retry-After, ...).
 */
export class GatewayException extends HttpException {
  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly extras: ErrorExtras = {},
    readonly headers: Record<string, string | number> = {},
  ) {
    super(message ?? ERROR_CATALOGUE[code].message, ERROR_CATALOGUE[code].status);
  }
}
