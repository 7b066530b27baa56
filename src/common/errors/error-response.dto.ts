import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class ErrorDetailDto {
  @ApiProperty({ description: 'Stable machine-readable code (docs/architecture.md).', example: 'validation_failed' })
  code: string;
  @ApiProperty({ description: 'Human-readable explanation.', example: 'The request is invalid.' })
  message: string;
  @ApiProperty({ description: 'Id of the request, also in the X-Request-ID header and the logs.', example: '3f1c2a4e-9d1b-4f7e-8a4b-2c9e5d7f1a0b' })
  requestId: string;
  @ApiPropertyOptional({ description: 'Validation problems, one per field.', type: [String], example: ['email must be an email'] })
  details?: string[];
  @ApiPropertyOptional({ description: 'Rate-limit scope that refused the request.', example: 'tenant' })
  scope?: string;
  @ApiPropertyOptional({ description: 'Quota that is used up.', example: 'monthlyRequests' })
  quota?: string;
  @ApiPropertyOptional({ description: 'Seconds to wait before retrying (also the Retry-After header of every 429 and 503).', example: 17 })
  retryAfter?: number;
  @ApiPropertyOptional({ description: 'Methods the resource serves (405, also the Allow header).', type: [String], example: ['GET', 'HEAD'] })
  allow?: string[];
}

export class ErrorResponseDto {
  @ApiProperty({ type: ErrorDetailDto })
  error: ErrorDetailDto;
}
