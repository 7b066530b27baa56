import { Logger } from '@nestjs/common';
import type { GatewayConfig } from '../../config/gateway-config';
import type { GatewayMetrics } from '../../metrics/gateway-metrics.service';
import type { RedisService } from '../../redis/redis.service';
import type { UsageService } from '../../usage/usage.service';
import type { UsagePeriod } from '../../usage/usage-period';
import type { AdmissionPlan } from '../admission-plan';
import { ThrottledFailureLog } from '../store-failure-log';
import { type AdmissionPolicy, type Decided, type PolicyDecision, decideQuotaLocally } from './admission-policy';
import type { LocalAdmissionPolicy } from './local.policy';

export type StoreFailurePolicy = GatewayConfig['rateLimit']['onStoreFailure'];

/**
 * `rateLimit.onStoreFailure` around a shared policy (Kong's `fault_tolerant`, with a choice): when
 * the Redis connection is not ready, or a call fails or times out (`redis.commandTimeoutMs`),
 * `local` decides with in-process buckets and quotas, `allow` lets the request through with the
 * quota checked in process and no rate limit, `deny` answers 503 `unavailable` with `Retry-After: 1`.
 * Every failure counts in `gateway_store_errors_total{store="redis"}`; the warning is throttled to
 * a line per 10 s. Recovery is automatic: the next request after ioredis reconnects asks Redis.
 * Under `local` and `allow` no request fails because of the store.
 */
export class FailoverAdmissionPolicy implements AdmissionPolicy {
  readonly name = 'failover';
  private readonly logger = new Logger('RateLimit');
  private readonly failureLog = new ThrottledFailureLog(10_000);

  constructor(
    private readonly shared: AdmissionPolicy,
    private readonly local: LocalAdmissionPolicy,
    private readonly onFailure: StoreFailurePolicy,
    private readonly redis: RedisService,
    private readonly usage: UsageService,
    private readonly metrics?: GatewayMetrics,
  ) {}

  admit(plan: AdmissionPlan, period: UsagePeriod): Decided {
    if (!this.redis.ready) return this.fallback(plan, period, new Error(`connection is ${this.redis.client?.status}`));
    return Promise.resolve(this.shared.admit(plan, period)).catch((error: Error) => this.fallback(plan, period, error));
  }

  private fallback(plan: AdmissionPlan, period: UsagePeriod, error: Error): Decided {
    this.failed(error);
    switch (this.onFailure) {
      case 'local':
        return this.local.admit(plan, period);
      case 'allow':
        return this.allow(plan, period);
      case 'deny':
        return { store: 'none', storeUnavailable: true };
    }
  }

  private allow(plan: AdmissionPlan, period: UsagePeriod): PolicyDecision {
    if (!plan.quota) return { store: 'none' };
    return { quota: decideQuotaLocally(plan.quota, this.usage.figures, period, 'fallback'), store: 'none' };
  }

  private failed(error: Error): void {
    this.metrics?.storeError('redis');
    const count = this.failureLog.failed();
    if (count !== undefined) {
      this.logger.warn(
        `rate-limit store (Redis) failed ${count} time(s): ${error.message}; policy onStoreFailure=${this.onFailure}` +
          (this.onFailure === 'local' ? ' (in-process buckets until Redis answers)' : ''),
      );
    }
  }
}
