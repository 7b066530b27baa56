import { ExecutionContext, Injectable, Optional } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { InjectThrottlerOptions, InjectThrottlerStorage, ThrottlerGuard, type ThrottlerModuleOptions } from '@nestjs/throttler';
import { THROTTLER_SKIP } from '@nestjs/throttler/dist/throttler.constants';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GatewayException } from '../common/errors/gateway.exception';
import type { RequestState } from '../common/http/request-context';
import { GatewayConfig } from '../config/gateway-config';
import { GatewayMetrics } from '../metrics/gateway-metrics.service';
import { UsageService } from '../usage/usage.service';
import { RateLimitBuckets, type RateLimitRouteName } from './rate-limit-buckets';
import { type HeaderMap, rateLimitHeaders } from './rate-limit-headers';
import { RATE_LIMIT_ROUTE } from './rate-limit-route.decorator';
import { applyResponseHeaders, preAuthResultsOf } from './rate-limit.request-state';
import { TokenBucketThrottlerStorage } from './token-bucket-throttler.storage';

/**
 * Tenant-, route- and (unless already consumed before the key lookup) IP-level rate limits
 * (docs/proxy-and-backends.md, docs/rate-limits-and-quotas.md). Apply it AFTER the authentication guard, so the tenant's limits are
 * known: `@UseGuards(ApiKeyGuard, RateLimitGuard)` plus `@RateLimitRoute('proxy')`.
 *
 * Extends @nestjs/throttler's guard, keeping its module options, storage token and
 * `@SkipThrottle()`, but replaces `canActivate`: the stock guard calls the storage once per named
 * throttler, i.e. one Redis round trip per scope, none of them atomic with the others. Here every
 * bucket of the request is consumed in ONE call (one EVALSHA, all or nothing), which also carries
 * the read of the tenant's usage counters for the quota check (one round trip for both).
 */
@Injectable()
export class RateLimitGuard extends ThrottlerGuard {
  private readonly buckets: RateLimitBuckets;
  private readonly enabled: boolean;

  constructor(
    @InjectThrottlerOptions() options: ThrottlerModuleOptions,
    @InjectThrottlerStorage() private readonly store: TokenBucketThrottlerStorage,
    reflector: Reflector,
    config: GatewayConfig,
    private readonly usage: UsageService,
    @Optional() private readonly metrics?: GatewayMetrics,
  ) {
    super(options, store, reflector);
    this.buckets = new RateLimitBuckets(config.rateLimit);
    this.enabled = config.rateLimit.enabled;
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    if (!this.enabled || this.reflector.getAllAndOverride<boolean>(`${THROTTLER_SKIP}default`, targets)) return true;
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    const route = this.reflector.getAllAndOverride<RateLimitRouteName | undefined>(RATE_LIMIT_ROUTE, targets);
    await this.admit(request.gw, route, (headers) => applyResponseHeaders(request, reply, headers));
    return true;
  }

  /**
   * The guard's logic without Nest's execution context, for the compiled chain: every bucket of
   * the request and the read of the tenant's usage in one round trip. `state` is also the key the
   * quota check finds that read under. Throws the 429 with its headers.
   */
  async admit(state: RequestState, route: RateLimitRouteName | undefined, setHeaders: (headers: HeaderMap) => void): Promise<void> {
    if (!this.enabled) return;
    const { auth, clientIp, ipLimited } = state;
    const buckets = [
      ...(ipLimited ? [] : this.buckets.ip(clientIp)),
      ...(auth ? this.buckets.tenant(auth.tenantId, auth.limits) : []),
      ...this.buckets.route(route),
    ];
    const now = new Date();
    const read = auth ? this.usage.prefetchRead(auth.tenantId, now) : undefined;
    const outcome = await this.store.consume(buckets, read ? [read] : []);
    if (auth && read) this.usage.acceptPrefetch(state, auth.tenantId, now, outcome.reads?.[0]);
    const headers = rateLimitHeaders({
      allowed: outcome.allowed,
      results: [...preAuthResultsOf(state), ...outcome.results],
      retryAfterSeconds: outcome.retryAfterSeconds,
    });
    setHeaders(headers);
    if (!outcome.allowed) {
      const scope = outcome.deniedScope ?? 'tenant';
      this.metrics?.rateLimited(scope);
      throw new GatewayException('rate_limited', undefined, { scope, retryAfter: outcome.retryAfterSeconds }, headers);
    }
  }
}
