import { CanActivate, ExecutionContext, Inject, Injectable, Optional } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import type { AuthContext } from '../../gateway/caller';
import type { AuthenticationRequest } from '../../gateway/context';
import { PRE_AUTH_LIMITER, PreAuthLimiter, chargingRefusals } from '../../gateway/pre-auth-limiter';
import { ApiKeyService } from './api-key.service';
import { REQUIRED_SCOPES } from './require-scope.decorator';

/**
 * Authenticates the API key (X-API-Key or Authorization: Bearer) and sets `request.gw.auth`;
 * then checks the scopes of `@RequireScope(...)` on the handler or controller. Put
 * IpAllowlistGuard after it.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    private readonly keys: ApiKeyService,
    private readonly reflector: Reflector,
    @Optional() @Inject(PRE_AUTH_LIMITER) private readonly limiter?: PreAuthLimiter,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const required = this.reflector.getAllAndOverride<string[] | undefined>(REQUIRED_SCOPES, [context.getHandler(), context.getClass()]);
    await this.authenticate(request, required ?? []);
    return true;
  }

  /**
   * The guard's logic without Nest's execution context, for the compiled chain: authenticates
   * (refusals charged to the client IP's bucket), sets `request.gw.auth`, checks `scopes`.
   */
  authenticate(request: AuthenticationRequest, scopes: readonly string[]): AuthContext | Promise<AuthContext> {
    const auth = chargingRefusals(this.limiter, request, () => this.keys.authenticate(request));
    return auth instanceof Promise ? auth.then((settled) => this.withScopes(settled, scopes)) : this.withScopes(auth, scopes);
  }

  private withScopes(auth: AuthContext, scopes: readonly string[]): AuthContext {
    if (scopes.length > 0) this.keys.assertScopes(auth, scopes);
    return auth;
  }
}
