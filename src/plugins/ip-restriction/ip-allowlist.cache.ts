import { Injectable } from '@nestjs/common';
import { AuthInvalidationService } from '../../change-bus/auth-invalidation.service';
import { LruCache } from '../../common/cache/lru-cache';
import { CidrMatcher } from '../../common/net/cidr';
import { GatewayConfig } from '../../config/gateway-config';
import { IpAllowlistRepository } from './ip-allowlist.repository';

/**
 * Compiled allowlists by tenant, so the request path never parses a CIDR or asks PostgreSQL.
 * The key lookup primes it (its one query carries the tenant's ranges); it is invalidated
 * with the tenant, over the same channel, and expires on the same TTL as the key cache.
 */
@Injectable()
export class IpAllowlistCache {
  private readonly matchers: LruCache<string, CidrMatcher>;

  constructor(
    private readonly repository: IpAllowlistRepository,
    private readonly invalidation: AuthInvalidationService,
    config: GatewayConfig,
  ) {
    this.matchers = new LruCache(config.security.keyCacheMaxEntries, config.security.keyCacheTtlSeconds * 1000);
    invalidation.onInvalidate((event) => {
      if (event.kind === 'tenant') this.matchers.delete(event.id);
      else if (event.kind === 'all') this.matchers.clear();
    });
  }

  peek(tenantId: string): CidrMatcher | undefined {
    return this.matchers.get(tenantId);
  }

  /** Caches unless an invalidation happened since `epoch` (the ranges may predate it). */
  prime(tenantId: string, cidrs: readonly string[], epoch: number): CidrMatcher {
    const matcher = new CidrMatcher(cidrs);
    if (epoch === this.invalidation.epoch) this.matchers.set(tenantId, matcher);
    return matcher;
  }

  /** Cold path: a tenant whose ranges were not primed by a key lookup (evicted, or a JWT caller). */
  async load(tenantId: string): Promise<CidrMatcher> {
    const epoch = this.invalidation.epoch;
    return this.prime(tenantId, await this.repository.cidrsOf(tenantId), epoch);
  }
}
