import { Controller, Get } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService, TypeOrmHealthIndicator } from '@nestjs/terminus';
import { SkipThrottle } from '@nestjs/throttler';
import { RedisHealthIndicator } from '../redis/redis.health';

/** Kubernetes and load-balancer probes (SPEC §13): unauthenticated and never rate limited. */
@ApiTags('health')
@SkipThrottle()
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly db: TypeOrmHealthIndicator,
    private readonly redis: RedisHealthIndicator,
  ) {}

  @Get('live')
  @ApiOperation({ summary: 'Liveness: the process answers; no dependency is checked.' })
  live() {
    return { status: 'ok' };
  }

  @Get('ready')
  @HealthCheck()
  @ApiOperation({ summary: 'Readiness: PostgreSQL and Redis (or its fallback policy) answer.' })
  ready() {
    return this.health.check([() => this.db.pingCheck('database', { timeout: 2_000 }), () => this.redis.isReady()]);
  }

  @Get()
  @HealthCheck()
  @ApiOperation({ summary: 'Summary of every dependency.' })
  summary() {
    return this.health.check([() => this.db.pingCheck('database', { timeout: 2_000 }), () => this.redis.isHealthy()]);
  }
}
