import { Module } from '@nestjs/common';
import { RequestLogRepository } from './request-log.repository';
import { RequestLogService } from './request-log.service';
import { RequestLogsController } from './request-logs.controller';

/** docs/architecture.md request logs: the in-memory queue, its batch writer, retention and the admin query. */
@Module({
  controllers: [RequestLogsController],
  providers: [RequestLogRepository, RequestLogService],
  exports: [RequestLogService],
})
export class RequestLogsModule {}
