import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsInt, IsOptional, IsString, IsUrl, Matches, Max, MaxLength, Min } from 'class-validator';

const NAME = /^[A-Za-z0-9._-]{1,64}$/;
const NAME_MESSAGE = 'must be 1-64 characters of [A-Za-z0-9._-]';
// require_tld off: backends are usually internal names or addresses (imgproxy-1, 10.0.0.5).
// Credentials in the URL are refused: URLs are shown to admins and written to the audit log.
const URL_OPTIONS = { protocols: ['http', 'https'], require_protocol: true, require_tld: false, disallow_auth: true };

export class BackendCreateDto {
  @ApiProperty({ description: 'Unique name, used in metrics, logs and /health/backends.', example: 'imgproxy-1' })
  @IsString() @Matches(NAME, { message: `name ${NAME_MESSAGE}` })
  name: string;

  @ApiProperty({ description: 'Base URL of the backend (http or https, no credentials).', example: 'http://10.0.0.5:8080' })
  @IsString() @MaxLength(2048) @IsUrl(URL_OPTIONS, { message: 'url must be an http(s) URL without credentials' })
  url: string;

  @ApiProperty({ description: 'Balancer weight 1..100; 0 drains the backend (in-flight requests finish, no new ones).', example: 70, minimum: 0, maximum: 100 })
  @IsInt() @Min(0) @Max(100)
  weight: number;

  @ApiPropertyOptional({ description: 'Disabled backends are kept but neither checked nor chosen.', example: true, default: true })
  @IsOptional() @IsBoolean()
  enabled?: boolean;

  @ApiPropertyOptional({ description: 'Pool the backend serves.', example: 'imgproxy', default: 'imgproxy' })
  @IsOptional() @IsString() @Matches(NAME, { message: `pool ${NAME_MESSAGE}` })
  pool?: string;
}

export class BackendUpdateDto {
  @ApiPropertyOptional({ description: 'New unique name.', example: 'imgproxy-2' })
  @IsOptional() @IsString() @Matches(NAME, { message: `name ${NAME_MESSAGE}` })
  name?: string;

  @ApiPropertyOptional({ description: 'New base URL; the backend then starts with fresh health and circuit state.', example: 'http://10.0.0.6:8080' })
  @IsOptional() @IsString() @MaxLength(2048) @IsUrl(URL_OPTIONS, { message: 'url must be an http(s) URL without credentials' })
  url?: string;

  @ApiPropertyOptional({ description: 'Balancer weight 1..100, or 0 to drain.', example: 30, minimum: 0, maximum: 100 })
  @IsOptional() @IsInt() @Min(0) @Max(100)
  weight?: number;

  @ApiPropertyOptional({ description: 'Enable or disable the backend.', example: false })
  @IsOptional() @IsBoolean()
  enabled?: boolean;

  @ApiPropertyOptional({ description: 'Move the backend to another pool.', example: 'imgproxy' })
  @IsOptional() @IsString() @Matches(NAME, { message: `pool ${NAME_MESSAGE}` })
  pool?: string;
}

/** What this instance currently knows about a backend (health checks and passive health). */
export class BackendStateDto {
  @ApiProperty({ description: 'Verdict of the active health checks.', example: true }) healthy: boolean;
  @ApiProperty({ description: 'Whether the balancer may choose it right now.', example: true }) available: boolean;
  @ApiProperty({ description: 'Circuit breaker state.', enum: ['closed', 'open', 'half-open'], example: 'closed' }) circuit: string;
  @ApiProperty({ description: 'Shifting load away after a 429 from the backend.', example: false }) backPressure: boolean;
  @ApiProperty({ description: 'Requests in flight on this instance.', example: 3 }) inFlight: number;
  @ApiPropertyOptional({ description: 'Last active check on this instance.', example: '2026-11-22T00:00:00.000Z', nullable: true }) lastCheckAt: string | null;
  @ApiPropertyOptional({ description: 'Why the last check failed.', example: 'HTTP 503', nullable: true }) lastError: string | null;
}

export class BackendResponseDto {
  @ApiProperty({ example: '0b7c9c9e-3c1c-4c0e-9f0e-5d8a6f1b2c3d' }) id: string;
  @ApiProperty({ example: 'imgproxy-1' }) name: string;
  @ApiProperty({ example: 'http://10.0.0.5:8080' }) url: string;
  @ApiProperty({ example: 70 }) weight: number;
  @ApiProperty({ example: true }) enabled: boolean;
  @ApiProperty({ example: 'imgproxy' }) pool: string;
  @ApiProperty({ description: 'Last health verdict persisted by any instance.', example: true }) isHealthy: boolean;
  @ApiPropertyOptional({ description: 'When any instance last checked it.', example: '2026-11-22T00:00:00.000Z', nullable: true }) lastHealthCheck: string | null;
  @ApiProperty({ example: '2026-11-22T00:00:00.000Z' }) createdAt: string;
  @ApiProperty({ example: '2026-11-22T00:00:00.000Z' }) updatedAt: string;
  @ApiPropertyOptional({ type: BackendStateDto, description: 'Live state on the instance that answered (absent until it has loaded the change).' })
  state?: BackendStateDto;
}
