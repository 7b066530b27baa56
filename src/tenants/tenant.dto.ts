import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsBoolean,
  IsEmail,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  MinLength,
  ValidateIf,
  ValidateNested,
} from 'class-validator';
import { PageQueryDto } from '../common/pagination/page.dto';
import { ImagePolicyDto } from '../plans/image-policy.dto';
import { IsSourcePrefix } from '../signing/is-source-prefix.validator';

const MAX_BIG = Number.MAX_SAFE_INTEGER;
/** Set and not null: null is the "clear this override" value of a PATCH. */
const present = (_: object, value: unknown) => value !== undefined && value !== null;

export class TenantCreateDto {
  @ApiProperty({ description: 'Display name of the customer.', example: 'Acme Photos' })
  @IsString() @MinLength(1) @MaxLength(200)
  name: string;

  @ApiProperty({ description: 'Contact email; unique (case-insensitive) across tenants.', example: 'ops@acme.example' })
  @IsEmail() @MaxLength(320)
  email: string;

  @ApiPropertyOptional({ description: 'Plan name; absent = the configured defaultPlan.', example: 'pro' })
  @IsOptional() @IsString() @Matches(/^[a-z0-9-]{1,32}$/, { message: 'plan must be a plan name' })
  plan?: string;
}

export class RateLimitOverridesDto {
  @ApiPropertyOptional({ description: 'Requests per minute; null = the plan value.', example: 300, nullable: true })
  @ValidateIf(present) @IsInt() @Min(1) @Max(10_000_000)
  perMinute?: number | null;

  @ApiPropertyOptional({ description: 'Requests per hour; null = the plan value.', example: 5000, nullable: true })
  @ValidateIf(present) @IsInt() @Min(1) @Max(1_000_000_000)
  perHour?: number | null;
}

export class QuotaOverridesDto {
  @ApiPropertyOptional({ description: 'Requests per calendar month; null = the plan value.', example: 250000, nullable: true })
  @ValidateIf(present) @IsInt() @Min(1) @Max(MAX_BIG)
  monthlyRequests?: number | null;

  @ApiPropertyOptional({ description: 'Requests per UTC day; null = the plan value.', example: 10000, nullable: true })
  @ValidateIf(present) @IsInt() @Min(1) @Max(MAX_BIG)
  dailyRequests?: number | null;

  @ApiPropertyOptional({ description: 'Bytes in + out per calendar month; null = the plan value.', example: 21474836480, nullable: true })
  @ValidateIf(present) @IsInt() @Min(1) @Max(MAX_BIG)
  monthlyBandwidthBytes?: number | null;

  @ApiPropertyOptional({ description: 'Bytes of stored uploads; null = the plan value.', example: 2147483648, nullable: true })
  @ValidateIf(present) @IsInt() @Min(1) @Max(MAX_BIG)
  storageBytes?: number | null;
}

export class TenantUpdateDto {
  @ApiPropertyOptional({ example: 'Acme Photos GmbH' })
  @IsOptional() @IsString() @MinLength(1) @MaxLength(200)
  name?: string;

  @ApiPropertyOptional({ example: 'billing@acme.example' })
  @IsOptional() @IsEmail() @MaxLength(320)
  email?: string;

  @ApiPropertyOptional({ description: 'suspended: every key of the tenant is refused (403) on every instance within 2 s.', enum: ['active', 'suspended'] })
  @IsOptional() @IsIn(['active', 'suspended'])
  status?: 'active' | 'suspended';

  @ApiPropertyOptional({ description: 'Plan name.', example: 'pro' })
  @IsOptional() @IsString() @Matches(/^[a-z0-9-]{1,32}$/, { message: 'plan must be a plan name' })
  plan?: string;

  @ApiPropertyOptional({
    description: 'Remote source prefixes the tenant may fetch from (replaces the list).',
    type: [String],
    example: ['https://cdn.acme.example/', 'https://images.acme.example/public/'],
  })
  @IsOptional() @IsArray() @ArrayMaxSize(100) @IsString({ each: true }) @MaxLength(2048, { each: true })
  @IsSourcePrefix({ each: true })
  allowedSources?: string[];

  @ApiPropertyOptional({ description: 'Accept `insecure` instead of a signature on /t/ URLs.', example: false })
  @IsOptional() @IsBoolean()
  allowUnsignedUrls?: boolean;

  @ApiPropertyOptional({ description: 'Overrides of the plan rate limits; a null field (or null) clears the override.', type: RateLimitOverridesDto, nullable: true })
  @ValidateIf(present) @ValidateNested() @Type(() => RateLimitOverridesDto)
  rateLimits?: RateLimitOverridesDto | null;

  @ApiPropertyOptional({ description: 'Overrides of the plan quotas; a null field (or null) clears the override.', type: QuotaOverridesDto, nullable: true })
  @ValidateIf(present) @ValidateNested() @Type(() => QuotaOverridesDto)
  quotas?: QuotaOverridesDto | null;

  @ApiPropertyOptional({
    description:
      "Overrides of the plan's image policy (docs/imgproxy.md): a field sets, a null field clears (back to the plan), a null " +
      'object clears every override. presets and watermark are replaced whole. Reaches every instance within 2 s.',
    type: ImagePolicyDto,
    nullable: true,
    example: {
      presets: { thumb: 'rs:fill:200:200/q:80', hero: 'rs:fit:1600:900' },
      presetsOnly: true,
      maxWidth: 1600,
      maxHeight: 1600,
      maxSrcResolution: 24,
      maxSrcFileSize: 20971520,
      defaultFormat: 'webp',
      defaultQuality: 80,
      requireExpiry: true,
      maxExpirySeconds: 604800,
      watermark: { opacity: 0.5, position: 'soea', xOffset: 10, yOffset: 10, scale: 0.2 },
    },
  })
  @ValidateIf(present) @ValidateNested() @Type(() => ImagePolicyDto)
  imagePolicy?: ImagePolicyDto | null;
}

export class TenantListQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ description: 'Case-insensitive part of the name or email.', example: 'acme' })
  @IsOptional() @IsString() @MaxLength(200)
  search?: string;

  @ApiPropertyOptional({ enum: ['active', 'suspended'] })
  @IsOptional() @IsIn(['active', 'suspended'])
  status?: 'active' | 'suspended';

  @ApiPropertyOptional({ description: 'Plan name.', example: 'free' })
  @IsOptional() @IsString() @MaxLength(32)
  plan?: string;
}

export class EffectiveLimitsDto {
  @ApiProperty({ example: 1000 }) perMinute: number;
  @ApiProperty({ example: 10000 }) perHour: number;
  @ApiPropertyOptional({ example: 200 }) burst?: number;
  @ApiProperty({ example: 100000 }) monthlyRequests: number;
  @ApiPropertyOptional({ example: 5000 }) dailyRequests?: number;
  @ApiProperty({ example: 10737418240 }) monthlyBandwidthBytes: number;
  @ApiProperty({ example: 1073741824 }) storageBytes: number;
}

export class TenantResponseDto {
  @ApiProperty({ example: '0b7e6a4c-2f1d-4c3b-9a8e-7d6c5b4a3f2e' }) id: string;
  @ApiProperty({ example: 'Acme Photos' }) name: string;
  @ApiProperty({ example: 'ops@acme.example' }) email: string;
  @ApiProperty({ description: 'Plan name.', example: 'free' }) plan: string;
  @ApiProperty({ enum: ['active', 'suspended'], example: 'active' }) status: 'active' | 'suspended';
  @ApiProperty({ type: [String], example: ['https://cdn.acme.example/'] }) allowedSources: string[];
  @ApiProperty({ example: false }) allowUnsignedUrls: boolean;
  @ApiProperty({ description: 'Per-tenant rate-limit overrides (absent field = plan value).', type: RateLimitOverridesDto, example: { perMinute: 300 } })
  rateLimits: RateLimitOverridesDto;
  @ApiProperty({ description: 'Per-tenant quota overrides (absent field = plan value).', type: QuotaOverridesDto, example: {} })
  quotas: QuotaOverridesDto;
  @ApiProperty({ description: 'The plan merged with the overrides: what the gateway enforces.', type: EffectiveLimitsDto })
  limits: EffectiveLimitsDto;
  @ApiProperty({ description: "The tenant's own image policy fields (absent field = the plan's).", type: ImagePolicyDto, example: { maxWidth: 1600 } })
  imagePolicy: ImagePolicyDto;
  @ApiProperty({
    description: "The plan's image policy with the tenant's fields applied: what the gateway enforces.",
    type: ImagePolicyDto,
    example: { presets: { thumb: 'rs:fill:200:200/q:80' }, maxWidth: 1600, defaultQuality: 80 },
  })
  effectiveImagePolicy: ImagePolicyDto;
  @ApiProperty() createdAt: Date;
  @ApiProperty() updatedAt: Date;
}

export class TenantPageDto {
  @ApiProperty({ type: [TenantResponseDto] }) items: TenantResponseDto[];
  @ApiProperty({ example: 1 }) total: number;
  @ApiProperty({ example: 50 }) limit: number;
  @ApiProperty({ example: 0 }) offset: number;
}
