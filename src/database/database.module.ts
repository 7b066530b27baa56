import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { GatewayConfig } from '../config/gateway-config';

/**
 * TypeORM over pg. Entities are registered by the modules that own them (forFeature); the
 * schema comes from the SQL migrations, never from synchronize.
 */
@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [GatewayConfig],
      useFactory: (config: GatewayConfig) => ({
        type: 'postgres' as const,
        url: config.database.url,
        autoLoadEntities: true,
        synchronize: false,
        migrationsRun: false,
        installExtensions: false,
        poolSize: config.database.poolSize,
        extra: { statement_timeout: config.database.statementTimeoutMs, connectionTimeoutMillis: 5_000 },
        retryAttempts: 3,
        retryDelay: 1_000,
      }),
    }),
  ],
})
export class DatabaseModule {}
