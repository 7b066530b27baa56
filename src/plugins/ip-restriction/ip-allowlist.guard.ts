import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { GatewayException, TENANT_AUTH_CHALLENGE } from '../../common/errors/gateway.exception';
import { CidrMatcher } from '../../common/net/cidr';
import { IpAllowlistCache } from './ip-allowlist.cache';
import { GatewayMetrics } from '../../metrics/gateway-metrics.service';

/**
 * docs/tenants-and-keys.md: the tenant's allowlist, checked after authentication (it needs the tenant) against
 * the client address the first hook resolved (trusted proxies only). Empty list = allow all.
 * Use it after ApiKeyGuard (or any guard that sets `request.gw.auth`).
 */
@Injectable()
export class IpAllowlistGuard implements CanActivate {
  constructor(
    private readonly cache: IpAllowlistCache,
    private readonly metrics: GatewayMetrics,
  ) {}

  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const auth = request.gw?.auth;
    // Misordered guards must fail closed, never skip the check.
    if (!auth) throw new GatewayException('unauthorized', undefined, {}, { 'www-authenticate': TENANT_AUTH_CHALLENGE });
    return this.admit(auth.tenantId, request.gw.clientIp);
  }

  /**
   * The guard's logic without Nest's execution context, for the compiled chain: true at once for a
   * cached allowlist (the usual case), a promise on a cold tenant; 403 ip_not_allowed otherwise.
   */
  admit(tenantId: string, clientIp: string): true | Promise<true> {
    const matcher = this.cache.peek(tenantId);
    if (matcher) return this.check(matcher, clientIp);
    return this.cache.load(tenantId).then((loaded) => this.check(loaded, clientIp));
  }

  private check(matcher: CidrMatcher, clientIp: string): true {
    if (matcher.size === 0 || matcher.matches(clientIp)) return true;
    this.metrics.ipDenied('allowlist');
    throw new GatewayException('ip_not_allowed');
  }
}
