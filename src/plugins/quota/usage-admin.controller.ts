import { Get, HttpCode, Param, Post, Query, Req } from '@nestjs/common';
import { ApiNotFoundResponse, ApiOkResponse, ApiOperation } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { AdminController } from '../../admin/admin-controller.decorator';
import { ErrorResponseDto } from '../../common/errors/error-response.dto';
import { UuidParamPipe } from '../../common/http/uuid-param.pipe';
import { UsageAdminService } from './usage-admin.service';
import { TenantUsageReportDto, UsageRangeQueryDto, UsageResetResponseDto } from './usage.dto';

@AdminController('tenants', 'admin: usage')
export class UsageAdminController {
  constructor(private readonly usage: UsageAdminService) {}

  @Get(':id/usage')
  @ApiOperation({ summary: 'Usage per UTC day over a date range (default: this month), with totals. Pending counts are flushed first.' })
  @ApiOkResponse({ type: TenantUsageReportDto })
  @ApiNotFoundResponse({ description: 'No such tenant.', type: ErrorResponseDto })
  report(@Param('id', UuidParamPipe) id: string, @Query() query: UsageRangeQueryDto): Promise<TenantUsageReportDto> {
    return this.usage.report(id, query.from, query.to);
  }

  @Post(':id/usage/reset')
  @HttpCode(200)
  @ApiOperation({ summary: "Resets the tenant's request and bandwidth usage of the current month (audit-logged)." })
  @ApiOkResponse({ type: UsageResetResponseDto })
  @ApiNotFoundResponse({ description: 'No such tenant.', type: ErrorResponseDto })
  reset(@Param('id', UuidParamPipe) id: string, @Req() request: FastifyRequest): Promise<UsageResetResponseDto> {
    return this.usage.reset(id, request);
  }
}
