import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { GatewayException, TENANT_AUTH_CHALLENGE } from '../../common/errors/gateway.exception';
import type { AuthContext } from '../../gateway/caller';
import { GatewayMetrics } from '../../metrics/gateway-metrics.service';
import type { JwtAuthConfig } from '../../config/jwt-auth.config';
import { JWT_REFUSAL_MESSAGE, JWT_SUSPENDED_MESSAGE, type JwtRefusalReason } from './jwt-refusal';
import { JwtTenantResolver, type TenantResolution } from './jwt-tenant.resolver';
import { JwtVerifier, type JwtVerification, type VerifiedJwt } from './jwt.verifier';

/** The validated `auth.jwt` section (JwtAuthModule.forRoot provides it). */
export const JWT_AUTH_CONFIG = Symbol('JWT_AUTH_CONFIG');

export interface JwtAuthentication {
  /** What later steps read, exactly as for an API-key caller (`via: 'jwt'`, no keyId). */
  auth: AuthContext;
  token: VerifiedJwt;
}

export type JwtCheck = ({ ok: true } & JwtAuthentication) | { ok: false; reason: JwtRefusalReason };

/**
 * Bearer-JWT authentication for routes with `auth: jwt` (docs/routes.md "JWT"): the token is
 * verified (JwtVerifier), then its tenant resolved (JwtTenantResolver). `check` is the hot-path
 * face: it returns a verdict instead of throwing, synchronously when both the token and the
 * tenant are cached. Every refusal is counted in gateway_auth_failures_total by reason, and
 * answered with one 401 whatever the reason (403 for a suspended tenant).
 */
@Injectable()
export class JwtAuthService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(JwtAuthService.name);
  /** Absent while `auth.jwt` is not configured (no route can then say `auth: jwt`). */
  private verifier: JwtVerifier | undefined;

  constructor(
    @Inject(JWT_AUTH_CONFIG) config: JwtAuthConfig | undefined,
    private readonly tenants: JwtTenantResolver,
    private readonly metrics: GatewayMetrics,
  ) {
    this.verifier = config ? this.build(config) : undefined;
  }

  onModuleInit(): void {
    this.verifier?.start();
  }

  onModuleDestroy(): void {
    this.verifier?.stop();
  }

  /**
   * Takes a new `auth.jwt` (configuration reload): a fresh verifier with its own key set and
   * token cache replaces the old one; checks already running finish with the old one.
   */
  reconfigure(config: JwtAuthConfig | undefined): void {
    const previous = this.verifier;
    this.verifier = config ? this.build(config) : undefined;
    this.verifier?.start();
    previous?.stop();
  }

  /** The verdict on an `Authorization` header value. Never throws or rejects. */
  check(authorization: string | undefined): JwtCheck | Promise<JwtCheck> {
    const token = bearerToken(authorization);
    if (token === undefined || this.verifier === undefined) return this.refused('jwt_missing');
    const verification = this.verifier.verify(token);
    return verification instanceof Promise ? verification.then((v) => this.afterVerify(v)) : this.afterVerify(verification);
  }

  /** `check`, throwing the refusal (for the guard and callers that prefer exceptions). */
  async authenticate(authorization: string | undefined): Promise<JwtAuthentication> {
    const outcome = await this.check(authorization);
    if (!outcome.ok) throw this.refusal(outcome.reason);
    return { auth: outcome.auth, token: outcome.token };
  }

  /** The token alone (signature and claims), without the tenant lookup; not counted. */
  verifyToken(token: string): JwtVerification | Promise<JwtVerification> {
    if (!this.verifier) return { ok: false, reason: 'jwt_missing' };
    return this.verifier.verify(token);
  }

  /** What the client gets: 403 `forbidden` for a suspended tenant, one identical 401 for everything else. */
  refusal(reason: JwtRefusalReason): GatewayException {
    if (reason === 'jwt_suspended') return new GatewayException('forbidden', JWT_SUSPENDED_MESSAGE);
    return new GatewayException('unauthorized', JWT_REFUSAL_MESSAGE, {}, { 'www-authenticate': TENANT_AUTH_CHALLENGE });
  }

  stats(): ReturnType<JwtVerifier['stats']> & { tenants: ReturnType<JwtTenantResolver['stats']> } {
    if (!this.verifier) throw new Error('auth.jwt is not configured');
    return { ...this.verifier.stats(), tenants: this.tenants.stats() };
  }

  private afterVerify(verification: JwtVerification): JwtCheck | Promise<JwtCheck> {
    if (!verification.ok) return this.refused(verification.reason);
    const { token } = verification;
    const resolution = this.tenants.resolve(token.tenantId, token.scopes);
    return resolution instanceof Promise ? resolution.then((r) => this.afterResolve(r, token)) : this.afterResolve(resolution, token);
  }

  private afterResolve(resolution: TenantResolution, token: VerifiedJwt): JwtCheck {
    if (!resolution.ok) return this.refused(resolution.reason);
    return { ok: true, auth: resolution.auth, token };
  }

  private refused(reason: JwtRefusalReason): JwtCheck {
    this.metrics.authFailed(reason);
    return { ok: false, reason };
  }

  private build(config: JwtAuthConfig): JwtVerifier {
    return new JwtVerifier(config, { logger: this.logger });
  }
}

/** The credential of `Authorization: Bearer <token>` (scheme case-insensitive, RFC 9110), or undefined. */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (!authorization || authorization.length < 8) return undefined;
  if (authorization.slice(0, 7).toLowerCase() !== 'bearer ') return undefined;
  const token = authorization.slice(7).trim();
  return token.length > 0 ? token : undefined;
}
