import { UseGuards, UseInterceptors, applyDecorators } from '@nestjs/common';
import { ApiBadGatewayResponse, ApiBadRequestResponse, ApiGatewayTimeoutResponse, ApiServiceUnavailableResponse, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { ErrorResponseDto } from '../common/errors/error-response.dto';
import { IpAllowlistGuard } from '../ip-allowlist/ip-allowlist.guard';
import { QuotaInterceptor } from '../quotas/quota.interceptor';
import { RateLimitRoute } from '../rate-limit/rate-limit-route.decorator';
import { RateLimitGuard } from '../rate-limit/rate-limit.guard';
import { SignedUrlGuard } from './signed-url.guard';

/**
 * SPEC §2 steps 4-7 for browser-mode URLs: the same chain as the header-mode proxy route, with
 * the URL signature in place of the API key (the global IP deny list runs before it, the
 * pre-auth IP limit inside the key lookup). Same route bucket as `/i/*`: both are `proxy`.
 */
export function SignedImagePipeline(): MethodDecorator {
  return applyDecorators(
    UseGuards(SignedUrlGuard, IpAllowlistGuard, RateLimitGuard),
    RateLimitRoute('proxy'),
    UseInterceptors(QuotaInterceptor),
    ApiBadRequestResponse({ description: 'bad_url (not a usable imgproxy URL) or bad_source (outside the sandbox).', type: ErrorResponseDto }),
    ApiUnauthorizedResponse({ description: 'Unknown, revoked or expired key id, or a bad signature.', type: ErrorResponseDto }),
    ApiBadGatewayResponse({ description: 'bad_gateway: the backends could not be reached.', type: ErrorResponseDto }),
    ApiServiceUnavailableResponse({ description: 'no_healthy_backend, or unavailable when every backend is saturated.', type: ErrorResponseDto }),
    ApiGatewayTimeoutResponse({ description: 'gateway_timeout: no backend answered in time.', type: ErrorResponseDto }),
  );
}
