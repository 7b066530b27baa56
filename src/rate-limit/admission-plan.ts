import type { IPv6 } from 'ipaddr.js';
import type { AuthContext, EffectiveLimits } from '../common/http/request-context';
import { parseAddress } from '../common/net/cidr';
import type { UsagePeriod } from '../usage/usage-period';
import { hashTagOf } from './admission.scripts';
import type { AdmissionCaller, AdmissionPolicyName, RouteLimitsSpec, WindowLimits } from './admission.types';
import { policyHeaderOf } from './rate-limit-headers';
import { type RateLimitScope, type TokenBucket, assertValidBuckets } from './token-bucket';

/**
 * A bucket as the admission store keeps it: a level field in a Redis hash whose buckets share one
 * time field (`b@`), since they are always refilled and written together.
 */
export interface AdmissionBucket extends TokenBucket {
  /** Full Redis key of the hash, prefix included. */
  readonly hash: string;
  readonly levelField: string;
  /** Described by the caller's rate-limit headers: every bucket but a route's shared capacity. */
  readonly shown: boolean;
}

/** A request's quota check: the tenant's month view lives in its hash beside its buckets. */
export interface QuotaPlan {
  readonly tenantId: string;
  readonly hash: string;
  readonly limits: Pick<EffectiveLimits, 'monthlyRequests' | 'dailyRequests' | 'monthlyBandwidthBytes'>;
}

/** A month view outlives its month by this much, for requests that straddle midnight. */
export const MONTH_VIEW_GRACE_MS = 3 * 86_400_000;
/** A route's capacity hash gets this expiry when created (it is one small hash per route name). */
const ROUTE_HASH_TTL_MS = 86_400_000;
/** Expiry argument of the scripts: refreshed on every write to when the hash's buckets are full. */
export const UNTIL_FULL = -1;

/** Where the store's keys live and what every plan shares. */
export interface PlanContext {
  /** Prefix of every key, e.g. `igw:`; the store adds `a:`. */
  readonly keyPrefix: string;
  /** One script call per hash slot (Redis Cluster) instead of one for the whole request. */
  readonly cluster: boolean;
  /** `rateLimit.enabled`: false leaves only the quota check. */
  readonly enabled: boolean;
  /** `rateLimit.ip`: the pre-authentication bucket, also every caller's on an open route. */
  readonly ip: WindowLimits;
  /** `rateLimit.ipAuthenticated`: a per-IP cap on authenticated callers, when set. */
  readonly ipAuthenticated?: WindowLimits;
}

/**
 * The keys and arguments of one script call: all of a request's hashes on one server, or those of
 * one hash slot on a Redis Cluster. The first key is the tenant's hash when the group counts the
 * request. Arguments depend on the day only (month-view fields, the tenant hash's expiry), so they
 * are built once a day and reused by every request of the plan.
 */
export class ScriptGroup {
  private readonly built: { day?: string; args: (string | number)[] }[] = [{ args: [] }, { args: [] }];

  constructor(
    readonly keys: readonly string[],
    /** Plan index of each bucket, in the order the script reports their levels. */
    readonly order: readonly number[],
    private readonly bucketsPerKey: readonly (readonly AdmissionBucket[])[],
    readonly quota: QuotaPlan | undefined,
    private readonly expiries: readonly number[],
  ) {}

  /** The admission script's arguments; without the quota section when `withQuota` is false. */
  argsFor(period: UsagePeriod, withQuota = true): readonly (string | number)[] {
    const counts = withQuota && this.quota !== undefined;
    const slot = this.built[counts ? 1 : 0];
    if (slot.day === period.day) return slot.args;
    const args: (string | number)[] = [counts ? '1' : '0'];
    this.keys.forEach((_, k) => {
      const buckets = this.bucketsPerKey[k];
      args.push(this.expiryOf(k, period), buckets.length);
      for (const b of buckets) args.push(b.levelField);
      if (k === 0 && counts) args.push(...viewFields(period));
      for (const b of buckets) args.push(...bucketNumbers(b));
    });
    if (counts) {
      const { monthlyRequests, dailyRequests, monthlyBandwidthBytes } = this.quota!.limits;
      args.push(monthlyRequests, dailyRequests ?? 0, monthlyBandwidthBytes);
    }
    slot.args = args;
    slot.day = period.day;
    return args;
  }

  /** The buckets kept in the group's `key`-th hash. */
  bucketsOf(key: number): readonly AdmissionBucket[] {
    return this.bucketsPerKey[key];
  }

  expiryOf(key: number, period: UsagePeriod): number {
    return this.expiries[key] === TENANT_EXPIRY ? tenantHashTtlMs(period) : this.expiries[key];
  }
}

/** Marker in `expiries`: the tenant hash's expiry moves with the month. */
const TENANT_EXPIRY = -2;

/** The expiry argument of the scripts for `hash` on `period`'s day. */
export function hashExpiryMs(hash: string, period: UsagePeriod): number {
  const expiry = expiryOfHash(hash);
  return expiry === TENANT_EXPIRY ? tenantHashTtlMs(period) : expiry;
}

/** Milliseconds from the start of `period`'s day to the end of the month's grace. */
function tenantHashTtlMs(period: UsagePeriod): number {
  return period.monthEnd.getTime() + MONTH_VIEW_GRACE_MS - Date.parse(`${period.day}T00:00:00Z`);
}

/** The month view's fields read and written on the request path, in the scripts' order. */
export function viewFields(period: UsagePeriod): [seed: string, month: string, day: string, bytes: string] {
  const m = period.month;
  return [`s:${m}`, `r:${m}`, `r:${period.day}`, `by:${m}`];
}

/** What the scripts compute a bucket with: rate, one token (window in ms) and capacity, all scaled. */
export function bucketNumbers(bucket: TokenBucket): [rate: number, windowMs: number, capacity: number] {
  const windowMs = bucket.windowSeconds * 1000;
  return [bucket.rate, windowMs, (bucket.burst ?? bucket.rate) * windowMs];
}

/** Every bucket a request is checked against, and how the scripts reach them. */
export class AdmissionPlan {
  /** `RateLimit-Policy` of the caller's buckets, built once per plan. */
  readonly policyHeader: string | undefined;
  readonly groups: readonly ScriptGroup[];

  constructor(
    /** In header order: ip (authenticated cap or open route), tenant minute, tenant hour, route per caller, capacity. */
    readonly buckets: readonly AdmissionBucket[],
    readonly quota: QuotaPlan | undefined,
    cluster: boolean,
  ) {
    assertValidBuckets(buckets, 1);
    const shown = buckets.filter((b) => b.shown);
    this.policyHeader = shown.length > 0 ? policyHeaderOf(shown) : undefined;
    this.groups = buildGroups(buckets, quota, cluster);
  }
}

/** The expiry a hash gets: by what its hash tag names (a tenant, a route, an address). */
function expiryOfHash(hash: string): number {
  const tag = hashTagOf(hash);
  if (tag.startsWith('t:')) return TENANT_EXPIRY;
  if (tag.startsWith('r:')) return ROUTE_HASH_TTL_MS;
  return UNTIL_FULL;
}

function buildGroups(buckets: readonly AdmissionBucket[], quota: QuotaPlan | undefined, cluster: boolean): ScriptGroup[] {
  // Hashes in order, the tenant's first when it carries the quota (the scripts expect it there).
  const hashes: string[] = quota ? [quota.hash] : [];
  for (const b of buckets) if (!hashes.includes(b.hash)) hashes.push(b.hash);
  const slots = new Map<string, string[]>();
  for (const hash of hashes) {
    const slot = cluster ? hashTagOf(hash) : '';
    const list = slots.get(slot);
    if (list) list.push(hash);
    else slots.set(slot, [hash]);
  }
  return [...slots.values()].map((keys) => {
    const perKey = keys.map((hash) => buckets.filter((b) => b.hash === hash));
    const order = perKey.flatMap((list) => list.map((b) => buckets.indexOf(b)));
    const groupQuota = quota && keys[0] === quota.hash ? quota : undefined;
    return new ScriptGroup(keys, order, perKey, groupQuota, keys.map(expiryOfHash));
  });
}

/** The buckets of one window config, in one hash: per minute (with the burst) and/or per hour. */
function windowBuckets(hash: string, scope: RateLimitScope, limits: WindowLimits, shown = true): AdmissionBucket[] {
  const out: AdmissionBucket[] = [];
  const add = (windowSeconds: number, rate: number, burst?: number) => {
    const levelField = `b:${windowSeconds}`;
    out.push({ key: `${hash} ${levelField}`, hash, levelField, scope, rate, windowSeconds, burst, shown });
  };
  if (limits.perMinute) add(60, limits.perMinute, limits.burst);
  if (limits.perHour) add(3600, limits.perHour);
  return out;
}

/** Key names of the store (docs/rate-limits-and-quotas.md). */
export class AdmissionKeys {
  private readonly base: string;

  constructor(keyPrefix: string) {
    this.base = `${keyPrefix}a:`;
  }

  /** The tenant's hash: its buckets and its month view share the slot `{t:<id>}`. */
  tenant(tenantId: string): string {
    return `${this.base}{t:${tenantId}}`;
  }

  /** The tenant's own bucket on a route, in the tenant's slot. */
  tenantRoute(tenantId: string, routeName: string): string {
    return `${this.base}{t:${tenantId}}:r:${routeName}`;
  }

  route(routeName: string): string {
    return `${this.base}{r:${routeName}}`;
  }

  /** An address's hash of one kind: `p` pre-authentication, `a` authenticated cap, `r:<route>` open route. */
  ip(clientIp: string, kind: string): string {
    return `${this.base}{ip:${ipBucketId(clientIp)}}:${kind}`;
  }

  /** @nestjs/throttler's buckets, for code that uses the stock guard. */
  throttler(name: string, key: string): string {
    return `${this.base}{th:${name}:${key}}`;
  }

  tenantBuckets(tenantId: string, limits: WindowLimits): AdmissionBucket[] {
    return windowBuckets(this.tenant(tenantId), 'tenant', limits);
  }

  preAuthBuckets(clientIp: string, limits: WindowLimits): AdmissionBucket[] {
    return windowBuckets(this.ip(clientIp, 'p'), 'ip', limits);
  }
}

/**
 * A route's limits, compiled once (bucket names, capacity buckets, header strings): per request only
 * the caller's plan is looked up, and for an authenticated caller it is cached on its AuthContext
 * (one frozen object per cached key, replaced when the tenant's limits change).
 */
export class CompiledRoute {
  readonly routeName: string;
  readonly policy: AdmissionPolicyName;
  readonly countsTowardQuota: boolean;
  private readonly capacity: readonly AdmissionBucket[];
  private readonly perCaller?: WindowLimits;
  private readonly plans = new WeakMap<AuthContext, AdmissionPlan>();
  private readonly keys: AdmissionKeys;

  constructor(
    spec: RouteLimitsSpec,
    private readonly context: PlanContext,
  ) {
    if (!/^[a-z0-9-]{1,64}$/.test(spec.routeName)) throw new RangeError(`route name ${spec.routeName} must match [a-z0-9-]{1,64}`);
    this.routeName = spec.routeName;
    this.policy = spec.policy;
    this.countsTowardQuota = spec.countsTowardQuota;
    this.keys = new AdmissionKeys(context.keyPrefix);
    this.capacity = context.enabled && spec.capacity ? windowBuckets(this.keys.route(spec.routeName), 'capacity', spec.capacity, false) : [];
    this.perCaller = context.enabled && (spec.perCaller?.perMinute || spec.perCaller?.perHour) ? spec.perCaller : undefined;
    assertValidBuckets(this.capacity, 1);
  }

  /** The capacity's per-minute figure, for the start-up check against the plans. */
  get capacityPerMinute(): number | undefined {
    return this.capacity.find((b) => b.windowSeconds === 60)?.rate;
  }

  planFor(caller: AdmissionCaller): AdmissionPlan {
    const auth = caller.auth;
    if (!auth) return this.openPlan(caller.clientIp);
    if (this.context.ipAuthenticated) return this.tenantPlan(auth, caller.clientIp);
    let plan = this.plans.get(auth);
    if (!plan) {
      plan = this.tenantPlan(auth);
      this.plans.set(auth, plan);
    }
    return plan;
  }

  private tenantPlan(auth: AuthContext, clientIp?: string): AdmissionPlan {
    const buckets: AdmissionBucket[] = [];
    if (this.context.enabled) {
      if (clientIp !== undefined && this.context.ipAuthenticated) {
        buckets.push(...windowBuckets(this.keys.ip(clientIp, 'a'), 'ip', this.context.ipAuthenticated));
      }
      buckets.push(...this.keys.tenantBuckets(auth.tenantId, auth.limits));
      if (this.perCaller) buckets.push(...windowBuckets(this.keys.tenantRoute(auth.tenantId, this.routeName), 'route', this.perCaller));
      buckets.push(...this.capacity);
    }
    const quota = this.countsTowardQuota ? { tenantId: auth.tenantId, hash: this.keys.tenant(auth.tenantId), limits: auth.limits } : undefined;
    return new AdmissionPlan(buckets, quota, this.context.cluster);
  }

  /** An open route (no authentication): the address's pre-authentication bucket, its own bucket on the route, the capacity. */
  private openPlan(clientIp: string): AdmissionPlan {
    if (!this.context.enabled) return new AdmissionPlan([], undefined, this.context.cluster);
    const buckets = [
      ...this.keys.preAuthBuckets(clientIp, this.context.ip),
      ...(this.perCaller ? windowBuckets(this.keys.ip(clientIp, `r:${this.routeName}`), 'route', this.perCaller) : []),
      ...this.capacity,
    ];
    return new AdmissionPlan(buckets, undefined, this.context.cluster);
  }
}

/**
 * The IP bucket's identity: the address for IPv4, its /64 for IPv6. One IPv6 subscriber usually
 * holds a whole /64, so limiting per address would let a client rotate through 2^64 buckets.
 */
export function ipBucketId(clientIp: string): string {
  if (!clientIp.includes(':')) return clientIp;
  const parsed = parseAddress(clientIp);
  if (!parsed || parsed.kind() !== 'ipv6') return parsed?.toString() ?? clientIp;
  const parts = (parsed as IPv6).parts;
  return `${parts.slice(0, 4).map((p) => p.toString(16)).join(':')}::/64`;
}
