import type { Params } from 'nestjs-pino';
import pino, { type Level, type Logger as PinoInstance } from 'pino';
import { GatewayConfig } from '../config/gateway-config';
import type { RequestState } from '../gateway/context';
import type { FinishedRequest } from '../gateway/request-observer';
import { UrlRedactor } from './url-redaction';

/**
 * Paths that may carry credentials, should anything log them; pino replaces their values.
 * Request lines (below) never carry headers at all (API keys, the admin token, cookies); these
 * catch objects logged by hand.
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

/** X-Cache-Status as logs, request logs and metrics spell it. */
export const CACHE_LABELS = { HIT: 'hit', MISS: 'miss', BYPASS: 'bypass' } as const;
export type CacheLabel = (typeof CACHE_LABELS)[keyof typeof CACHE_LABELS];

const QUIET_PATHS = /^\/(health(\/|\?|$)|metrics(\?|$))/;
const SHAPE_ONLY = new UrlRedactor();

/**
 * Masks credentials in a URL before it is logged: by parameter name (decoded) and by value shape
 * (url-redaction.ts). Without `redactor`, the gateway's own configured secrets are not known.
 */
export function redactUrl(url: string, redactor: UrlRedactor = SHAPE_ONLY): string {
  return redactor.redact(url);
}

/**
 * The fields that tie a line logged by hand to its request (`logger.warn({ ...requestFields(gw),
 * backend }, '...')`). Request lines carry them by construction; lines about one request that
 * are logged while it runs add them explicitly, since no per-request logger context exists.
 */
export function requestFields(state: RequestState | undefined): { requestId?: string; traceId?: string; clientIp?: string } {
  return state ? { requestId: state.requestId, traceId: state.traceId, clientIp: state.clientIp } : {};
}

const rootLoggers = new WeakMap<GatewayConfig, PinoInstance>();

/**
 * The one pino instance of a configuration: the start-up lines of main.ts, Nest's Logger (through
 * nestjs-pino) and the request lines. One instance, so every line has one shape and lines written
 * before and after the application exists keep their order on stdout.
 */
export function createRootLogger(config: GatewayConfig): PinoInstance {
  let logger = rootLoggers.get(config);
  if (!logger) {
    logger = pino({ level: config.logging.level, redact: { paths: REDACTED_PATHS, censor: '[Redacted]' } });
    rootLoggers.set(config, logger);
  }
  return logger;
}

/** Same shape as the root logger, for the lines written before a configuration exists (it may be invalid). */
export function createBootLogger(): PinoInstance {
  return pino({ level: 'info', redact: { paths: REDACTED_PATHS, censor: '[Redacted]' } });
}

/**
 * nestjs-pino backs Nest's Logger with our pino instance, and nothing else: `forRoutes: []`
 * registers no pino-http middleware. The per-request line is written by RequestLineLogger from
 * the request observer instead: the middleware (pino-http's child logger, redaction and
 * serializers run for every request even when the level hides the line, plus @fastify/middie and
 * an AsyncLocalStorage context per request, which turns on promise hooks for the whole process)
 * cost about a quarter of the gateway's CPU per proxied request.
 */
export function loggingOptions(logger: PinoInstance): Params {
  return { pinoHttp: { logger }, forRoutes: [] };
}

/** Level of a request line: probes and scrapes only at debug, 5xx at error, the rest at info. */
export function requestLineLevel(url: string, status: number): Level {
  // Load balancers and Prometheus call these every few seconds: keep them out of info logs.
  if (QUIET_PATHS.test(url)) return 'debug';
  return status >= 500 ? 'error' : 'info';
}

/**
 * One JSON line per request when its response ends or is aborted (docs/observability.md): requestId,
 * traceId, clientIp, method, route template, route name, status (499 + aborted when the client
 * closed first), tenantId, keyId, backend, cache (`hit`, `miss`, `bypass` on a cached route),
 * bytes, durationMs and the URL with credentials masked by name and by value. Built from `request.gw` only, so it holds no header and nothing else to
 * redact.
 */
export class RequestLineLogger {
  private readonly lines: PinoInstance;

  constructor(
    logger: PinoInstance,
    private readonly redactor: UrlRedactor = SHAPE_ONLY,
  ) {
    // Every field below is chosen, not copied from the request, and the URL is masked: redaction
    // (which walks each logged object) has nothing to find in a request line, so it is skipped.
    this.lines = logger.child({}, { redact: [] });
  }

  requestFinished({ request, state, routeTemplate, status, aborted, durationSeconds }: FinishedRequest): void {
    const url = request.raw.url ?? '';
    const level = requestLineLevel(url, status);
    // The level check first: a hidden line costs nothing but this comparison.
    if (!this.lines.isLevelEnabled(level)) return;
    const auth = state.auth;
    this.lines[level](
      {
        req: { url: this.redactor.redact(url) },
        requestId: state.requestId,
        traceId: state.traceId,
        clientIp: state.clientIp,
        method: request.method,
        route: routeTemplate,
        routeName: state.route,
        status,
        aborted: aborted || undefined,
        tenantId: auth?.tenantId,
        keyId: auth?.keyId,
        backend: state.backend,
        cache: state.cacheStatus === undefined ? undefined : CACHE_LABELS[state.cacheStatus],
        bytesIn: state.bytesIn ?? 0,
        bytesOut: state.bytesOut ?? 0,
        durationMs: Math.round(durationSeconds * 1000),
      },
      level === 'error' ? 'request failed' : 'request completed',
    );
  }
}
