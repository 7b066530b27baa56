import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationBootstrap, OnModuleInit, Optional } from '@nestjs/common';
import type { Cluster } from 'ioredis';
import { GatewayException } from '../common/errors/gateway.exception';
import { GatewayConfig, type RouteLimitConfig } from '../config/gateway-config';
import { GatewayMetrics } from '../metrics/gateway-metrics.service';
import { RedisService } from '../redis/redis.service';
import { type UsagePeriod, secondsUntil, usagePeriodOf } from '../usage/usage-period';
import { UsageRepository } from '../usage/usage.repository';
import { UsageService } from '../usage/usage.service';
import { AdmissionKeys, AdmissionPlan, CompiledRoute, type PlanContext } from './admission-plan';
import type {
  AdmissionCaller,
  AdmissionResult,
  AdmissionTicket,
  HeaderPairs,
  PreAuthResult,
  RouteLimitsSpec,
  SettleFigures,
} from './admission.types';
import type { AdmissionPolicy, Decided, PolicyDecision } from './policies/admission-policy';
import { ClusterAdmissionPolicy } from './policies/cluster.policy';
import { FailoverAdmissionPolicy } from './policies/failover.policy';
import { LocalAdmissionPolicy } from './policies/local.policy';
import { LocalSyncAdmissionPolicy } from './policies/local-sync.policy';
import { RedisAdmissionPolicy } from './policies/redis.policy';
import { headerMapOf, rateLimitHeaderPairs } from './rate-limit-headers';
import type { BucketResult } from './token-bucket';

/** A route's limits as `compileRoute` returns them: opaque, handed back to `admit`. */
export type CompiledRouteLimits = CompiledRoute;

const NO_HEADERS: HeaderPairs = [];

/**
 * The admission store (docs/rate-limits-and-quotas.md): everything a request asks of Redis on its
 * way in (every rate-limit bucket, the quota check and the request count, in one atomic call) and
 * the accounting on its way out (`settle`, batched). Plain methods with explicit inputs, so the
 * compiled request chain and the Nest faces (RateLimitGuard, QuotaInterceptor, the pre-auth
 * limiter) call the same code.
 *
 * Policies (Kong style, one interface): `redis` on one server or behind Sentinel, `cluster` on a
 * Redis Cluster, `local` without Redis, each wrapped by `onStoreFailure`; routes with
 * `policy: local-sync` are decided in process and synced every `rateLimit.localSync.intervalMs`.
 */
@Injectable()
export class AdmissionService implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('RateLimit');
  private readonly context: PlanContext;
  private readonly keys: AdmissionKeys;
  /** Decides `exact` routes, the pre-authentication bucket and the throttler's buckets. */
  readonly primary: AdmissionPolicy;
  /** Decides `local-sync` routes; undefined without Redis, where every route is local anyway. */
  readonly localSync?: LocalSyncAdmissionPolicy;
  /** Routes whose capacity was found below a plan, so each is warned of once. */
  private readonly warned = new Set<string>();
  /** The largest stored plan, once read at start: compiled routes are checked against it too. */
  private largestStoredPlan?: { name: string; perMinute: number };

  constructor(
    private readonly config: GatewayConfig,
    redis: RedisService,
    private readonly usage: UsageService,
    private readonly repository: UsageRepository,
    @Optional() private readonly metrics?: GatewayMetrics,
  ) {
    const rateLimit = config.rateLimit;
    const client = redis.client;
    const ipAuthenticated = rateLimit.ipAuthenticated;
    this.context = {
      keyPrefix: redis.prefix,
      cluster: client?.isCluster ?? false,
      enabled: rateLimit.enabled,
      ip: rateLimit.ip,
      ipAuthenticated: ipAuthenticated.perMinute || ipAuthenticated.perHour ? ipAuthenticated : undefined,
    };
    this.keys = new AdmissionKeys(redis.prefix);
    if (!client) {
      this.primary = new LocalAdmissionPolicy(usage, true);
      return;
    }
    const shared = client.isCluster ? new ClusterAdmissionPolicy(client as Cluster, usage) : new RedisAdmissionPolicy(client, usage);
    this.primary = new FailoverAdmissionPolicy(shared, new LocalAdmissionPolicy(usage, false), rateLimit.onStoreFailure, redis, usage, metrics);
    this.localSync = new LocalSyncAdmissionPolicy(this.primary, client, usage, rateLimit.localSync.intervalMs, client.isCluster);
  }

  onModuleInit(): void {
    this.localSync?.start();
  }

  /** A start-up warning for every configured route capacity that a plan alone could fill. */
  async onApplicationBootstrap(): Promise<void> {
    this.largestStoredPlan = await this.repository.largestPlanPerMinute().catch(() => undefined);
    for (const [name, limits] of Object.entries(this.config.rateLimit.routes as unknown as Record<string, RouteLimitConfig>)) {
      this.checkCapacity(name, limits.perMinute);
    }
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.localSync?.stop();
  }

  /** Compiles a route's limits once: bucket names, capacity buckets and header strings are fixed here. */
  compileRoute(spec: RouteLimitsSpec): CompiledRouteLimits {
    const route = new CompiledRoute(spec, this.context);
    this.checkCapacity(route.routeName, route.capacityPerMinute);
    return route;
  }

  /**
   * Decides a request: synchronously when no I/O is needed (`local`, `local-sync` once warm), else
   * with a promise (one Redis round trip). Never rejects: a store failure is decided by
   * `rateLimit.onStoreFailure`.
   */
  admit(route: CompiledRouteLimits, caller: AdmissionCaller): AdmissionResult | Promise<AdmissionResult> {
    const plan = route.planFor(caller);
    const period = usagePeriodOf(new Date());
    const policy = route.policy === 'local-sync' && this.localSync ? this.localSync : this.primary;
    return this.resolve(policy.admit(plan, period), (decision) => this.resultOf(plan, decision, period));
  }

  /**
   * The client IP's bucket on the pre-authentication path (no key, unknown key, bad secret or
   * signature, key-cache misses): 429 `rate_limited` scope `ip` once it is empty.
   */
  chargePreAuth(clientIp: string): PreAuthResult | Promise<PreAuthResult> {
    if (!this.context.enabled) return { allowed: true, headers: NO_HEADERS };
    const plan = new AdmissionPlan(this.keys.preAuthBuckets(clientIp, this.context.ip), undefined, this.context.cluster);
    return this.resolve(this.primary.admit(plan, usagePeriodOf(new Date())), (decision) => {
      const result = this.resultOf(plan, decision, undefined);
      return { allowed: result.allowed, refusal: result.rateRefusal, headers: result.rateHeaders };
    });
  }

  /** Adds what a finished (or aborted) response adds to its request's count; batched, never a round trip of its own. */
  settle(ticket: AdmissionTicket, figures: SettleFigures): void {
    this.usage.settle(ticket, figures);
  }

  /**
   * One fixed bucket of `limit` per `ttlMs` (@nestjs/throttler's storage contract), kept by the same
   * store and failure policy as every other bucket.
   */
  async throttle(name: string, key: string, ttlMs: number, limit: number): Promise<{ allowed: boolean; result?: BucketResult; retryAfterSeconds?: number }> {
    const windowSeconds = Math.max(1, Math.ceil(ttlMs / 1000));
    const hash = this.keys.throttler(name, key);
    const levelField = `b:${windowSeconds}`;
    const plan = new AdmissionPlan(
      [{ key: `${hash} ${levelField}`, hash, levelField, scope: 'route', rate: limit, windowSeconds, shown: true }],
      undefined,
      this.context.cluster,
    );
    const decision = await this.primary.admit(plan, usagePeriodOf(new Date()));
    if (decision.storeUnavailable) throw unavailable();
    const rate = decision.rate;
    return { allowed: rate?.allowed ?? true, result: rate?.results[0], retryAfterSeconds: rate?.retryAfterSeconds };
  }

  private resolve<T>(decided: Decided, then: (decision: PolicyDecision) => T): T | Promise<T> {
    return decided instanceof Promise ? decided.then(then) : then(decided);
  }

  private resultOf(plan: AdmissionPlan, decision: PolicyDecision, period: UsagePeriod | undefined): AdmissionResult {
    if (decision.storeUnavailable) {
      const refusal = unavailable();
      return { allowed: false, refusal, rateRefusal: refusal, rateHeaders: [['retry-after', '1']], quotaHeaders: NO_HEADERS };
    }
    const rate = decision.rate;
    let rateHeaders = NO_HEADERS;
    if (rate && rate.results.length > 0) {
      const shown = rate.results.filter((_, i) => plan.buckets[i].shown);
      if (!rate.allowed) {
        const rateRefusal = this.rateRefusal(plan, shown, rate.retryAfterSeconds ?? 1, rate.deniedScope);
        rateHeaders = rateLimitHeaderPairs(plan.policyHeader, shown, rate.retryAfterSeconds ?? 1);
        const refusal = new GatewayException(rateRefusal.code, rateRefusal.message, rateRefusal.extras, headerMapOf(rateHeaders));
        return { allowed: false, refusal, rateRefusal: refusal, rateHeaders, quotaHeaders: NO_HEADERS };
      }
      rateHeaders = rateLimitHeaderPairs(plan.policyHeader, shown);
    }
    const quota = decision.quota;
    if (!plan.quota || !quota || !period) return { allowed: true, rateHeaders, quotaHeaders: NO_HEADERS };
    const limit = plan.quota.limits.monthlyRequests;
    const quotaHeaders: HeaderPairs = [
      ['x-quota-limit', String(limit)],
      ['x-quota-remaining', String(Math.max(0, limit - quota.requests))],
      ['x-quota-reset', String(secondsUntil(period.monthEnd, new Date()))],
    ];
    if (quota.exceeded) {
      this.metrics?.quotaExceeded(quota.exceeded);
      const quotaRefusal = new GatewayException('quota_exceeded', `The ${quota.exceeded} quota is used up.`, { quota: quota.exceeded }, headerMapOf(quotaHeaders));
      return { allowed: false, refusal: quotaRefusal, quotaRefusal, rateHeaders, quotaHeaders };
    }
    const ticket: AdmissionTicket | undefined = quota.counted
      ? { tenantId: plan.quota.tenantId, day: period.day, token: quota.token, deferred: quota.deferred }
      : undefined;
    return { allowed: true, rateHeaders, quotaHeaders, ticket };
  }

  /**
   * 429 naming the caller's own bucket when one of them is empty; 503 when only the route's shared
   * capacity is (the service is full, retrying later is all the caller can do).
   */
  private rateRefusal(plan: AdmissionPlan, shown: readonly BucketResult[], retryAfter: number, deniedScope: string | undefined): GatewayException {
    const ownDenied = deniedScope !== 'capacity' ? deniedScope : shown.find((r) => r.remaining === 0)?.scope;
    if (ownDenied === undefined) {
      this.metrics?.rateLimited('capacity');
      return new GatewayException('unavailable', 'The service is at capacity; retry shortly.', { retryAfter });
    }
    this.metrics?.rateLimited(ownDenied);
    return new GatewayException('rate_limited', undefined, { scope: ownDenied, retryAfter });
  }

  /** Warns (once per route) when the plan seeds or the stored plans hold one a route's capacity cannot take. */
  private checkCapacity(routeName: string, capacity: number | undefined): void {
    if (capacity === undefined || this.warned.has(routeName)) return;
    const plans = [...this.config.plans.map((plan) => ({ name: plan.name, perMinute: plan.perMinute })), ...(this.largestStoredPlan ? [this.largestStoredPlan] : [])];
    const largest = plans.reduce<{ name: string; perMinute: number } | undefined>((best, plan) => (best && best.perMinute >= plan.perMinute ? best : plan), undefined);
    if (!largest || largest.perMinute <= capacity) return;
    this.warned.add(routeName);
    this.logger.warn(
      `route ${routeName}: capacity ${capacity}/min is below plan ${largest.name} (${largest.perMinute}/min): one tenant within its plan can fill it; ` +
        'give the route at least 4x the largest plan',
    );
  }
}

function unavailable(): GatewayException {
  return new GatewayException('unavailable', 'The rate-limit store is unavailable.', { retryAfter: 1 }, { 'retry-after': 1 });
}

/** Limits of a route from config (`rateLimit.routes.<name>`). */
export function routeSpecOf(config: GatewayConfig, routeName: string, countsTowardQuota: boolean): RouteLimitsSpec {
  const limits = (config.rateLimit.routes as unknown as Record<string, RouteLimitConfig | undefined>)[routeName];
  return {
    routeName,
    capacity: limits && (limits.perMinute || limits.perHour) ? { perMinute: limits.perMinute, perHour: limits.perHour, burst: limits.burst } : undefined,
    perCaller: limits?.perCaller,
    policy: limits?.policy ?? 'exact',
    countsTowardQuota,
  };
}
