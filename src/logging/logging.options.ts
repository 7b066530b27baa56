import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Params } from 'nestjs-pino';
import { stdSerializers } from 'pino';
import { GatewayConfig } from '../config/gateway-config';
import type { RawWithState } from '../common/http/request-context';
import { CLIENT_CLOSED_STATUS, routeTemplateOf } from '../metrics/request-observer';

/**
 * Paths that may carry credentials, should anything log them; pino replaces their values.
 * The request serializer below already keeps headers (API keys, the admin token, cookies)
 * out of request lines altogether; these catch objects logged by hand.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers["x-api-key"]',
  'headers.cookie',
  '*.password',
  '*.token',
  '*.adminToken',
  '*.key',
  '*.secret',
  '*.secretHash',
  '*.keyPepper',
  '*.secretsKey',
  '*.signingKey',
  '*.signingSalt',
];

const QUIET_PATHS = /^\/(health(\/|\?|$)|metrics(\?|$))/;
const SECRET_QUERY = /([?&](?:api_key|apikey|api-key|key|token|access_token|secret|signature|sig)=)[^&#]*/gi;

/** Strips credential-bearing query parameters from a URL before it is logged. */
export function redactUrl(url: string): string {
  return url.replace(SECRET_QUERY, '$1[Redacted]');
}

const LOGGED_START = Symbol('gw.loggedStart');
type RawLogged = RawWithState & { [LOGGED_START]?: true };

/**
 * The request line's own fields. pino-http asks twice: when the request arrives (those
 * fields then label every line logged while it runs) and when the response ends (those are
 * added to the final line). Answering each time with disjoint fields keeps JSON keys unique.
 */
export function requestLogProps(req: IncomingMessage, res: ServerResponse): Record<string, unknown> {
  const raw = req as RawLogged;
  const state = raw.gw;
  if (!raw[LOGGED_START]) {
    raw[LOGGED_START] = true;
    return { requestId: state?.requestId ?? raw.id, traceId: state?.traceId, clientIp: state?.clientIp };
  }
  const aborted = !res.writableFinished;
  return {
    method: req.method,
    route: routeTemplateOf(raw),
    routeName: state?.route,
    status: aborted ? CLIENT_CLOSED_STATUS : res.statusCode,
    aborted: aborted || undefined,
    tenantId: state?.auth?.tenantId,
    keyId: state?.auth?.keyId,
    backend: state?.backend,
    bytesIn: state?.bytesIn ?? 0,
    bytesOut: state?.bytesOut ?? 0,
  };
}

const SYNTHETIC_ERROR = /^failed with status code \d+$/;

/**
 * pino-http invents an Error for every 5xx answer; its stack only points into pino-http, so
 * it is dropped. Real errors keep theirs.
 */
export function serializeError(error: Error): Record<string, unknown> {
  const serialized = stdSerializers.err(error) as unknown as Record<string, unknown>;
  if (SYNTHETIC_ERROR.test(error.message)) delete serialized.stack;
  return serialized;
}

/**
 * nestjs-pino (pino-http) settings: JSON lines, one per request (SPEC §12) with requestId,
 * traceId, tenantId, keyId, backend, method, route template, status, durationMs, bytes and
 * clientIp; probes and scrapes only at debug; credentials never written.
 */
export function loggingOptions(config: GatewayConfig): Params {
  return {
    pinoHttp: {
      level: config.logging.level,
      genReqId: (req: IncomingMessage) => (req as RawWithState).id ?? '',
      redact: { paths: REDACTED_PATHS, censor: '[Redacted]' },
      customAttributeKeys: { responseTime: 'durationMs' },
      customLogLevel: (req: IncomingMessage, res: ServerResponse, error?: Error) => {
        // Load balancers and Prometheus call these every few seconds: keep them out of info logs.
        if (QUIET_PATHS.test(req.url ?? '')) return 'debug';
        if (error || res.statusCode >= 500) return 'error';
        return 'info';
      },
      customSuccessMessage: () => 'request completed',
      customErrorMessage: () => 'request failed',
      customProps: requestLogProps,
      serializers: {
        // Only the URL (query secrets masked): headers would carry keys, tokens and cookies.
        req: (req: { url: string }) => ({ url: redactUrl(req.url) }),
        // Status is a top-level field already.
        res: () => undefined,
        err: serializeError,
      },
    },
    // The exception filter and services log through Nest's Logger, which nestjs-pino backs.
    forRoutes: ['*'],
  };
}
