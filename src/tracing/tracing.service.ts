import { Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { GatewayConfig } from '../config/gateway-config';
import { FinishedRequest, RequestLifecycleListener, RequestObserver } from '../gateway/request-observer';
import type { OtelTracer } from './otel-tracer';

/**
 * OpenTelemetry export (docs/observability.md). The W3C trace context itself is handled in the first hook
 * (request-id.ts) for every request; this service only adds span export, and only subscribes
 * to requests when `tracing.otlpEndpoint` is set, so with tracing off nothing is loaded and no
 * per-request work is done.
 */
@Injectable()
export class TracingService implements OnModuleInit, OnApplicationShutdown, RequestLifecycleListener {
  private readonly logger = new Logger('Tracing');
  private tracer?: OtelTracer;

  constructor(
    private readonly config: GatewayConfig,
    private readonly observer: RequestObserver,
  ) {}

  get enabled(): boolean {
    return this.tracer !== undefined;
  }

  onModuleInit(): void {
    const { otlpEndpoint, serviceName } = this.config.tracing;
    if (!otlpEndpoint) return;
    // require, not import(): the build is CommonJS, and this keeps the OpenTelemetry packages
    // out of the process entirely unless an endpoint is configured.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { OtelTracer } = require('./otel-tracer') as typeof import('./otel-tracer');
    this.tracer = new OtelTracer({ endpoint: otlpEndpoint, serviceName, serviceVersion: process.env.npm_package_version });
    this.observer.subscribe(this);
    this.logger.log(`exporting spans over OTLP/HTTP to ${new URL(otlpEndpoint).origin}`);
  }

  requestStarted(request: FastifyRequest): void {
    this.tracer?.start(request);
  }

  requestFinished(finished: FinishedRequest): void {
    this.tracer?.end(finished);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.tracer?.shutdown();
  }
}
