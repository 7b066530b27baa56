import { CanActivate, Type, UseGuards, UseInterceptors, applyDecorators } from '@nestjs/common';
import {
  ApiBadGatewayResponse,
  ApiBadRequestResponse,
  ApiForbiddenResponse,
  ApiGatewayTimeoutResponse,
  ApiSecurity,
  ApiServiceUnavailableResponse,
  ApiTooManyRequestsResponse,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { IMAGE_READ_SCOPE } from '../auth/api-key-scopes';
import { ApiKeyGuard } from '../auth/api-key.guard';
import { RequireScope } from '../auth/require-scope.decorator';
import { ErrorResponseDto } from '../common/errors/error-response.dto';
import { IpAllowlistGuard } from '../ip-allowlist/ip-allowlist.guard';
import { QuotaInterceptor } from '../quotas/quota.interceptor';
import { RateLimitRoute } from '../rate-limit/rate-limit-route.decorator';
import { RateLimitGuard } from '../rate-limit/rate-limit.guard';

export interface ProxyPipelineOptions {
  /**
   * The guard that authenticates the caller and sets `request.gw.auth`: the API-key guard for
   * header mode (default), the URL-signature guard for browser mode.
   */
  authenticate?: Type<CanActivate>;
}

/**
 * The request pipeline of docs/proxy-and-backends.md in front of ProxyService.forward, as one decorator shared by
 * every proxied image route, so the order cannot drift between them:
 *
 *  - the global IP deny list (a global guard, before everything);
 *  - authentication; on a key-cache miss (and on every 401) it charges the client IP's bucket of
 *    the pre-authentication path, so floods of random keys are cut before any database lookup;
 *  - the tenant's IP allowlist;
 *  - the tenant's buckets (minute and hour), the route's capacity, the quota check and the request
 *    count, in one call of the admission store (one Redis round trip);
 *  - the quota verdict (QuotaInterceptor), then the proxy; once the response is over its bytes are
 *    settled in the next batch, and a 5xx the gateway wrote itself is refunded.
 */
export function ProxyPipeline(options: ProxyPipelineOptions = {}): MethodDecorator & ClassDecorator {
  const authenticate = options.authenticate ?? ApiKeyGuard;
  return applyDecorators(
    UseGuards(authenticate, IpAllowlistGuard, RateLimitGuard),
    // Signed URLs carry their credential in the path; only header mode needs the key scheme.
    ...(authenticate === ApiKeyGuard ? [ApiSecurity('apiKey')] : []),
    RequireScope(IMAGE_READ_SCOPE),
    RateLimitRoute('proxy'),
    UseInterceptors(QuotaInterceptor),
    ApiBadRequestResponse({ description: 'bad_url (not a usable imgproxy URL) or bad_source (outside the tenant sandbox).', type: ErrorResponseDto }),
    ApiUnauthorizedResponse({ description: 'Missing, unknown, revoked or expired key, or a bad URL signature.', type: ErrorResponseDto }),
    ApiForbiddenResponse({ description: 'forbidden (scope, suspended tenant) or ip_not_allowed.', type: ErrorResponseDto }),
    ApiTooManyRequestsResponse({ description: 'rate_limited (with scope and Retry-After) or quota_exceeded (with quota).', type: ErrorResponseDto }),
    ApiBadGatewayResponse({ description: 'bad_gateway: the backends could not be reached.', type: ErrorResponseDto }),
    ApiServiceUnavailableResponse({ description: 'no_healthy_backend, or unavailable when every backend is saturated (429 upstream).', type: ErrorResponseDto }),
    ApiGatewayTimeoutResponse({ description: 'gateway_timeout: no backend answered in time.', type: ErrorResponseDto }),
  );
}
