import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { ArrayMinSize, ArrayUnique, IsArray, IsDate, IsIn, IsInt, IsOptional, IsString, Max, MaxLength, Min, MinLength } from 'class-validator';
import { API_KEY_SCOPES, DEFAULT_API_KEY_SCOPES } from './api-key-scopes';

export class ApiKeyCreateDto {
  @ApiPropertyOptional({ description: 'A label for the operator and the tenant.', example: 'production web' })
  @IsOptional() @IsString() @MinLength(1) @MaxLength(100)
  name?: string;

  @ApiPropertyOptional({
    description: `What the key may do. Default: ${DEFAULT_API_KEY_SCOPES.join(', ')}.`,
    enum: API_KEY_SCOPES,
    isArray: true,
    example: ['images:read', 'images:write'],
  })
  @IsOptional() @IsArray() @ArrayMinSize(1) @ArrayUnique() @IsIn(API_KEY_SCOPES, { each: true })
  scopes?: string[];

  @ApiPropertyOptional({
    description: 'When the key stops working (ISO 8601, in the future); absent or null = never.',
    type: String,
    format: 'date-time',
    nullable: true,
    example: '2027-12-31T23:59:59Z',
  })
  @IsOptional() @Type(() => Date) @IsDate()
  expiresAt?: Date | null;
}

export class ApiKeyRotateDto extends ApiKeyCreateDto {
  @ApiPropertyOptional({
    description: 'How long the old key keeps working (seconds, 0 = stop now, at most 30 days). Default 86400 (24 h).',
    example: 86400,
    default: 86400,
  })
  @IsOptional() @IsInt() @Min(0) @Max(30 * 86400)
  gracePeriodSeconds?: number;
}

export class ApiKeyResponseDto {
  @ApiProperty({ description: 'Public key id (the part after igw_).', example: 'Xq3fK9aB2cD4' }) keyId: string;
  @ApiProperty({ description: 'The key with its secret masked: the secret is never shown again.', example: 'igw_Xq3fK9aB2cD4_********' })
  maskedKey: string;
  @ApiProperty({ nullable: true, example: 'production web' }) name: string | null;
  @ApiProperty({ enum: API_KEY_SCOPES, isArray: true, example: ['images:read', 'usage:read'] }) scopes: string[];
  @ApiProperty({ enum: ['active', 'revoked', 'expired'], example: 'active' }) status: 'active' | 'revoked' | 'expired';
  @ApiProperty({ type: String, format: 'date-time', nullable: true, example: null }) expiresAt: Date | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true, example: null }) revokedAt: Date | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'Exact to the flush interval (a few seconds).', example: null })
  lastUsedAt: Date | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'When the URL-signing pair was last rotated.', example: null })
  signingRotatedAt: Date | null;
  @ApiProperty({ description: 'Whether the pair before the last rotation still verifies signed URLs.', example: false }) previousSigningValid: boolean;
  @ApiProperty({ type: String, format: 'date-time' }) createdAt: Date;
}

export class ApiKeyListDto {
  @ApiProperty({ type: [ApiKeyResponseDto] }) items: ApiKeyResponseDto[];
}

export class ApiKeyCreatedDto {
  @ApiProperty({ example: '0b7e6a4c-2f1d-4c3b-9a8e-7d6c5b4a3f2e' }) tenantId: string;
  @ApiProperty({ example: 'Xq3fK9aB2cD4' }) keyId: string;
  @ApiProperty({ description: 'The API key. Shown once, now: only a keyed hash of its secret is stored.', example: 'igw_Xq3fK9aB2cD4_8h2KfLq0ZrT5vW1xY7nB3mC6dE9gJ4pA' })
  key: string;
  @ApiProperty({ description: 'URL-signing key (hex, like IMGPROXY_KEY) for /t/<keyId>/ URLs. Shown once.', example: '943b421c9eb07c830af81030552c86009268de4e532ba2ee2eab8247c6da0881' })
  signingKey: string;
  @ApiProperty({ description: 'URL-signing salt (hex, like IMGPROXY_SALT). Shown once.', example: '520f986b998545b4785e0defbc4f3c1203f22de2374a3d53cb7a7fe9fea309c5' })
  signingSalt: string;
  @ApiProperty({ nullable: true, example: 'production web' }) name: string | null;
  @ApiProperty({ enum: API_KEY_SCOPES, isArray: true, example: ['images:read', 'usage:read'] }) scopes: string[];
  @ApiProperty({ type: String, format: 'date-time', nullable: true, example: null }) expiresAt: Date | null;
  @ApiProperty({ type: String, format: 'date-time' }) createdAt: Date;
}

export class ApiKeyPreviousDto {
  @ApiProperty({ example: 'Ab12Cd34Ef56' }) keyId: string;
  @ApiProperty({ type: String, format: 'date-time', description: 'When the old key stops working.', example: '2026-11-23T10:00:00.000Z' }) expiresAt: Date;
}

/** A new URL-signing pair: shown once, like the first one. */
export class ApiKeySigningRotatedDto {
  @ApiProperty({ example: 'Xq3fK9aB2cD4' }) keyId: string;
  @ApiProperty({ description: 'The new current URL-signing key (hex). Shown once.', example: '5c2a1f0e9d8b7a6c5f4e3d2c1b0a99887766554433221100ffeeddccbbaa9988' })
  signingKey: string;
  @ApiProperty({ description: 'The new current URL-signing salt (hex). Shown once.', example: '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff' })
  signingSalt: string;
  @ApiProperty({ type: String, format: 'date-time', example: '2026-11-22T10:00:00.000Z' }) signingRotatedAt: Date;
  @ApiProperty({
    description: 'The pair that was current until now keeps verifying until DELETE .../signing/previous (an older previous pair is gone).',
    example: true,
  })
  previousSigningValid: boolean;
}

export class ApiKeyRotatedDto extends ApiKeyCreatedDto {
  @ApiProperty({ type: ApiKeyPreviousDto, description: 'The key that was rotated out.' }) previous: ApiKeyPreviousDto;
}
