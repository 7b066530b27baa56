import { DynamicModule, Global, Module } from '@nestjs/common';
import type { ConfigSource } from './config.loader';
import { GatewayConfig } from './gateway-config';

/** Token of the ConfigSource a reload reads again; absent when the configuration was built by hand. */
export const CONFIG_SOURCE = Symbol('CONFIG_SOURCE');

/** Hands the validated configuration to every module; the class itself is the token. */
@Global()
@Module({})
export class ConfigModule {
  static forRoot(config: GatewayConfig, source?: ConfigSource): DynamicModule {
    return {
      module: ConfigModule,
      providers: [
        { provide: GatewayConfig, useValue: config },
        { provide: CONFIG_SOURCE, useValue: source ?? null },
      ],
      exports: [GatewayConfig, CONFIG_SOURCE],
    };
  }
}
