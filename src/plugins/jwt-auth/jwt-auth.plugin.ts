import { Inject, Injectable, OnModuleInit, Optional } from '@nestjs/common';
import { GatewayException } from '../../common/errors/gateway.exception';
import type { GatewayContext } from '../../gateway/context';
import { GatewayService } from '../../gateway/gateway.service';
import { ChainPlugin, type CompiledSteps, type GatewayPlugin, PRIORITY, type StepOutcome } from '../../gateway/plugin';
import type { RouteSpec } from '../../gateway/route-spec';
import { GatewayMetrics } from '../../metrics/gateway-metrics.service';
import { PRE_AUTH_LIMITER, type PreAuthLimiter } from '../../gateway/pre-auth-limiter';
import { type JwtCheck, JwtAuthService } from './jwt-auth.service';

/**
 * `auth: jwt`: a bearer JWT verified by JwtAuthService, synchronously when the token and its
 * tenant are cached. The caller then is its tenant exactly as an API-key caller is: the same
 * allowlist, rate limits and quota follow. A refused token is charged to the client IP's bucket
 * first, as any failed credential is, so guessing costs the guesser.
 */
@Injectable()
@ChainPlugin()
export class JwtAuthPlugin implements GatewayPlugin, OnModuleInit {
  readonly name = 'jwt-auth';
  readonly priority = PRIORITY.jwtAuth;

  constructor(
    private readonly gateway: GatewayService,
    private readonly jwt: JwtAuthService,
    private readonly metrics: GatewayMetrics,
    @Optional() @Inject(PRE_AUTH_LIMITER) private readonly limiter?: PreAuthLimiter,
  ) {}

  onModuleInit(): void {
    // A reload that changes auth.jwt gets a fresh verifier (keys, caches) before its routes go live.
    let current = JSON.stringify(this.gateway.configuredJwt());
    this.gateway.onReload((next) => {
      const wanted = JSON.stringify(next.auth.jwt ?? null);
      if (wanted === current) return;
      current = wanted;
      this.jwt.reconfigure(next.auth.jwt);
    });
  }

  compile(route: RouteSpec): CompiledSteps | undefined {
    if (route.auth !== 'jwt') return undefined;
    const scopes = route.scopes;
    const decide = (ctx: GatewayContext, outcome: JwtCheck): StepOutcome | Promise<StepOutcome> => {
      if (!outcome.ok) return this.refuse(ctx, this.jwt.refusal(outcome.reason));
      for (const scope of scopes) {
        if (!outcome.auth.scopes.includes(scope)) {
          this.metrics.authFailed('scope');
          return new GatewayException('forbidden', `This token lacks the scope ${scope}.`, { requiredScope: scope });
        }
      }
      ctx.auth = outcome.auth;
      return undefined;
    };
    return {
      access: (ctx: GatewayContext) => {
        const outcome = this.jwt.check(ctx.req!.headers.authorization);
        return outcome instanceof Promise ? outcome.then((settled) => decide(ctx, settled)) : decide(ctx, outcome);
      },
    };
  }

  /** A 401 costs the client IP a token of its bucket (429 instead once it is empty). */
  private refuse(ctx: GatewayContext, refusal: GatewayException): GatewayException | Promise<GatewayException> {
    if (refusal.code !== 'unauthorized' || !this.limiter || ctx.ipLimited) return refusal;
    return this.limiter.beforeKeyLookup(ctx).then(
      () => refusal,
      (limited: unknown) => (limited instanceof GatewayException ? limited : refusal),
    );
  }
}
