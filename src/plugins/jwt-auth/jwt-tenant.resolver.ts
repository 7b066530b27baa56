import { Injectable } from '@nestjs/common';
import { AuthInvalidation, AuthInvalidationService } from '../../change-bus/auth-invalidation.service';
import { LruCache } from '../../common/cache/lru-cache';
import { SingleFlight } from '../../common/cache/single-flight';
import type { AuthContext } from '../../gateway/caller';
import { GatewayConfig } from '../../config/gateway-config';
import { IpAllowlistCache } from '../ip-restriction/ip-allowlist.cache';
import { mergeLimits } from '../../tenants/effective-limits';
import type { TenantStatus } from '../../tenants/tenant.entity';
import { DEFAULT_JWT_SCOPES } from './jwt-scopes';
import { JwtTenantRecord, JwtTenantRepository } from './jwt-tenant.repository';

export type TenantResolution =
  | { ok: true; auth: AuthContext }
  | { ok: false; reason: 'jwt_unknown_tenant' | 'jwt_suspended' };

interface TenantEntry {
  status: TenantStatus;
  planId: string;
  base: Omit<AuthContext, 'scopes' | 'via'>;
  /** One frozen context per distinct grant (at most one per subset of the gateway's scopes). */
  contexts: Map<string, AuthContext>;
}

/**
 * The tenant behind a verified token, as the same AuthContext the API-key path builds (`via:
 * 'jwt'`, no keyId): the plan's limits with the tenant's overrides, allowed sources, unsigned-URL
 * switch. Cached in process like keys (docs/tenants-and-keys.md): bounded LRU with the key cache's
 * size and TTL, unknown tenant ids in a cache of their own, entries dropped on every instance by
 * the tenant/plan invalidation events, one PostgreSQL lookup for concurrent misses. A miss needs
 * a correctly signed token first, so unlike an API key it is not charged to a pre-auth bucket.
 */
@Injectable()
export class JwtTenantResolver {
  private readonly tenants: LruCache<string, TenantEntry>;
  private readonly unknown: LruCache<string, true>;
  private readonly flight = new SingleFlight<string, TenantEntry | undefined>();

  constructor(
    private readonly repository: JwtTenantRepository,
    private readonly invalidation: AuthInvalidationService,
    private readonly allowlists: IpAllowlistCache,
    config: GatewayConfig,
  ) {
    const { keyCacheMaxEntries, keyCacheTtlSeconds } = config.security;
    this.tenants = new LruCache(keyCacheMaxEntries, keyCacheTtlSeconds * 1000);
    this.unknown = new LruCache(keyCacheMaxEntries, keyCacheTtlSeconds * 1000);
    invalidation.onInvalidate((event) => this.drop(event));
  }

  /**
   * The caller's context, or why it is refused: an unknown tenant (401 to the client) or a
   * suspended one (403). `scopes` must be sorted and frozen (scopesFromClaims). Synchronous when
   * the tenant is cached.
   */
  resolve(tenantId: string, scopes: readonly string[] = DEFAULT_JWT_SCOPES): TenantResolution | Promise<TenantResolution> {
    const cached = this.tenants.get(tenantId);
    if (cached) return this.decide(cached, scopes);
    if (this.unknown.get(tenantId)) return UNKNOWN;
    return this.flight.run(tenantId, () => this.load(tenantId)).then((entry) => (entry ? this.decide(entry, scopes) : UNKNOWN));
  }

  /** Counters for tests and diagnostics. */
  stats(): { databaseLookups: number; cachedTenants: number; cachedUnknownTenants: number } {
    return { databaseLookups: this.repository.lookupCount, cachedTenants: this.tenants.size, cachedUnknownTenants: this.unknown.size };
  }

  private decide(entry: TenantEntry, scopes: readonly string[]): TenantResolution {
    if (entry.status !== 'active') return SUSPENDED;
    const key = scopes.join(' ');
    let auth = entry.contexts.get(key);
    if (!auth) {
      auth = Object.freeze({ ...entry.base, scopes: Object.isFrozen(scopes) ? scopes : Object.freeze([...scopes]), via: 'jwt' as const });
      entry.contexts.set(key, auth);
    }
    return { ok: true, auth };
  }

  private async load(tenantId: string): Promise<TenantEntry | undefined> {
    const epoch = this.invalidation.epoch;
    const record = await this.repository.findAuthRecord(tenantId);
    // A lookup that raced an invalidation may have read the old row: answer with it, cache nothing.
    const cacheable = epoch === this.invalidation.epoch;
    if (!record) {
      if (cacheable) this.unknown.set(tenantId, true);
      return undefined;
    }
    const entry = toEntry(record);
    this.allowlists.prime(record.tenantId, record.allowlist, epoch);
    if (cacheable) this.tenants.set(tenantId, entry);
    return entry;
  }

  private drop(event: AuthInvalidation): void {
    switch (event.kind) {
      case 'key':
        return;
      case 'tenant':
        this.tenants.delete(event.id);
        this.unknown.delete(event.id);
        this.flight.forget(event.id);
        return;
      case 'plan':
        this.tenants.deleteWhere((entry) => entry.planId === event.id);
        break;
      case 'all':
        this.tenants.clear();
        this.unknown.clear();
        break;
    }
    this.flight.forget();
  }
}

const UNKNOWN: TenantResolution = Object.freeze({ ok: false, reason: 'jwt_unknown_tenant' });
const SUSPENDED: TenantResolution = Object.freeze({ ok: false, reason: 'jwt_suspended' });

function toEntry(record: JwtTenantRecord): TenantEntry {
  return {
    status: record.tenantStatus,
    planId: record.planId,
    base: {
      tenantId: record.tenantId,
      tenantName: record.tenantName,
      limits: Object.freeze(mergeLimits(record.plan, record.rateLimits, record.quotas)),
      allowedSources: Object.freeze([...record.allowedSources]),
      allowUnsignedUrls: record.allowUnsignedUrls,
    },
    contexts: new Map(),
  };
}
