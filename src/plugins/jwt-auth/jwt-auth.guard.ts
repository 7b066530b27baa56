import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { REQUIRED_SCOPES } from '../key-auth/require-scope.decorator';
import { GatewayException } from '../../common/errors/gateway.exception';
import { GatewayMetrics } from '../../metrics/gateway-metrics.service';
import { JwtAuthService } from './jwt-auth.service';

/**
 * The Nest face of JwtAuthService, for Nest routes: authenticates `Authorization: Bearer <jwt>`,
 * sets `request.gw.auth`, then checks the scopes of `@RequireScope(...)` (403 `forbidden`).
 * Proxied routes call JwtAuthService.check directly.
 */
@Injectable()
export class JwtAuthGuard implements CanActivate {
  constructor(
    private readonly jwt: JwtAuthService,
    private readonly reflector: Reflector,
    private readonly metrics: GatewayMetrics,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const { auth } = await this.jwt.authenticate(request.headers.authorization);
    request.gw.auth = auth;
    const required = this.reflector.getAllAndOverride<string[] | undefined>(REQUIRED_SCOPES, [context.getHandler(), context.getClass()]);
    for (const scope of required ?? []) {
      if (!auth.scopes.includes(scope)) {
        this.metrics.authFailed('scope');
        throw new GatewayException('forbidden', `This token lacks the scope ${scope}.`, { requiredScope: scope });
      }
    }
    return true;
  }
}
