import { DynamicModule, Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { AdminModule } from './admin/admin.module';
import { AuditModule } from './audit/audit.module';
import { BackendsModule } from './upstreams/backends/backends.module';
import { AuthModule } from './plugins/key-auth/auth.module';
import type { ConfigSource } from './config/config.loader';
import { ConfigModule } from './config/config.module';
import { GatewayConfig } from './config/gateway-config';
import { GatewayModule } from './gateway/gateway.module';
import { DatabaseModule } from './database/database.module';
import { HealthModule } from './health/health.module';
import { IpAllowlistModule } from './plugins/ip-restriction/ip-allowlist.module';
import { LoggingModule } from './logging/logging.module';
import { MetricsModule } from './metrics/metrics.module';
import { PlansModule } from './plans/plans.module';
import { CorsModule } from './plugins/cors/cors.module';
import { JwtAuthModule } from './plugins/jwt-auth/jwt-auth.module';
import { SignedUrlModule } from './plugins/signed-url/signed-url.module';
import { TransformModule } from './plugins/transform/transform.module';
import { ProxyCacheModule } from './plugins/proxy-cache/proxy-cache.module';
import { ProxyModule } from './proxy/proxy.module';
import { QuotasModule } from './plugins/quota/quotas.module';
import { RateLimitModule } from './plugins/rate-limiting/rate-limit.module';
import { RedisModule } from './redis/redis.module';
import { RequestLogsModule } from './request-logs/request-logs.module';
import { TenantsModule } from './tenants/tenants.module';
import { TracingModule } from './tracing/tracing.module';
import { UploadsModule } from './uploads/uploads.module';
import { UsageModule } from './usage/usage.module';

/** Capability and infrastructure modules only; each owns its controllers, guards and storage. */
@Module({})
export class AppModule {
  static forRoot(config: GatewayConfig, source?: ConfigSource): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config, source),
        LoggingModule.forRoot(config),
        ScheduleModule.forRoot(),
        DatabaseModule,
        RedisModule,
        MetricsModule,
        TracingModule,
        RequestLogsModule,
        AuditModule,
        // Admin token check before any admin body is read (a request hook), shared with the guards.
        AdminModule,
        // Rate limits and usage counters are global: the auth guard, proxy and uploads use them.
        RateLimitModule,
        UsageModule,
        // IpAllowlistModule also puts the global deny list into the first request hook.
        IpAllowlistModule,
        PlansModule,
        TenantsModule,
        AuthModule,
        QuotasModule,
        HealthModule,
        BackendsModule,
        ProxyModule,
        ProxyCacheModule,
        UploadsModule,
        // The route table and the steps of its chains (plugins are found by their @ChainPlugin() marker).
        GatewayModule,
        CorsModule,
        JwtAuthModule.forRoot(config.auth.jwt),
        SignedUrlModule,
        TransformModule,
      ],
    };
  }
}
