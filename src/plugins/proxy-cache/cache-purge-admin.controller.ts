import { Body, HttpCode, Post, Req } from '@nestjs/common';
import { ApiBadRequestResponse, ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { AdminController } from '../../admin/admin-controller.decorator';
import { ErrorResponseDto } from '../../common/errors/error-response.dto';
import { CacheAdminPurgeDto, CachePurgeResponseDto } from './cache-purge.dto';
import { CachePurgeRequests } from './cache-purge.requests';

@AdminController('cache', 'admin: cache')
export class CachePurgeAdminController {
  constructor(private readonly purges: CachePurgeRequests) {}

  @Post('purge')
  @HttpCode(200)
  @ApiOperation({ summary: "Drop a tenant's cached images on every gateway instance (all, or those whose source starts with a prefix). Audited." })
  @ApiOkResponse({ type: CachePurgeResponseDto })
  @ApiBadRequestResponse({ description: 'validation_failed: tenantId is not a uuid, or the prefix is not a source URL prefix.', type: ErrorResponseDto })
  @ApiNotFoundResponse({ description: 'No such tenant.', type: ErrorResponseDto })
  @ApiServiceUnavailableResponse({ description: 'unavailable: applied on one instance only (Redis unreachable); retry.', type: ErrorResponseDto })
  purge(@Req() request: FastifyRequest, @Body() dto: CacheAdminPurgeDto): Promise<CachePurgeResponseDto> {
    return this.purges.forAdmin(request, dto);
  }
}
