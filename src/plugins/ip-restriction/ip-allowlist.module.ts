import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuthInvalidationModule } from '../../change-bus/auth-invalidation.module';
import { TenantsModule } from '../../tenants/tenants.module';
import { IpAllowlistCache } from './ip-allowlist.cache';
import { IpAllowlistController } from './ip-allowlist.controller';
import { IpAllowlistEntryEntity } from './ip-allowlist.entity';
import { IpAllowlistGuard } from './ip-allowlist.guard';
import { IpAllowlistRepository } from './ip-allowlist.repository';
import { IpAllowlistService } from './ip-allowlist.service';
import { IpDenyListGuard } from './ip-deny-list.guard';
import { IpRestrictionPlugin } from './ip-restriction.plugin';

@Module({
  imports: [TypeOrmModule.forFeature([IpAllowlistEntryEntity]), TenantsModule, AuthInvalidationModule],
  controllers: [IpAllowlistController],
  providers: [
    IpRestrictionPlugin,
    IpAllowlistRepository,
    IpAllowlistService,
    IpAllowlistCache,
    IpAllowlistGuard,
    // Installs the deny list into the first request hook of every route (docs/tenants-and-keys.md).
    IpDenyListGuard,
  ],
  exports: [IpAllowlistCache, IpAllowlistGuard, IpDenyListGuard],
})
export class IpAllowlistModule {}
