import { DynamicModule, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuthInvalidationModule } from '../../auth/invalidation/auth-invalidation.module';
import { IpAllowlistModule } from '../../ip-allowlist/ip-allowlist.module';
import { TenantEntity } from '../../tenants/tenant.entity';
import type { JwtAuthConfig } from './jwt-auth.config';
import { JwtAuthGuard } from './jwt-auth.guard';
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
  static forRoot(config: JwtAuthConfig): DynamicModule {
    return {
      module: JwtAuthModule,
      imports: [TypeOrmModule.forFeature([TenantEntity]), AuthInvalidationModule, IpAllowlistModule],
      providers: [{ provide: JWT_AUTH_CONFIG, useValue: config }, JwtTenantRepository, JwtTenantResolver, JwtAuthService, JwtAuthGuard],
      exports: [JwtAuthService, JwtAuthGuard, JwtTenantResolver],
    };
  }
}
