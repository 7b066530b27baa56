import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { ArrayMaxSize, IsArray, IsOptional, IsString, MaxLength, ValidateNested } from 'class-validator';
import { IsCidr } from '../../common/net/is-cidr.validator';

export class IpAllowlistEntryDto {
  @ApiProperty({ description: 'IPv4 or IPv6 CIDR, or a bare address (/32, /128). Host bits are cleared.', example: '203.0.113.0/24' })
  @IsString() @IsCidr()
  cidr: string;

  @ApiPropertyOptional({ description: 'Why this range is allowed.', example: 'office NAT' })
  @IsOptional() @IsString() @MaxLength(200)
  description?: string;
}

export class IpAllowlistReplaceDto {
  @ApiProperty({
    description: 'The complete list; an empty list allows every address.',
    type: [IpAllowlistEntryDto],
    example: [{ cidr: '203.0.113.0/24', description: 'office NAT' }, { cidr: '2001:db8::/32' }],
  })
  @IsArray() @ArrayMaxSize(1000) @ValidateNested({ each: true }) @Type(() => IpAllowlistEntryDto)
  entries: IpAllowlistEntryDto[];
}

export class IpAllowlistEntryResponseDto {
  @ApiProperty({ example: '203.0.113.0/24' }) cidr: string;
  @ApiProperty({ nullable: true, example: 'office NAT' }) description: string | null;
  @ApiProperty() createdAt: Date;
}

export class IpAllowlistResponseDto {
  @ApiProperty({ example: '0b7e6a4c-2f1d-4c3b-9a8e-7d6c5b4a3f2e' }) tenantId: string;
  @ApiProperty({ type: [IpAllowlistEntryResponseDto], description: 'Empty = every address is allowed.' })
  entries: IpAllowlistEntryResponseDto[];
}
