import { CanActivate, ExecutionContext, Injectable, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { GatewayException } from '../../common/errors/gateway.exception';
import { refusals } from '../../common/errors/refusals';
import { addEarlyCheck } from '../../gateway/early-checks';
import { CidrMatcher } from '../../common/net/cidr';
import { GatewayConfig } from '../../config/gateway-config';
import { GatewayMetrics } from '../../metrics/gateway-metrics.service';

/**
 * The global deny list of `security.ipDenyList` (docs/tenants-and-keys.md). Enforced in the
 * first request hook (an early check of src/bootstrap/fastify-setup.ts), so it covers every
 * route, matched or not (`/docs`, `/docs-json`, unknown paths), and every WebSocket upgrade,
 * before any guard, key lookup or body parsing. With an empty list nothing is installed. `canActivate` is the same decision for a
 * Nest route that wants it as a guard.
 */
@Injectable()
export class IpDenyListGuard implements CanActivate, OnModuleInit {
  private readonly denied: CidrMatcher;

  constructor(
    config: GatewayConfig,
    private readonly metrics: GatewayMetrics,
    private readonly adapterHost: HttpAdapterHost,
  ) {
    this.denied = new CidrMatcher(config.security.ipDenyList);
  }

  onModuleInit(): void {
    if (this.denied.size === 0) return;
    const fastify = this.adapterHost.httpAdapter?.getInstance<FastifyInstance>();
    if (fastify) addEarlyCheck(fastify, (ctx) => this.refusalFor(ctx.clientIp));
  }

  /** The 403 for a denied client address (counted), or undefined. */
  refusalFor(clientIp: string): GatewayException | undefined {
    if (this.denied.size === 0 || !this.denied.matches(clientIp)) return undefined;
    this.metrics.ipDenied('deny_list');
    return refusals.ipNotAllowed();
  }

  canActivate(context: ExecutionContext): boolean {
    const refusal = this.refusalFor(context.switchToHttp().getRequest<FastifyRequest>().gw?.clientIp ?? '');
    if (refusal) throw refusal;
    return true;
  }
}
