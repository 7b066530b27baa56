import { DynamicModule, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuthInvalidationModule } from '../../change-bus/auth-invalidation.module';
import { IpAllowlistModule } from '../ip-restriction/ip-allowlist.module';
import { TenantEntity } from '../../tenants/tenant.entity';
import type { JwtAuthConfig } from '../../config/jwt-auth.config';
import { JwtAuthGuard } from './jwt-auth.guard';
import { JwtAuthPlugin } from './jwt-auth.plugin';
import { JWT_AUTH_CONFIG, JwtAuthService } from './jwt-auth.service';
import { JwtTenantRepository } from './jwt-tenant.repository';
import { JwtTenantResolver } from './jwt-tenant.resolver';

/**
 * Bearer-JWT authentication (docs/routes.md "JWT"). `forRoot` takes the validated `auth.jwt`
 * section; JwtAuthService is what the route chain calls, JwtAuthGuard its face on Nest routes.
 * Needs the global GatewayConfig and GatewayMetrics.
 */
@Module({})
export class JwtAuthModule {
  static forRoot(config: JwtAuthConfig | undefined): DynamicModule {
    return {
      module: JwtAuthModule,
      // Global: JwtAuthGuard is a guard any Nest route may use, like ApiKeyGuard.
      global: true,
      imports: [TypeOrmModule.forFeature([TenantEntity]), AuthInvalidationModule, IpAllowlistModule],
      providers: [{ provide: JWT_AUTH_CONFIG, useValue: config }, JwtTenantRepository, JwtTenantResolver, JwtAuthService, JwtAuthGuard, JwtAuthPlugin],
      exports: [JwtAuthService, JwtAuthGuard, JwtTenantResolver],
    };
  }
}
