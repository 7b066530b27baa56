import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Observable } from 'rxjs';

/** Routes whose responses are the backends' (images): their own headers must pass untouched. */
const PROXIED_ROUTES = new Set(['proxy', 'signed-proxy']);

/**
 * Headers for responses the gateway writes itself (admin and tenant JSON, health, errors), never
 * for proxied images: nothing to sniff, nothing to frame or run, and nothing to cache (a key is
 * shown once, in such a response). HSTS only over TLS, as browsers ignore it otherwise.
 */
export function applySecurityHeaders(reply: FastifyReply, request?: FastifyRequest): void {
  reply.header('x-content-type-options', 'nosniff');
  reply.header('cache-control', 'no-store');
  reply.header('content-security-policy', "default-src 'none'; frame-ancestors 'none'");
  reply.header('referrer-policy', 'no-referrer');
  if (request?.protocol === 'https') reply.header('strict-transport-security', 'max-age=31536000; includeSubDomains');
}

/** Applies them to every controller response except the proxied image routes. */
@Injectable()
export class SecurityHeadersInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    if (!PROXIED_ROUTES.has(request.gw?.route ?? '')) applySecurityHeaders(http.getResponse<FastifyReply>(), request);
    return next.handle();
  }
}
