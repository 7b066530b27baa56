import { ApiProperty } from '@nestjs/swagger';
import { EffectiveLimitsDto } from '../../tenants/tenant.dto';
import { API_KEY_SCOPES } from './api-key-scopes';

export class MeTenantDto {
  @ApiProperty({ example: '0b7e6a4c-2f1d-4c3b-9a8e-7d6c5b4a3f2e' }) id: string;
  @ApiProperty({ example: 'Acme Photos' }) name: string;
  @ApiProperty({ example: 'free' }) plan: string;
  @ApiProperty({ enum: ['active', 'suspended'], example: 'active' }) status: string;
}

export class MeKeyDto {
  @ApiProperty({ example: 'Xq3fK9aB2cD4' }) keyId: string;
  @ApiProperty({ enum: API_KEY_SCOPES, isArray: true, example: ['images:read', 'usage:read'] }) scopes: string[];
  @ApiProperty({ nullable: true, example: null }) expiresAt: Date | null;
}

export class MeResponseDto {
  @ApiProperty({ type: MeTenantDto }) tenant: MeTenantDto;
  @ApiProperty({ type: MeKeyDto }) key: MeKeyDto;
  @ApiProperty({ type: EffectiveLimitsDto, description: 'The rate limits and quotas this tenant runs under (plan plus overrides).' })
  limits: EffectiveLimitsDto;
}
