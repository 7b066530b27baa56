import { CanActivate, NestInterceptor, Type, UseGuards, UseInterceptors, applyDecorators } from '@nestjs/common';
import { ApiBadGatewayResponse, ApiGatewayTimeoutResponse, ApiSecurity, ApiServiceUnavailableResponse } from '@nestjs/swagger';
import { ErrorResponseDto } from '../common/errors/error-response.dto';

/**
 * Guards of every proxied image route, run in this order (SPEC §2 steps 3-6): IP deny list,
 * IP-level rate limit, authentication, tenant IP allowlist, tenant and route rate limits. Each
 * module contributes its guard here as it lands; the proxy route itself never changes.
 */
const PROXY_GUARDS: Array<Type<CanActivate>> = [];

/** Interceptors around the proxy call (SPEC §2 step 7 and 9: quota check and usage count). */
const PROXY_INTERCEPTORS: Array<Type<NestInterceptor>> = [];

/** The request pipeline of SPEC §2 in front of ProxyService.forward, as one decorator. */
export function ProxyPipeline(): MethodDecorator & ClassDecorator {
  return applyDecorators(
    UseGuards(...PROXY_GUARDS),
    UseInterceptors(...PROXY_INTERCEPTORS),
    ApiSecurity('apiKey'),
    ApiBadGatewayResponse({ description: 'bad_gateway: the backends could not be reached.', type: ErrorResponseDto }),
    ApiServiceUnavailableResponse({ description: 'no_healthy_backend, or unavailable when every backend is saturated (429 upstream).', type: ErrorResponseDto }),
    ApiGatewayTimeoutResponse({ description: 'gateway_timeout: no backend answered in time.', type: ErrorResponseDto }),
  );
}
