import { Module } from '@nestjs/common';
import { AuthModule } from '../key-auth/auth.module';
import { TenantsModule } from '../../tenants/tenants.module';
import { CachePurgeAdminController } from './cache-purge-admin.controller';
import { CachePurgeController } from './cache-purge.controller';
import { CachePurgeRequests } from './cache-purge.requests';
import { CachePurgeService } from './cache-purge.service';
import { ProxyCache } from './proxy-cache';
import { ProxyCachePlugin } from './proxy-cache.plugin';

/**
 * The response cache (docs/cache.md): ProxyCachePlugin is its step in the route chains, over
 * ProxyCache (the tiers, coalescing); CachePurgeService purges on every instance (uploads use it
 * when an image is deleted).
 */
@Module({
  imports: [AuthModule, TenantsModule],
  controllers: [CachePurgeController, CachePurgeAdminController],
  providers: [ProxyCache, ProxyCachePlugin, CachePurgeService, CachePurgeRequests],
  exports: [ProxyCache, CachePurgeService],
})
export class ProxyCacheModule {}
