import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { GatewayException } from '../common/errors/gateway.exception';
import { CidrMatcher } from '../common/net/cidr';
import { GatewayConfig } from '../config/gateway-config';
import { GatewayMetrics } from '../metrics/gateway-metrics.service';

/**
 * The global deny list of `security.ipDenyList` (docs/tenants-and-keys.md), before authentication. Installed
 * as a global guard by IpAllowlistModule, so it runs before every controller guard (the key
 * lookup included) on every route, and nothing has to remember to add it. With an empty
 * list it returns at once.
 */
@Injectable()
export class IpDenyListGuard implements CanActivate {
  private readonly denied: CidrMatcher;
  constructor(
    config: GatewayConfig,
    private readonly metrics: GatewayMetrics,
  ) {
    this.denied = new CidrMatcher(config.security.ipDenyList);
  }

  canActivate(context: ExecutionContext): boolean {
    if (this.denied.size === 0) return true;
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    if (!this.denied.matches(request.gw?.clientIp ?? '')) return true;
    this.metrics.ipDenied('deny_list');
    throw new GatewayException('ip_not_allowed');
  }
}
