import { Readable } from 'node:stream';
import { Get, Query, Res } from '@nestjs/common';
import { ApiBadRequestResponse, ApiOkResponse, ApiOperation, ApiProduces } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { AdminController } from '../admin/admin-controller.decorator';
import { ErrorResponseDto } from '../common/errors/error-response.dto';
import { UsageAdminService } from './usage-admin.service';
import { UsageRangeQueryDto } from './usage.dto';

const EXAMPLE =
  'tenant_id,tenant_name,date,requests,bandwidth_bytes,renders,storage_bytes\r\n' +
  '7d9f2c1e-3b4a-4c5d-8e6f-0a1b2c3d4e5f,Acme Photos,2026-11-21,980,20971520,240,52428800\r\n' +
  '7d9f2c1e-3b4a-4c5d-8e6f-0a1b2c3d4e5f,Acme Photos,2026-11-22,1250,24117248,310,52428800\r\n';

@AdminController('usage.csv', 'admin: usage')
export class UsageExportController {
  constructor(private readonly usage: UsageAdminService) {}

  @Get()
  @ApiOperation({
    summary: 'Billing export: one CSV line per tenant and UTC day with usage over [from, to] (default: this month), streamed.',
    description:
      'Columns: tenant_id, tenant_name, date, requests, bandwidth_bytes (request + response bytes), renders (requests the ' +
      'image backend rendered), storage_bytes (stored bytes when the day was last flushed). Ordered by tenant, then day. ' +
      "This instance's counts are written first; other instances' reach PostgreSQL within their flush interval.",
  })
  @ApiProduces('text/csv')
  @ApiOkResponse({ description: 'text/csv; charset=utf-8', content: { 'text/csv': { schema: { type: 'string', example: EXAMPLE } } } })
  @ApiBadRequestResponse({ description: 'validation_failed: a date that does not exist, from after to, or a range over 366 days.', type: ErrorResponseDto })
  export(@Query() query: UsageRangeQueryDto, @Res() reply: FastifyReply): FastifyReply {
    const { range, lines } = this.usage.exportCsv(query.from, query.to);
    return reply
      .header('content-type', 'text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="usage-${range.from}-${range.to}.csv"`)
      .send(Readable.from(lines));
  }
}
