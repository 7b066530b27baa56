import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, IsUUID, Matches, MaxLength } from 'class-validator';
import { SOURCE_PREFIX_PATTERN } from './cache-source';

const PREFIX_DESCRIPTION =
  'Only entries whose source starts with this: the decoded source URL as the tenant writes it in image URLs ' +
  '(local:///avatars/ for uploads and the tenant folder, https://cdn.example.com/a/ for remote sources). ' +
  'Scheme and host are compared in lower case, the rest exactly. Absent: every entry of the tenant.';

export class CachePurgeDto {
  @ApiPropertyOptional({ description: PREFIX_DESCRIPTION, example: 'local:///avatars/', maxLength: 2048 })
  @IsOptional() @IsString() @MaxLength(2048)
  @Matches(SOURCE_PREFIX_PATTERN, { message: 'prefix must be a source URL prefix with a scheme, like local:///avatars/ or https://cdn.example.com/a/' })
  prefix?: string;
}

export class CacheAdminPurgeDto extends CachePurgeDto {
  @ApiProperty({ description: 'The tenant whose entries are dropped.', example: '0b7e6a4c-2f1d-4c3b-9a8e-7d6c5b4a3f2e' })
  @IsUUID()
  tenantId: string;
}

export class CachePurgeResponseDto {
  @ApiProperty({ example: '0b7e6a4c-2f1d-4c3b-9a8e-7d6c5b4a3f2e' }) tenantId: string;
  @ApiProperty({ nullable: true, example: 'local:///avatars/', description: 'The prefix as applied (scheme and host in lower case); null = everything.' })
  prefix: string | null;
  @ApiProperty({
    example: 12,
    description: 'Entries dropped by the instance that answered. The other instances drop theirs when the purge reaches them (milliseconds).',
  })
  dropped: number;
}
