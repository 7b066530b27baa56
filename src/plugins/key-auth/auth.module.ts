import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { IpAllowlistModule } from '../ip-restriction/ip-allowlist.module';
import { TenantsModule } from '../../tenants/tenants.module';
import { ApiKeyAdminService } from './api-key-admin.service';
import { ApiKeyEntity } from './api-key.entity';
import { ApiKeyGuard } from './api-key.guard';
import { ApiKeyService } from './api-key.service';
import { ApiKeysController } from './api-keys.controller';
import { ApiKeysRepository } from './api-keys.repository';
import { AuthInvalidationModule } from '../../change-bus/auth-invalidation.module';
import { LastUsedRecorder } from './last-used.recorder';
import { KeyAuthPlugin } from './key-auth.plugin';
import { MeController } from './me.controller';

/**
 * API keys: admin management and the request-path authentication. Importing this module
 * gives ApiKeyGuard and, re-exported, IpAllowlistGuard with what they need.
 */
@Module({
  imports: [TypeOrmModule.forFeature([ApiKeyEntity]), TenantsModule, IpAllowlistModule, AuthInvalidationModule],
  controllers: [ApiKeysController, MeController],
  providers: [ApiKeysRepository, ApiKeyService, ApiKeyAdminService, ApiKeyGuard, LastUsedRecorder, KeyAuthPlugin],
  exports: [ApiKeyService, ApiKeyGuard, IpAllowlistModule, AuthInvalidationModule],
})
export class AuthModule {}
