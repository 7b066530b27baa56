import { Controller, Get, Req, UseGuards } from '@nestjs/common';
import { ApiForbiddenResponse, ApiOkResponse, ApiOperation, ApiSecurity, ApiTags, ApiTooManyRequestsResponse, ApiUnauthorizedResponse } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { ErrorResponseDto } from '../common/errors/error-response.dto';
import { IpAllowlistGuard } from '../ip-allowlist/ip-allowlist.guard';
import { RateLimitGuard } from '../rate-limit/rate-limit.guard';
import { ApiKeyGuard } from './api-key.guard';
import { ApiKeyService } from './api-key.service';
import { MeResponseDto } from './me.dto';

@Controller('api/v1')
@ApiTags('tenant')
@ApiSecurity('apiKey')
export class MeController {
  constructor(private readonly keys: ApiKeyService) {}

  @Get('me')
  // Rate limited by the tenant's buckets like every tenant call (a key tester is no free lunch).
  @UseGuards(ApiKeyGuard, IpAllowlistGuard, RateLimitGuard)
  @ApiOperation({ summary: 'Who am I: the tenant and key behind the API key (a way to test a key).' })
  @ApiOkResponse({ type: MeResponseDto })
  @ApiUnauthorizedResponse({ description: 'Missing, unknown, revoked or expired key.', type: ErrorResponseDto })
  @ApiForbiddenResponse({ description: 'Suspended tenant (forbidden) or address not on the allowlist (ip_not_allowed).', type: ErrorResponseDto })
  @ApiTooManyRequestsResponse({ description: 'rate_limited (the tenant\'s buckets), with scope and Retry-After.', type: ErrorResponseDto })
  me(@Req() request: FastifyRequest): MeResponseDto {
    return this.keys.describe(request.gw.auth!) as MeResponseDto;
  }
}
