import { NestFactory } from '@nestjs/core';
import type { DynamicModule, Type } from '@nestjs/common';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { AppModule } from '../app.module';
import { AllExceptionsFilter } from './all-exceptions.filter';
import { setupSwagger } from './swagger';
import { createValidationPipe } from './validation-pipe';
import { createFastifyAdapter, installRequestHooks } from './fastify-setup';
import type { ConfigSource } from '../config/config.loader';
import { GatewayConfig } from '../config/gateway-config';
import { GatewayMetrics } from '../metrics/gateway-metrics.service';
import { GatewayLogger } from '../logging/gateway-logger';

export interface GatewayAppOptions {
  /** Where the configuration came from, so SIGHUP and file changes can reload routes and upstreams. */
  source?: ConfigSource;
  /** A root module to start instead (a test adding a route beside `AppModule.forRoot(config)`). */
  rootModule?: DynamicModule | Type;
}

/**
 * Builds a configured gateway without listening: main.ts, the demo and the end-to-end tests
 * all start the very same application.
 */
export async function createGatewayApp(config: GatewayConfig, options: GatewayAppOptions = {}): Promise<NestFastifyApplication> {
  const rootModule = options.rootModule ?? AppModule.forRoot(config, options.source);
  const adapter = createFastifyAdapter(config);
  installRequestHooks(adapter.getInstance(), config);
  const app = await NestFactory.create<NestFastifyApplication>(rootModule, adapter, {
    bufferLogs: true,
    abortOnError: false,
  });
  app.useLogger(app.get(GatewayLogger));
  // Lines buffered while the modules were built, now; later ones as they happen, in order.
  app.flushLogs();
  app.useGlobalPipes(createValidationPipe());
  // One filter shapes every error the Nest side answers (the chain writes its own refusals).
  app.useGlobalFilters(new AllExceptionsFilter(app.get(GatewayMetrics)));
  setupSwagger(app);
  return app;
}
