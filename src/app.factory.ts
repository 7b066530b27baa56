import { ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { DynamicModule, Type } from '@nestjs/common';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { Logger } from 'nestjs-pino';
import { AppModule } from './app.module';
import { createFastifyAdapter, installRequestHooks } from './common/http/fastify-setup';
import { GatewayConfig } from './config/gateway-config';

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
  app.useLogger(app.get(Logger));
  app.useGlobalPipes(
    new ValidationPipe({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: true,
      // Every problem at once, as "field: problem" strings (the details of validation_failed).
      stopAtFirstError: false,
    }),
  );
  setupSwagger(app);
  return app;
}

function setupSwagger(app: NestFastifyApplication): void {
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('imgproxy-gateway')
      .setDescription(
        'Multi-tenant gateway in front of imgproxy. Admin endpoints take `Authorization: Bearer <ADMIN_TOKEN>`; ' +
          'tenant endpoints take an API key (`X-API-Key` or `Authorization: Bearer igw_...`). ' +
          'Every error is `{"error":{"code","message","requestId",...}}`.',
      )
      .setVersion('1')
      .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN' }, 'admin')
      .addApiKey({ type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'Tenant API key igw_<keyId>_<secret>' }, 'apiKey')
      .build(),
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json', yamlDocumentUrl: 'docs-yaml' });
}
