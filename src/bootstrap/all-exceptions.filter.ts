import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger, Optional } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GatewayMetrics } from '../metrics/gateway-metrics.service';
import { allowedMethods } from '../common/http/allowed-methods';
import { ERROR_CATALOGUE, ErrorCode, codeForStatus } from '../common/errors/error-catalogue';
import { GatewayException } from '../common/errors/gateway.exception';
import { sendRefusal } from '../common/errors/refusal-writer';
import { refusalForStatus, refusals } from '../common/errors/refusals';
import { isDatabaseUnavailable } from '../common/errors/store-unavailable';

/** Seconds a client is asked to wait when PostgreSQL is unreachable or the instance is not ready. */
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 5;

interface FrameworkError extends Error {
  statusCode?: number;
  code?: string;
}

/**
 * Shapes every error the gateway answers (docs/architecture.md, Errors), whoever raised it: our
 * guards, Nest's validation pipe and router, Fastify's body parsers, or a database that went
 * away. The body is always the catalogue's, with the request id; messages come from our own
 * refusals or the catalogue, never from a framework (Nest's 404 text echoes the path). Unknown
 * errors are logged with the request id and answered as a generic 500, never with a stack or an
 * internal address.
 */
@Catch()
export class AllExceptionsFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  constructor(@Optional() private readonly metrics?: GatewayMetrics) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    if (reply.sent || reply.raw.headersSent) {
      // Streaming had already begun: the only honest signal left is to cut the connection.
      reply.raw.destroy();
      return;
    }
    sendRefusal(reply, this.refusalFor(exception, request, String(request?.id ?? '')));
  }

  private refusalFor(exception: unknown, request: FastifyRequest, requestId: string): GatewayException {
    if (exception instanceof GatewayException) return exception;
    if (isDatabaseUnavailable(exception)) {
      // The request was fine: PostgreSQL is down or too slow. The pool reconnects by itself.
      this.metrics?.storeError('postgres');
      this.logger.warn({ requestId, err: loggableError(exception) }, 'database unavailable');
      return refusals.unavailable(UNAVAILABLE_RETRY_AFTER_SECONDS);
    }
    if (exception instanceof HttpException) return this.fromHttpException(exception, request, requestId);
    const frameworkError = exception as FrameworkError;
    if (frameworkError?.statusCode && frameworkError.statusCode >= 400 && frameworkError.statusCode < 500) {
      // Fastify's own errors (body too large, bad JSON, unknown content type) are client errors.
      const code = codeForStatus(frameworkError.statusCode);
      return refusalForStatus(code, publicMessage(frameworkError, code));
    }
    this.logger.error({ requestId, err: loggableError(exception) }, 'unhandled error');
    return refusals.internalError();
  }

  private fromHttpException(exception: HttpException, request: FastifyRequest, requestId: string): GatewayException {
    const status = exception.getStatus();
    const response = exception.getResponse();
    // ValidationPipe answers { message: string[] }: those are the details of validation_failed.
    if (status === 400 && typeof response === 'object' && Array.isArray((response as { message?: unknown }).message)) {
      return refusals.validationFailed((response as { message: string[] }).message);
    }
    // Terminus answers 503 with the per-dependency report: keep which dependency is down (what a
    // probe reader needs) but not the drivers' messages, which can name internal addresses and
    // users; those go to the log with the request id.
    if (typeof response === 'object' && (response as { details?: unknown }).details) {
      const details = (response as { details: Record<string, unknown> }).details;
      this.logger.warn({ requestId, details }, 'not ready');
      return refusals.unavailable(UNAVAILABLE_RETRY_AFTER_SECONDS, undefined, { details: publicHealthDetails(details) });
    }
    // Our own "no such thing" is a GatewayException: a bare 404 is Nest's router finding no route.
    if (status === 404) return this.noRoute(request);
    if (status >= 500 && status !== 503) this.logger.error({ requestId, err: loggableError(exception) }, 'request failed');
    return refusalForStatus(codeForStatus(status));
  }

  /** 405 with `Allow` when the path exists under other methods, else 404. */
  private noRoute(request: FastifyRequest): GatewayException {
    const allow = request?.server ? allowedMethods(request.server, request.url) : [];
    return allow.length > 0 ? refusals.methodNotAllowed(allow) : refusals.notFound();
  }
}

/** Per dependency: its status and the fields the indicators chose to publish, never `message`/`error`. */
function publicHealthDetails(details: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(details)) {
    if (typeof value !== 'object' || value === null) continue;
    const { message: _message, error: _error, ...rest } = value as Record<string, unknown>;
    out[name] = rest;
  }
  return out;
}

/**
 * The error as logged: name, message and stack, without the fields database drivers attach
 * (`parameters` of a failed query can hold key hashes, encrypted signing material, emails).
 */
function loggableError(exception: unknown): unknown {
  if (!(exception instanceof Error)) return exception;
  return { type: exception.name, message: exception.message, stack: exception.stack, code: (exception as FrameworkError).code };
}

function publicMessage(error: FrameworkError, code: ErrorCode): string {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'The body is not valid JSON.';
    default:
      return ERROR_CATALOGUE[code].message;
  }
}
