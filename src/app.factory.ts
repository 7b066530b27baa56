import { NestFactory } from '@nestjs/core';
import type { DynamicModule, Type } from '@nestjs/common';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { AppModule } from './app.module';
import { setupSwagger } from './bootstrap/swagger';
import { createValidationPipe } from './bootstrap/validation-pipe';
import { createFastifyAdapter, installRequestHooks } from './common/http/fastify-setup';
import { GatewayConfig } from './config/gateway-config';
import { GatewayLogger } from './logging/gateway-logger';

/**
 * Builds a configured gateway without listening: main.ts, the demo and the end-to-end tests
 * all start the very same application. `rootModule` lets the benchmark add a route next to it
 * (a module that imports `AppModule.forRoot(config)`).
 */
export async function createGatewayApp(config: GatewayConfig, rootModule: DynamicModule | Type = AppModule.forRoot(config)): Promise<NestFastifyApplication> {
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
  setupSwagger(app);
  return app;
}
