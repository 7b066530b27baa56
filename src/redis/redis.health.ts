import { Injectable } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { GatewayConfig } from '../config/gateway-config';
import { RedisService } from './redis.service';

@Injectable()
export class RedisHealthIndicator {
  constructor(
    private readonly redis: RedisService,
    private readonly health: HealthIndicatorService,
    private readonly config: GatewayConfig,
  ) {}

  /** Down only when Redis is configured and does not answer; in-process mode is up by design. */
  async isHealthy(key = 'redis'): Promise<HealthIndicatorResult> {
    const indicator = this.health.check(key);
    if (!this.redis.enabled) return indicator.up({ mode: 'in-process' });
    try {
      const latencyMs = await this.redis.ping();
      return indicator.up({ mode: 'redis', latencyMs: Math.round(latencyMs * 100) / 100 });
    } catch (error) {
      return indicator.down({ mode: 'redis', message: (error as Error).message });
    }
  }

  /**
   * Readiness: an instance whose Redis is down still serves under the `local` and `allow`
   * store-failure policies, so it stays ready (marked degraded); under `deny` it would refuse
   * every request, so the load balancer should send traffic elsewhere.
   */
  async isReady(key = 'redis'): Promise<HealthIndicatorResult> {
    const result = await this.isHealthy(key);
    if (result[key].status === 'up' || this.config.rateLimit.onStoreFailure === 'deny') return result;
    const { status: _down, ...details } = result[key];
    return this.health.check(key).up({ ...details, degraded: true, policy: this.config.rateLimit.onStoreFailure });
  }
}
