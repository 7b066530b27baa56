import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Observable, from, switchMap } from 'rxjs';
import { QuotaService } from './quota.service';

/**
 * Step 7 of the pipeline (docs/proxy-and-backends.md): the quota check, after authentication and rate limits (guards
 * run before interceptors), before the handler does any work; the request is counted when its
 * response ends. Requests without a tenant pass untouched.
 */
@Injectable()
export class QuotaInterceptor implements NestInterceptor {
  constructor(private readonly quotas: QuotaService) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    if (!request.gw?.auth) return next.handle();
    // Usually decided at once from the counters the rate limiter fetched: no extra Observable then.
    const pending = this.quotas.admit(request, http.getResponse<FastifyReply>());
    return pending ? from(pending).pipe(switchMap(() => next.handle())) : next.handle();
  }
}
