import { Body, Controller, HttpCode, Post, Req, UseGuards } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiOkResponse,
  ApiOperation,
  ApiSecurity,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiTooManyRequestsResponse,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { ApiKeyGuard } from '../key-auth/api-key.guard';
import { RequireScope } from '../key-auth/require-scope.decorator';
import { ErrorResponseDto } from '../../common/errors/error-response.dto';
import { IpAllowlistGuard } from '../ip-restriction/ip-allowlist.guard';
import { RateLimitGuard } from '../rate-limiting/rate-limit.guard';
import { CachePurgeDto, CachePurgeResponseDto } from './cache-purge.dto';
import { CachePurgeRequests } from './cache-purge.requests';

/** A tenant's own purge: rate limited like every tenant call, scope `images:write`. */
@Controller('api/v1/cache')
@ApiTags('tenant')
@ApiSecurity('apiKey')
export class CachePurgeController {
  constructor(private readonly purges: CachePurgeRequests) {}

  @Post('purge')
  @HttpCode(200)
  @UseGuards(ApiKeyGuard, IpAllowlistGuard, RateLimitGuard)
  @RequireScope('images:write')
  @ApiOperation({ summary: "Drop the cached images of the caller's tenant on every gateway instance (all, or those whose source starts with a prefix)." })
  @ApiOkResponse({ type: CachePurgeResponseDto })
  @ApiBadRequestResponse({ description: 'validation_failed: the prefix is not a source URL prefix.', type: ErrorResponseDto })
  @ApiUnauthorizedResponse({ description: 'Missing, unknown, revoked or expired key.', type: ErrorResponseDto })
  @ApiTooManyRequestsResponse({ description: 'Rate limited (rate_limited, with scope and retryAfter).', type: ErrorResponseDto })
  @ApiServiceUnavailableResponse({ description: 'unavailable: applied on one instance only (Redis unreachable); retry.', type: ErrorResponseDto })
  purge(@Req() request: FastifyRequest, @Body() dto: CachePurgeDto): Promise<CachePurgeResponseDto> {
    return this.purges.forTenant(request.gw.auth!, dto);
  }
}
