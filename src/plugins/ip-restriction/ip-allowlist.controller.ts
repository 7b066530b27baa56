import { Body, Get, Param, Put, Req } from '@nestjs/common';
import { ApiBadRequestResponse, ApiNotFoundResponse, ApiOkResponse, ApiOperation } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { AdminController } from '../../admin/admin-controller.decorator';
import { ErrorResponseDto } from '../../common/errors/error-response.dto';
import { UuidParamPipe } from '../../common/http/uuid-param.pipe';
import { IpAllowlistReplaceDto, IpAllowlistResponseDto } from './ip-allowlist.dto';
import { IpAllowlistService } from './ip-allowlist.service';

@AdminController('tenants/:id/ip-allowlist', 'admin: IP allowlists')
export class IpAllowlistController {
  constructor(private readonly allowlist: IpAllowlistService) {}

  @Get()
  @ApiOperation({ summary: 'The tenant\'s allowlist (empty = every address allowed).' })
  @ApiOkResponse({ type: IpAllowlistResponseDto })
  @ApiNotFoundResponse({ type: ErrorResponseDto })
  get(@Param('id', UuidParamPipe) tenantId: string): Promise<IpAllowlistResponseDto> {
    return this.allowlist.get(tenantId);
  }

  @Put()
  @ApiOperation({ summary: 'Replace the tenant\'s allowlist; applies on every instance within 2 s.' })
  @ApiOkResponse({ type: IpAllowlistResponseDto })
  @ApiBadRequestResponse({ description: 'An entry is not a valid CIDR (details name it).', type: ErrorResponseDto })
  @ApiNotFoundResponse({ type: ErrorResponseDto })
  replace(@Req() request: FastifyRequest, @Param('id', UuidParamPipe) tenantId: string, @Body() dto: IpAllowlistReplaceDto): Promise<IpAllowlistResponseDto> {
    return this.allowlist.replace(request, tenantId, dto);
  }
}
