import { Get, Query } from '@nestjs/common';
import { ApiBadRequestResponse, ApiOkResponse, ApiOperation } from '@nestjs/swagger';
import { AdminController } from '../admin/admin-controller.decorator';
import { ErrorResponseDto } from '../common/errors/error-response.dto';
import { RequestLogPageDto, RequestLogQueryDto } from './request-log.dto';
import { RequestLogService } from './request-log.service';

@AdminController('request-logs', 'admin: request logs')
export class RequestLogsController {
  constructor(private readonly requestLogs: RequestLogService) {}

  @Get()
  @ApiOperation({ summary: 'Proxied requests, newest first, filtered by tenant, time range and status.' })
  @ApiOkResponse({ type: RequestLogPageDto })
  @ApiBadRequestResponse({ description: 'Invalid filter.', type: ErrorResponseDto })
  list(@Query() query: RequestLogQueryDto): Promise<RequestLogPageDto> {
    return this.requestLogs.page(query);
  }
}
