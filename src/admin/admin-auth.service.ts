import { Inject, Injectable, OnModuleInit, Optional } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { GatewayException } from '../common/errors/gateway.exception';
import { sendRefusal } from '../common/errors/refusal-writer';
import { ADMIN_AUTH_CHALLENGE, refusals } from '../common/errors/refusals';
import { GatewayConfig } from '../config/gateway-config';
import { GatewayMetrics } from '../metrics/gateway-metrics.service';
import { PRE_AUTH_LIMITER, PreAuthLimiter } from '../gateway/pre-auth-limiter';
import { AdminTokenVerifier } from './admin-token';

/** Paths of the admin API; matched on the raw URL so unknown admin paths are covered too. */
const ADMIN_PATH = /^\/admin(?:[/?]|$)/;

/**
 * Authentication of the admin API (docs/architecture.md, Admin API). The token is checked from
 * the headers in a preParsing hook, before any body is read: a caller without the token costs a
 * hash, not a 1 MB JSON parse. Every wrong or missing token is counted
 * (`gateway_auth_failures_total{reason="admin_token"}`) and charged to the client IP's bucket,
 * so guessing ends in 429 `rate_limited` (scope `ip`) like guessing a tenant key does.
 * AdminTokenGuard calls the same method on the Nest routes.
 */
@Injectable()
export class AdminAuthService implements OnModuleInit {
  private readonly verifier: AdminTokenVerifier;

  constructor(
    config: GatewayConfig,
    private readonly metrics: GatewayMetrics,
    private readonly adapterHost: HttpAdapterHost,
    @Optional() @Inject(PRE_AUTH_LIMITER) private readonly limiter?: PreAuthLimiter,
  ) {
    this.verifier = new AdminTokenVerifier(config.security.adminToken);
  }

  onModuleInit(): void {
    const fastify = this.adapterHost.httpAdapter?.getInstance<FastifyInstance>();
    fastify?.addHook('preParsing', (request, reply, payload, done) => {
      if (!ADMIN_PATH.test(request.url) || this.verifier.matches(request.headers.authorization)) {
        done(null, payload);
        return;
      }
      this.refuse(request).catch((error: unknown) => {
        sendRefusal(reply, error instanceof GatewayException ? error : refusals.internalError());
      });
    });
  }

  /** Resolves for the admin token; otherwise counts, charges the IP and rejects with 401 (or the IP's 429). */
  async authenticate(request: FastifyRequest): Promise<void> {
    if (this.verifier.matches(request.headers.authorization)) return;
    await this.refuse(request);
  }

  /**
   * Whether the request presents the admin token, for endpoints that show more to admins but
   * serve everyone. A wrong token is a failed guess all the same: counted and charged (and
   * refused with 429 once the IP is over its limit), so such an endpoint is no free oracle.
   */
  async presentsToken(request: FastifyRequest): Promise<boolean> {
    const authorization = request.headers.authorization;
    if (authorization === undefined) return false;
    if (this.verifier.matches(authorization)) return true;
    await this.charge(request);
    return false;
  }

  private async refuse(request: FastifyRequest): Promise<never> {
    await this.charge(request);
    throw refusals.unauthorized('A valid admin token is required.', ADMIN_AUTH_CHALLENGE);
  }

  /** The one place the admin API uses the pre-authentication limiter; throws its 429. */
  private async charge(request: FastifyRequest): Promise<void> {
    this.metrics.authFailed('admin_token');
    await this.limiter?.beforeKeyLookup(request);
  }
}
