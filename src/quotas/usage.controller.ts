import { Controller, Get, Query, Req, UseGuards } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiOkResponse,
  ApiOperation,
  ApiSecurity,
  ApiTags,
  ApiTooManyRequestsResponse,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { ApiKeyGuard } from '../auth/api-key.guard';
import { RequireScope } from '../auth/require-scope.decorator';
import { ErrorResponseDto } from '../common/errors/error-response.dto';
import { IpAllowlistGuard } from '../ip-allowlist/ip-allowlist.guard';
import { RateLimitGuard } from '../rate-limit/rate-limit.guard';
import { QuotaService } from './quota.service';
import { TenantUsageResponseDto, UsageSeriesQueryDto } from './usage.dto';

/**
 * The tenant's own usage. Rate limited like every tenant call, but not quota-checked: a tenant
 * whose quota is used up must still be able to see that.
 */
@Controller('api/v1')
@ApiTags('tenant')
@ApiSecurity('apiKey')
export class UsageController {
  constructor(private readonly quotas: QuotaService) {}

  @Get('usage')
  @UseGuards(ApiKeyGuard, IpAllowlistGuard, RateLimitGuard)
  @RequireScope('usage:read')
  @ApiOperation({
    summary: 'Limits, use and what is left of every quota this month (UTC), with the reset time; with granularity=day, a series per day.',
    description: 'GET /api/v1/usage?from=2026-11-01&to=2026-11-30&granularity=day adds `series`. The range spans at most 366 days.',
  })
  @ApiOkResponse({ type: TenantUsageResponseDto })
  @ApiBadRequestResponse({ description: 'validation_failed: a date that does not exist, from after to, a range over 366 days, an unknown granularity.', type: ErrorResponseDto })
  @ApiUnauthorizedResponse({ description: 'Missing, unknown, revoked or expired key.', type: ErrorResponseDto })
  @ApiTooManyRequestsResponse({ description: 'Rate limited (rate_limited, with scope and retryAfter).', type: ErrorResponseDto })
  usage(@Req() request: FastifyRequest, @Query() query: UsageSeriesQueryDto): Promise<TenantUsageResponseDto> {
    return this.quotas.tenantUsage(request.gw.auth!, query);
  }
}
