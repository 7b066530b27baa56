import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsDate, IsOptional, IsString, IsUUID, Matches, MaxLength } from 'class-validator';
import { PageQueryDto } from '../common/pagination/page.dto';

export class RequestLogQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ description: 'Only this tenant’s requests.', example: '5f0c2c1e-8a3b-4c8e-9d55-2b7f0f3f6a10' })
  @IsOptional() @IsUUID()
  tenantId?: string;

  @ApiPropertyOptional({ description: 'Only the request with this X-Request-ID.', example: '7d1e0c5a-4b8f-4f0e-a1c2-9b3d5e7f9a11' })
  @IsOptional() @IsString() @MaxLength(128)
  requestId?: string;

  @ApiPropertyOptional({ description: 'From this time (inclusive), ISO 8601.', example: '2026-11-01T00:00:00Z' })
  @IsOptional() @Type(() => Date) @IsDate()
  from?: Date;

  @ApiPropertyOptional({ description: 'Until this time (exclusive), ISO 8601.', example: '2026-11-02T00:00:00Z' })
  @IsOptional() @Type(() => Date) @IsDate()
  to?: Date;

  @ApiPropertyOptional({ description: 'An exact status (`404`) or a class (`5xx`). 499 = the client closed the connection first.', example: '5xx' })
  @IsOptional() @Matches(/^[1-5](\d\d|xx)$/, { message: 'status must be a status code like 404 or a class like 5xx' })
  status?: string;
}

export class RequestLogEntryDto {
  @ApiProperty({ description: 'Row id (increasing).', example: '1042' }) id: string;
  @ApiProperty({ description: 'When the response ended.', example: '2026-11-21T10:15:02.123Z' }) createdAt: Date;
  @ApiProperty({ description: 'X-Request-ID of the request.', example: '7d1e0c5a-4b8f-4f0e-a1c2-9b3d5e7f9a11' }) requestId: string;
  @ApiPropertyOptional({ description: 'Tenant, when authenticated.', nullable: true, example: '5f0c2c1e-8a3b-4c8e-9d55-2b7f0f3f6a10' }) tenantId: string | null;
  @ApiPropertyOptional({ description: 'Public key id used.', nullable: true, example: 'A1b2C3d4E5f6' }) keyId: string | null;
  @ApiPropertyOptional({ description: 'Backend that answered.', nullable: true, example: 'imgproxy-1' }) backend: string | null;
  @ApiProperty({ example: 'GET' }) method: string;
  @ApiProperty({ description: 'Route name.', example: 'proxy' }) route: string;
  @ApiProperty({ description: 'Request path without its query string.', example: '/i/insecure/rs:fit:300:200/plain/local:///cat.jpg' }) path: string;
  @ApiProperty({ description: 'Response status; 499 when the client aborted.', example: 200 }) status: number;
  @ApiProperty({ description: 'Time to the end of the response, ms.', example: 42 }) durationMs: number;
  @ApiProperty({ description: 'Request body bytes received.', example: 0 }) bytesIn: number;
  @ApiProperty({ description: 'Response body bytes sent.', example: 18234 }) bytesOut: number;
  @ApiPropertyOptional({ description: 'Client address (docs/proxy-and-backends.md).', nullable: true, example: '203.0.113.7' }) clientIp: string | null;
  @ApiPropertyOptional({ description: 'How the response cache answered (docs/cache.md); null on a route without a cache.', nullable: true, enum: ['hit', 'miss', 'bypass'], example: 'hit' })
  cache: 'hit' | 'miss' | 'bypass' | null;
}

export class RequestLogPageDto {
  @ApiProperty({ type: [RequestLogEntryDto], description: 'Newest first.' }) items: RequestLogEntryDto[];
  @ApiProperty({ description: 'Rows matching the filter.', example: 1200 }) total: number;
  @ApiProperty({ example: 50 }) limit: number;
  @ApiProperty({ example: 0 }) offset: number;
}
