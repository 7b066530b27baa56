import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { ScheduleModule } from '@nestjs/schedule';
import { AuditModule } from './audit/audit.module';
import { BackendsModule } from './backends/backends.module';
import { AuthModule } from './auth/auth.module';
import { AllExceptionsFilter } from './common/errors/all-exceptions.filter';
import { ConfigModule } from './config/config.module';
import { GatewayConfig } from './config/gateway-config';
import { DatabaseModule } from './database/database.module';
import { HealthModule } from './health/health.module';
import { ImgproxyModule } from './imgproxy/imgproxy.module';
import { IpAllowlistModule } from './ip-allowlist/ip-allowlist.module';
import { LoggingModule } from './logging/logging.module';
import { MetricsModule } from './metrics/metrics.module';
import { PlansModule } from './plans/plans.module';
import { ProxyCacheModule } from './plugins/proxy-cache/proxy-cache.module';
import { ProxyModule } from './proxy/proxy.module';
import { QuotasModule } from './quotas/quotas.module';
import { RateLimitModule } from './rate-limit/rate-limit.module';
import { RedisModule } from './redis/redis.module';
import { RequestLogsModule } from './request-logs/request-logs.module';
import { TenantsModule } from './tenants/tenants.module';
import { TracingModule } from './tracing/tracing.module';
import { UploadsModule } from './uploads/uploads.module';
import { UsageModule } from './usage/usage.module';

/** Capability and infrastructure modules only; each owns its controllers, guards and storage. */
@Module({})
export class AppModule {
  static forRoot(config: GatewayConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        LoggingModule.forRoot(config),
        ScheduleModule.forRoot(),
        DatabaseModule,
        RedisModule,
        MetricsModule,
        TracingModule,
        RequestLogsModule,
        AuditModule,
        // Rate limits and usage counters are global: the auth guard, proxy and uploads use them.
        RateLimitModule,
        UsageModule,
        // Before every module with guarded routes: IpAllowlistModule installs the global deny-list guard.
        IpAllowlistModule,
        PlansModule,
        TenantsModule,
        AuthModule,
        QuotasModule,
        HealthModule,
        BackendsModule,
        ProxyModule,
        ImgproxyModule,
        ProxyCacheModule,
        UploadsModule,
      ],
      providers: [{ provide: APP_FILTER, useClass: AllExceptionsFilter }],
    };
  }
}
