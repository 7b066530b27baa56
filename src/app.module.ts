import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { ScheduleModule } from '@nestjs/schedule';
import { LoggerModule } from 'nestjs-pino';
import { AuditModule } from './audit/audit.module';
import { AllExceptionsFilter } from './common/errors/all-exceptions.filter';
import { ConfigModule } from './config/config.module';
import { GatewayConfig } from './config/gateway-config';
import { DatabaseModule } from './database/database.module';
import { HealthModule } from './health/health.module';
import { loggingOptions } from './logging/logging.options';
import { MetricsModule } from './metrics/metrics.module';
import { RedisModule } from './redis/redis.module';

/** Capability and infrastructure modules only; each owns its controllers, guards and storage. */
@Module({})
export class AppModule {
  static forRoot(config: GatewayConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        LoggerModule.forRoot(loggingOptions(config)),
        ScheduleModule.forRoot(),
        DatabaseModule,
        RedisModule,
        MetricsModule,
        AuditModule,
        HealthModule,
      ],
      providers: [{ provide: APP_FILTER, useClass: AllExceptionsFilter }],
    };
  }
}
