/**
 * The one catalogue of error codes (docs/architecture.md): every error the gateway answers has a stable
 * code, a status and a default message. Clients switch on `code`, never on the message.
 */
export const ERROR_CATALOGUE = {
  validation_failed: { status: 400, message: 'The request is invalid.' },
  bad_source: { status: 400, message: 'The image source is not allowed.' },
  bad_url: { status: 400, message: 'The image URL is malformed.' },
  unauthorized: { status: 401, message: 'A valid API key or signature is required.' },
  ip_not_allowed: { status: 403, message: 'Requests from this address are not allowed.' },
  forbidden: { status: 403, message: 'This operation is not allowed.' },
  not_found: { status: 404, message: 'Not found.' },
  method_not_allowed: { status: 405, message: 'Method not allowed.' },
  request_timeout: { status: 408, message: 'The request was not received in time.' },
  conflict: { status: 409, message: 'The resource already exists.' },
  payload_too_large: { status: 413, message: 'The request body is too large.' },
  unsupported_media_type: { status: 415, message: 'The media type is not supported.' },
  rate_limited: { status: 429, message: 'Too many requests.' },
  quota_exceeded: { status: 429, message: 'The quota for this period is used up.' },
  headers_too_large: { status: 431, message: 'The request headers are too large.' },
  internal_error: { status: 500, message: 'Internal error.' },
  bad_gateway: { status: 502, message: 'The image backend failed.' },
  no_healthy_backend: {
    status: 503,
    message:
      'No healthy image backend is available. Add one with POST /admin/v1/backends {"name","url","weight"} or the ' +
      'BACKENDS variable (name=http://host:port|weight); /health/backends shows the state of each.',
  },
  unavailable: { status: 503, message: 'The service is temporarily unavailable.' },
  gateway_timeout: { status: 504, message: 'The image backend did not answer in time.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** The code a bare HTTP status maps to when a framework (not our code) raised it. */
export function codeForStatus(status: number): ErrorCode {
  switch (status) {
    case 400:
      return 'validation_failed';
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 404:
      return 'not_found';
    case 405:
      return 'method_not_allowed';
    case 408:
      return 'request_timeout';
    case 409:
      return 'conflict';
    case 413:
      return 'payload_too_large';
    case 415:
      return 'unsupported_media_type';
    case 429:
      return 'rate_limited';
    case 431:
      return 'headers_too_large';
    case 502:
      return 'bad_gateway';
    case 503:
      return 'unavailable';
    case 504:
      return 'gateway_timeout';
    default:
      return status >= 500 ? 'internal_error' : 'validation_failed';
  }
}
