import { ExecutionContext, Injectable } from '@nestjs/common';
import { INTERCEPTORS_METADATA } from '@nestjs/common/constants';
import { Reflector } from '@nestjs/core';
import { InjectThrottlerOptions, InjectThrottlerStorage, ThrottlerGuard, type ThrottlerModuleOptions } from '@nestjs/throttler';
import { THROTTLER_SKIP } from '@nestjs/throttler/dist/throttler.constants';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GatewayConfig } from '../config/gateway-config';
import { QuotaInterceptor } from '../quotas/quota.interceptor';
import { AdmissionService, type CompiledRouteLimits, routeSpecOf } from './admission.service';
import type { AdmissionResult } from './admission.types';
import { RATE_LIMIT_ROUTE } from './rate-limit-route.decorator';
import { applyResponseHeaders } from './rate-limit.request-state';
import { TokenBucketThrottlerStorage } from './token-bucket-throttler.storage';

/** Routes without `@RateLimitRoute()`: the tenant's buckets only, no capacity of their own. */
const TENANT_ONLY_ROUTE = 'api';

/**
 * The rate-limiting step on Nest routes (docs/rate-limits-and-quotas.md): the caller's buckets
 * (tenant minute and hour, the route's per-tenant bucket, an optional per-IP cap), the route's
 * capacity and, on routes that count toward the quota (those with QuotaInterceptor), the quota
 * check and the request count, all in one call of the admission store. Apply it after the
 * authentication guard, so the tenant is known: `@UseGuards(ApiKeyGuard, IpAllowlistGuard,
 * RateLimitGuard)`, with `@RateLimitRoute('proxy')` to name the route's limits in config.
 *
 * Extends @nestjs/throttler's guard, keeping its module options, storage token and
 * `@SkipThrottle()`, but replaces `canActivate`: the stock guard calls its storage once per named
 * throttler, one round trip per scope and none atomic with the others (and knows no quota). The
 * guard therefore calls `AdmissionService.admit` instead; the quota part of the answer is left on
 * the request for QuotaInterceptor, which owns that step.
 */
@Injectable()
export class RateLimitGuard extends ThrottlerGuard {
  /** Compiled once per handler: the route's limits never change while the process runs. */
  private readonly routes = new Map<object, CompiledRouteLimits>();

  constructor(
    @InjectThrottlerOptions() options: ThrottlerModuleOptions,
    @InjectThrottlerStorage() storage: TokenBucketThrottlerStorage,
    reflector: Reflector,
    private readonly config: GatewayConfig,
    private readonly admission: AdmissionService,
  ) {
    super(options, storage, reflector);
  }

  // The base class types this as a promise; the decision itself is synchronous when no I/O is needed.
  override canActivate(context: ExecutionContext): Promise<boolean> {
    const route = this.routeOf(context);
    if (route === undefined) return Promise.resolve(true);
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    const gw = request.gw;
    const decided = this.admission.admit(route, { clientIp: gw.clientIp, auth: gw.auth });
    if (decided instanceof Promise) return decided.then((result) => this.apply(request, reply, result));
    try {
      return Promise.resolve(this.apply(request, reply, decided));
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  private apply(request: FastifyRequest, reply: FastifyReply, result: AdmissionResult): boolean {
    request.gw.admission = result;
    applyResponseHeaders(request, reply, result.rateHeaders);
    if (result.rateRefusal) throw result.rateRefusal;
    return true;
  }

  /** The handler's compiled limits; undefined when `@SkipThrottle()` exempts it. */
  private routeOf(context: ExecutionContext): CompiledRouteLimits | undefined {
    const handler = context.getHandler();
    if (this.routes.has(handler)) return this.routes.get(handler);
    const targets = [handler, context.getClass()];
    let route: CompiledRouteLimits | undefined;
    if (!this.reflector.getAllAndOverride<boolean>(`${THROTTLER_SKIP}default`, targets)) {
      const name = this.reflector.getAllAndOverride<string | undefined>(RATE_LIMIT_ROUTE, targets) ?? TENANT_ONLY_ROUTE;
      const interceptors = this.reflector.getAllAndMerge<unknown[]>(INTERCEPTORS_METADATA, targets) ?? [];
      route = this.admission.compileRoute(routeSpecOf(this.config, name, interceptors.includes(QuotaInterceptor)));
    }
    this.routes.set(handler, route as CompiledRouteLimits);
    return route;
  }
}
