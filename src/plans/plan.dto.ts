import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Matches, Max, MaxLength, Min, ValidateIf, ValidateNested } from 'class-validator';
import { ImagePolicyDto } from './image-policy.dto';

const MAX_BIG = Number.MAX_SAFE_INTEGER;

export class PlanCreateDto {
  @ApiProperty({ description: 'Unique plan name: lower-case letters, digits and dashes.', example: 'business' })
  @IsString() @Matches(/^[a-z0-9-]{1,32}$/, { message: 'name must be 1-32 of [a-z0-9-]' })
  name: string;

  @ApiPropertyOptional({ description: 'Free text for operators.', example: 'Business tier, invoiced yearly' })
  @IsOptional() @IsString() @MaxLength(500)
  description?: string;

  @ApiProperty({ description: 'Requests per minute (token-bucket rate).', example: 2000 })
  @IsInt() @Min(1) @Max(10_000_000)
  perMinute: number;

  @ApiProperty({ description: 'Requests per hour.', example: 50000 })
  @IsInt() @Min(1) @Max(1_000_000_000)
  perHour: number;

  @ApiPropertyOptional({ description: 'Bucket capacity; absent = the per-window figure.', example: 500 })
  @IsOptional() @IsInt() @Min(1) @Max(10_000_000)
  burst?: number;

  @ApiProperty({ description: 'Requests per calendar month (UTC).', example: 1000000 })
  @IsInt() @Min(1) @Max(MAX_BIG)
  monthlyRequests: number;

  @ApiPropertyOptional({ description: 'Requests per UTC day; absent = no daily quota.', example: 50000 })
  @IsOptional() @IsInt() @Min(1) @Max(MAX_BIG)
  dailyRequests?: number;

  @ApiProperty({ description: 'Request + response bytes per calendar month.', example: 107374182400 })
  @IsInt() @Min(1) @Max(MAX_BIG)
  monthlyBandwidthBytes: number;

  @ApiProperty({ description: 'Bytes of stored uploads.', example: 10737418240 })
  @IsInt() @Min(1) @Max(MAX_BIG)
  storageBytes: number;

  @ApiPropertyOptional({
    description: 'Image policy of the tenants on this plan (docs/imgproxy.md); each tenant may override fields.',
    type: ImagePolicyDto,
    example: { presets: { thumb: 'rs:fill:200:200/q:80' }, maxWidth: 2000, maxHeight: 2000, maxSrcResolution: 24, defaultQuality: 80 },
  })
  @IsOptional() @ValidateNested() @Type(() => ImagePolicyDto)
  imagePolicy?: ImagePolicyDto;
}

/** Every field optional; `null` clears the optional ones (burst, dailyRequests, description). */
export class PlanUpdateDto {
  @ApiPropertyOptional({ description: 'Free text for operators; null clears it.', example: 'Business tier', nullable: true })
  @ValidateIf((_, v) => v !== undefined && v !== null) @IsString() @MaxLength(500)
  description?: string | null;

  @ApiPropertyOptional({ example: 2000 })
  @IsOptional() @IsInt() @Min(1) @Max(10_000_000)
  perMinute?: number;

  @ApiPropertyOptional({ example: 50000 })
  @IsOptional() @IsInt() @Min(1) @Max(1_000_000_000)
  perHour?: number;

  @ApiPropertyOptional({ description: 'null = the per-window figure.', example: 500, nullable: true })
  @ValidateIf((_, v) => v !== undefined && v !== null) @IsInt() @Min(1) @Max(10_000_000)
  burst?: number | null;

  @ApiPropertyOptional({ example: 1000000 })
  @IsOptional() @IsInt() @Min(1) @Max(MAX_BIG)
  monthlyRequests?: number;

  @ApiPropertyOptional({ description: 'null = no daily quota.', example: 50000, nullable: true })
  @ValidateIf((_, v) => v !== undefined && v !== null) @IsInt() @Min(1) @Max(MAX_BIG)
  dailyRequests?: number | null;

  @ApiPropertyOptional({ example: 107374182400 })
  @IsOptional() @IsInt() @Min(1) @Max(MAX_BIG)
  monthlyBandwidthBytes?: number;

  @ApiPropertyOptional({ example: 10737418240 })
  @IsOptional() @IsInt() @Min(1) @Max(MAX_BIG)
  storageBytes?: number;

  @ApiPropertyOptional({
    description: 'Changes to the image policy: a field sets, a null field clears, a null object clears the whole policy.',
    type: ImagePolicyDto,
    nullable: true,
    example: { maxWidth: 1600, watermark: { opacity: 0.4, position: 'soea', scale: 0.2 }, requireExpiry: null },
  })
  @ValidateIf((_, v) => v !== undefined && v !== null) @ValidateNested() @Type(() => ImagePolicyDto)
  imagePolicy?: ImagePolicyDto | null;
}

export class PlanResponseDto {
  @ApiProperty({ example: '5b0e6c1e-3f55-4a53-9d0a-2f4b6f7c8e91' }) id: string;
  @ApiProperty({ example: 'free' }) name: string;
  @ApiProperty({ nullable: true, example: null }) description: string | null;
  @ApiProperty({ example: 1000 }) perMinute: number;
  @ApiProperty({ example: 10000 }) perHour: number;
  @ApiProperty({ nullable: true, example: null, description: 'null = the per-window figure.' }) burst: number | null;
  @ApiProperty({ example: 100000 }) monthlyRequests: number;
  @ApiProperty({ nullable: true, example: null, description: 'null = no daily quota.' }) dailyRequests: number | null;
  @ApiProperty({ example: 10737418240 }) monthlyBandwidthBytes: number;
  @ApiProperty({ example: 1073741824 }) storageBytes: number;
  @ApiProperty({ type: ImagePolicyDto, example: { presets: { thumb: 'rs:fill:200:200/q:80' }, maxWidth: 2000 } }) imagePolicy: ImagePolicyDto;
  @ApiProperty() createdAt: Date;
  @ApiProperty() updatedAt: Date;
}

export class PlanListDto {
  @ApiProperty({ type: [PlanResponseDto] }) items: PlanResponseDto[];
}
