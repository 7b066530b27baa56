import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_CATALOGUE, ErrorCode, codeForStatus } from './error-catalogue';
import { errorBody } from './error-body';
import { GatewayException } from './gateway.exception';
import { applySecurityHeaders } from '../http/security-headers';

interface FrameworkError extends Error {
  statusCode?: number;
  code?: string;
}

/**
 * Shapes every error the gateway answers (docs/architecture.md), whoever raised it: our guards, Nest's
 * validation pipe and router, or Fastify's body parsers. Unknown errors are logged with the
 * request id and answered as a generic 500, never with a stack or an internal address.
 */
@Catch()
export class AllExceptionsFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    const requestId = String(request?.id ?? '');
    const { status, code, message, extras, headers } = this.describe(exception, requestId);

    if (reply.sent || reply.raw.headersSent) {
      // Streaming had already begun: the only honest signal left is to cut the connection.
      reply.raw.destroy();
      return;
    }
    for (const [name, value] of Object.entries(headers)) reply.header(name, value);
    applySecurityHeaders(reply, request);
    void reply.status(status).header('content-type', 'application/json; charset=utf-8').send(errorBody(code, message, requestId, extras));
  }

  private describe(exception: unknown, requestId: string) {
    if (exception instanceof GatewayException) {
      return {
        status: exception.getStatus(),
        code: exception.code,
        message: exception.message,
        extras: exception.extras,
        headers: exception.headers,
      };
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const code = codeForStatus(status);
      const response = exception.getResponse();
      const extras: Record<string, unknown> = {};
      let message: string = status >= 500 ? ERROR_CATALOGUE[code].message : exception.message;
      // ValidationPipe answers { message: string[] }: those are the details of validation_failed.
      if (status === 400 && typeof response === 'object' && Array.isArray((response as { message?: unknown }).message)) {
        extras.details = (response as { message: string[] }).message;
        message = 'The request is invalid.';
      }
      // Terminus answers 503 with the per-dependency report: keep which dependency is down (what a
      // probe reader needs) but not the drivers' messages, which can name internal addresses and
      // users; those go to the log with the request id.
      if (typeof response === 'object' && (response as { details?: unknown }).details) {
        const details = (response as { details: Record<string, unknown> }).details;
        extras.details = publicHealthDetails(details);
        this.logger.warn({ requestId, details }, 'not ready');
      }
      if (status >= 500 && status !== 503) this.logger.error({ requestId, err: loggableError(exception) }, 'request failed');
      return { status, code, message, extras, headers: {} };
    }
    const frameworkError = exception as FrameworkError;
    if (frameworkError?.statusCode && frameworkError.statusCode >= 400 && frameworkError.statusCode < 500) {
      // Fastify's own errors (body too large, bad JSON, unknown content type) are client errors.
      const status = frameworkError.statusCode;
      const code: ErrorCode = codeForStatus(status);
      return { status, code, message: publicMessage(frameworkError, code), extras: {}, headers: {} };
    }
    this.logger.error({ requestId, err: loggableError(exception) }, 'unhandled error');
    return { status: 500, code: 'internal_error' as ErrorCode, message: ERROR_CATALOGUE.internal_error.message, extras: {}, headers: {} };
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
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return ERROR_CATALOGUE.payload_too_large.message;
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return ERROR_CATALOGUE.unsupported_media_type.message;
    default:
      return ERROR_CATALOGUE[code].message;
  }
}
