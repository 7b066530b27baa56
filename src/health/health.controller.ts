import { Controller, Get, Req } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService, TypeOrmHealthIndicator } from '@nestjs/terminus';
import { SkipThrottle } from '@nestjs/throttler';
import type { FastifyRequest } from 'fastify';
import { BackendsHealthIndicator } from '../upstreams/backends/backends.health';
import { RedisHealthIndicator } from '../redis/redis.health';

/** Kubernetes and load-balancer probes (docs/proxy-and-backends.md): unauthenticated and never rate limited. */
@ApiTags('health')
@SkipThrottle()
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly db: TypeOrmHealthIndicator,
    private readonly redis: RedisHealthIndicator,
    private readonly backends: BackendsHealthIndicator,
  ) {}

  @Get('live')
  @ApiOperation({ summary: 'Liveness: the process answers; no dependency is checked.' })
  live() {
    return { status: 'ok' };
  }

  @Get('ready')
  @HealthCheck()
  @ApiOperation({ summary: 'Readiness: PostgreSQL and Redis (or its fallback policy) answer, and every configured backend pool has a healthy backend.' })
  ready() {
    return this.health.check([
      () => this.db.pingCheck('database', { timeout: 2_000 }),
      () => this.redis.isReady(),
      () => this.backends.isReady(),
    ]);
  }

  @Get()
  @HealthCheck()
  @ApiOperation({ summary: 'Summary of every dependency.' })
  summary() {
    return this.health.check([
      () => this.db.pingCheck('database', { timeout: 2_000 }),
      () => this.redis.isHealthy(),
      () => this.backends.isReady(),
    ]);
  }

  @Get('backends')
  @ApiOperation({ summary: 'Each backend: name, pool, health, last check, circuit state; URLs and errors only with the admin token.' })
  backendsReport(@Req() request: FastifyRequest) {
    return this.backends.report(request);
  }
}
