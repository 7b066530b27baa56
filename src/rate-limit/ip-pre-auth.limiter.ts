import { Injectable, Optional } from '@nestjs/common';
import type { AuthenticationRequest } from '../common/http/request-context';
import { GatewayException } from '../common/errors/gateway.exception';
import { GatewayConfig } from '../config/gateway-config';
import { GatewayMetrics } from '../metrics/gateway-metrics.service';
import type { PreAuthLimiter } from '../pipeline/pre-auth-limiter';
import { RateLimitBuckets } from './rate-limit-buckets';
import { rateLimitHeaders } from './rate-limit-headers';
import { rememberPreAuthResults } from './rate-limit.request-state';
import { TokenBucketThrottlerStorage } from './token-bucket-throttler.storage';

/**
 * The IP bucket, consumed before a key is looked up in PostgreSQL (docs/proxy-and-backends.md): a flood of random
 * keys from one address is cut after `rateLimit.ip` requests, each of which cost at most one
 * lookup. Marks the request so that RateLimitGuard does not take the IP token a second time.
 * On the 429 the headers go on the exception, since the request never reaches a handler.
 */
@Injectable()
export class IpPreAuthLimiter implements PreAuthLimiter {
  private readonly buckets: RateLimitBuckets;
  private readonly enabled: boolean;

  constructor(
    private readonly store: TokenBucketThrottlerStorage,
    config: GatewayConfig,
    @Optional() private readonly metrics?: GatewayMetrics,
  ) {
    this.buckets = new RateLimitBuckets(config.rateLimit);
    this.enabled = config.rateLimit.enabled;
  }

  async beforeKeyLookup(request: AuthenticationRequest): Promise<void> {
    if (!this.enabled || request.gw.ipLimited) return;
    const outcome = await this.store.consume(this.buckets.ip(request.gw.clientIp));
    request.gw.ipLimited = true;
    // Keyed by the request context, which Nest routes and the chain share.
    rememberPreAuthResults(request.gw, outcome.results);
    if (!outcome.allowed) {
      this.metrics?.rateLimited('ip');
      const headers = rateLimitHeaders(outcome);
      throw new GatewayException('rate_limited', undefined, { scope: 'ip', retryAfter: outcome.retryAfterSeconds }, headers);
    }
  }
}
