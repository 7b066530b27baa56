import { CanActivate, ExecutionContext, Inject, Injectable, Optional } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { AuthContext } from '../../gateway/caller';
import type { AuthenticationRequest } from '../../gateway/context';
import type { SignedModeImgproxyPath } from '../../signing/imgproxy-url';
import { IMAGE_READ_SCOPE } from '../key-auth/api-key-scopes';
import { ApiKeyService } from '../key-auth/api-key.service';
import { GatewayException } from '../../common/errors/gateway.exception';
import { GatewayMetrics } from '../../metrics/gateway-metrics.service';
import { PRE_AUTH_LIMITER, PreAuthLimiter, chargingRefusals } from '../../gateway/pre-auth-limiter';
import { ImgproxyUrlService, signedUrlRefusal } from '../imgproxy-rewrite/imgproxy-url.service';

/** Proxying an image, by header or by signed URL, needs this scope (docs/tenants-and-keys.md). */
const PROXY_SCOPES = [IMAGE_READ_SCOPE];

/**
 * Authentication of browser-mode URLs, `/t/<keyId>/<signature>/<options>/<source>` (docs/tenants-and-keys.md): a
 * browser cannot send an API-key header, so the imgproxy signature made with the key's
 * URL-signing key and salt is the credential. Sets `request.gw.auth` (via `signed-url`), exactly
 * like ApiKeyGuard does for header mode, so the tenant IP allowlist, rate limits and quota run
 * after it unchanged. The key lookup is cached in process; a miss is charged to the client's IP
 * bucket before PostgreSQL is asked (ApiKeyService).
 */
@Injectable()
export class SignedUrlGuard implements CanActivate {
  constructor(
    private readonly keys: ApiKeyService,
    private readonly urls: ImgproxyUrlService,
    private readonly metrics: GatewayMetrics,
    @Optional() @Inject(PRE_AUTH_LIMITER) private readonly limiter?: PreAuthLimiter,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    // The verified path goes to the context's image slot, where the imgproxy rewrite takes it.
    request.gw.image = (await this.verify(request, request.raw.url ?? '')).path;
    return true;
  }

  /**
   * The guard's logic without Nest's execution context, for the compiled chain: parses and
   * verifies the signed URL, sets `request.gw.auth` and answers the verified path.
   */
  async verify(request: AuthenticationRequest, rawUrl: string): Promise<{ auth: AuthContext; path: SignedModeImgproxyPath }> {
    const path = this.urls.parse(rawUrl);
    if (path.mode !== 'signed') throw new GatewayException('bad_url', 'Signed image URLs start with /t/<keyId>/.');
    request.gw.auth = await this.authenticate(path, request);
    return { auth: request.gw.auth, path };
  }

  /**
   * Until the signature verifies, every failure is the same 401 (charged to the IP bucket):
   * unknown, malformed, revoked or expired key, bad signature, unsigned URL. Only a caller whose
   * signature verifies learns more: a suspended tenant (403), a key without images:read (403).
   */
  async authenticate(path: SignedModeImgproxyPath, request: AuthenticationRequest): Promise<AuthContext> {
    const key = await chargingRefusals(this.limiter, request, async () => {
      const candidate = await this.keys.signingCandidate(path.keyId, request);
      // Verified whatever the candidate, so a refusal takes the same time for every reason.
      const problem = this.urls.signatureProblem(path, candidate.key);
      const reason = candidate.unusable ?? problem;
      if (reason || !candidate.key) {
        this.metrics.authFailed(reason ?? 'unknown');
        throw signedUrlRefusal();
      }
      return { ...candidate.key, suspended: candidate.suspended };
    });
    if (key.suspended) {
      this.metrics.authFailed('suspended');
      throw new GatewayException('forbidden', 'This account is suspended.');
    }
    this.keys.assertScopes(key.auth, PROXY_SCOPES);
    this.keys.markUsed(path.keyId);
    return key.auth;
  }
}
