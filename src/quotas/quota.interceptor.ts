import { CallHandler, ExecutionContext, HttpException, Injectable, NestInterceptor } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Observable, catchError, throwError } from 'rxjs';
import { AdmissionService } from '../rate-limit/admission.service';
import type { AdmissionTicket } from '../rate-limit/admission.types';
import { applyResponseHeaders } from '../rate-limit/rate-limit.request-state';

/**
 * The quota step on Nest routes (docs/rate-limits-and-quotas.md). The check and the request count
 * happened in RateLimitGuard's one call of the admission store (the guard sees this interceptor on
 * the route and counts the request); here the refusal is answered (429 `quota_exceeded`), the
 * `X-Quota-*` headers are set, and once the response is over its bytes are settled, with a refund
 * when the gateway answered a 5xx itself. Requests without a tenant pass untouched.
 */
@Injectable()
export class QuotaInterceptor implements NestInterceptor {
  constructor(private readonly admission: AdmissionService) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const result = request.gw?.admission;
    if (!request.gw?.auth || !result) return next.handle();
    applyResponseHeaders(request, http.getResponse<FastifyReply>(), result.quotaHeaders);
    if (result.quotaRefusal) throw result.quotaRefusal;
    const ticket = result.ticket;
    if (!ticket) return next.handle();
    const outcome = { gatewayError: false };
    this.settleWhenDone(request, http.getResponse<FastifyReply>(), ticket, outcome);
    return next.handle().pipe(
      catchError((error: unknown) => {
        // Whatever the gateway answers with a 5xx of its own (no backend, backend failed or timed
        // out, an internal error) is not the tenant's request to pay for.
        outcome.gatewayError = (error instanceof HttpException ? error.getStatus() : 500) >= 500;
        return throwError(() => error);
      }),
    );
  }

  /**
   * Settles once the response is over: 'finish' when it was sent in full, 'close' when the client
   * went away first (an aborted transfer still moved bytes). The byte figures are the ones the
   * proxy counted on the streams.
   */
  private settleWhenDone(request: FastifyRequest, reply: FastifyReply, ticket: AdmissionTicket, outcome: { gatewayError: boolean }): void {
    const raw = reply.raw;
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      raw.off('finish', settle);
      raw.off('close', settle);
      const gw = request.gw;
      this.admission.settle(ticket, {
        bytesIn: gw.bytesIn ?? 0,
        bytesOut: gw.bytesOut ?? 0,
        gatewayError: outcome.gatewayError,
        // The backend's own success: an image it rendered (the gateway has no image cache on these routes).
        render: !outcome.gatewayError && gw.backend !== undefined && raw.statusCode >= 200 && raw.statusCode < 300,
      });
    };
    raw.once('finish', settle);
    raw.once('close', settle);
  }
}
