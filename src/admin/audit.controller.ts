import { Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation } from '@nestjs/swagger';
import { AdminController } from './admin-controller.decorator';
import { AuditLogPageDto, AuditLogQueryDto } from '../audit/audit-log.dto';
import { AuditService } from '../audit/audit.service';

@AdminController('audit-log', 'admin: audit log')
export class AuditController {
  constructor(private readonly audit: AuditService) {}

  @Get()
  @ApiOperation({ summary: 'Admin writes, newest first.' })
  @ApiOkResponse({ type: AuditLogPageDto })
  async list(@Query() query: AuditLogQueryDto): Promise<AuditLogPageDto> {
    return { ...(await this.audit.find(query)), limit: query.limit, offset: query.offset };
  }
}
