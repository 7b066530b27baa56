import cluster from 'node:cluster';
import { createHash, timingSafeEqual } from 'node:crypto';
import { Controller, Get, Headers, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { SkipThrottle } from '@nestjs/throttler';
import { PrometheusController } from '@willsoto/nestjs-prometheus';
import type { FastifyReply } from 'fastify';
import { register } from 'prom-client';
import { GatewayConfig } from '../config/gateway-config';
import { GatewayException } from '../common/errors/gateway.exception';
import { refusals } from '../common/errors/refusals';
import { mergedMetrics } from './cluster-metrics';

/**
 * Prometheus scrape endpoint; optionally behind `metrics.token`, never rate limited. In a worker of
 * WORKERS > 1 it answers with every worker's metrics merged by the primary (cluster-metrics.ts).
 */
@ApiExcludeController()
@SkipThrottle()
@Controller()
export class MetricsController extends PrometheusController {
  private readonly expected?: Buffer;

  constructor(config: GatewayConfig) {
    super();
    if (config.metrics.token) this.expected = digest(config.metrics.token);
  }

  @Get()
  override async index(@Res({ passthrough: true }) response: FastifyReply, @Headers('authorization') authorization?: string) {
    if (this.expected) {
      const token = /^Bearer\s+(.+)$/i.exec(authorization ?? '')?.[1] ?? '';
      if (!timingSafeEqual(digest(token), this.expected)) throw new GatewayException('unauthorized', 'A valid metrics token is required.');
    }
    if (!cluster.isWorker) return super.index(response);
    response.header('Content-Type', register.contentType);
    return mergedMetrics().catch((error: Error) => {
      throw refusals.unavailable(1, `The merged metrics are not available: ${error.message}`);
    });
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
