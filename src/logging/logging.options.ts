import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Params } from 'nestjs-pino';
import { GatewayConfig } from '../config/gateway-config';
import type { RawWithState } from '../common/http/request-context';

/** Header and field paths that may carry credentials; pino replaces their values. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.token',
  '*.key',
  '*.secret',
  '*.signingKey',
  '*.signingSalt',
];

const QUIET_PATHS = /^\/(health(\/|$)|metrics$)/;
const SECRET_QUERY = /([?&](?:api_key|apikey|key|token|access_token)=)[^&]*/gi;

/** Strips credential-bearing query parameters from a URL before it is logged. */
export function redactUrl(url: string): string {
  return url.replace(SECRET_QUERY, '$1[Redacted]');
}

/**
 * nestjs-pino (pino-http) settings: JSON lines, one per request, with the request id of
 * SPEC §2.1 and the pipeline's context; probes and scrapes only at debug.
 */
export function loggingOptions(config: GatewayConfig): Params {
  return {
    pinoHttp: {
      level: config.logging.level,
      genReqId: (req: IncomingMessage) => (req as RawWithState).id ?? '',
      redact: { paths: REDACTED_PATHS, censor: '[Redacted]' },
      customLogLevel: (req: IncomingMessage, res: ServerResponse, error?: Error) => {
        if (error || res.statusCode >= 500) return 'error';
        if (QUIET_PATHS.test(req.url ?? '')) return 'debug';
        return 'info';
      },
      customSuccessMessage: () => 'request completed',
      customErrorMessage: () => 'request failed',
      customProps: (req: IncomingMessage) => {
        const state = (req as RawWithState).gw;
        if (!state) return {};
        return {
          requestId: state.requestId,
          traceId: state.traceId,
          clientIp: state.clientIp,
          tenantId: state.auth?.tenantId,
          keyId: state.auth?.keyId,
          route: state.route,
          backend: state.backend,
          bytesIn: state.bytesIn,
          bytesOut: state.bytesOut,
        };
      },
      serializers: {
        req: (req: { id: string; method: string; url: string }) => ({ id: req.id, method: req.method, url: redactUrl(req.url) }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
    },
    // The exception filter and services log through Nest's Logger, which nestjs-pino backs.
    forRoutes: ['*'],
  };
}
