import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsDate, IsIn, IsOptional, IsString, MaxLength } from 'class-validator';
import { PageQueryDto } from '../common/pagination/page.dto';

export class AuditLogQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ description: 'Only entries about this kind of resource.', enum: ['tenant', 'api_key', 'ip_allowlist', 'plan', 'backend', 'usage'] })
  @IsOptional() @IsIn(['tenant', 'api_key', 'ip_allowlist', 'plan', 'backend', 'usage'])
  targetType?: string;

  @ApiPropertyOptional({ description: 'Only entries about this resource id.' })
  @IsOptional() @IsString() @MaxLength(100)
  targetId?: string;

  @ApiPropertyOptional({ description: 'From this time (inclusive), ISO 8601.', example: '2026-11-01T00:00:00Z' })
  @IsOptional() @Type(() => Date) @IsDate()
  from?: Date;

  @ApiPropertyOptional({ description: 'Until this time (exclusive), ISO 8601.' })
  @IsOptional() @Type(() => Date) @IsDate()
  to?: Date;
}

export class AuditLogEntryDto {
  @ApiProperty({ example: '42' }) id: string;
  @ApiProperty({ description: 'Fingerprint of the admin token that made the change.', example: 'admin:3f1c2a4e9d1b' }) actor: string;
  @ApiProperty({ example: 'tenant.update' }) action: string;
  @ApiProperty({ example: 'tenant' }) targetType: string;
  @ApiPropertyOptional({ nullable: true }) targetId: string | null;
  @ApiPropertyOptional({ description: 'State before the change (secrets omitted).', nullable: true }) before: unknown;
  @ApiPropertyOptional({ description: 'State after the change (secrets omitted).', nullable: true }) after: unknown;
  @ApiPropertyOptional({ nullable: true }) requestId: string | null;
  @ApiPropertyOptional({ nullable: true }) clientIp: string | null;
  @ApiProperty() createdAt: Date;
}

export class AuditLogPageDto {
  @ApiProperty({ type: [AuditLogEntryDto] }) items: AuditLogEntryDto[];
  @ApiProperty({ example: 120 }) total: number;
  @ApiProperty({ example: 50 }) limit: number;
  @ApiProperty({ example: 0 }) offset: number;
}
