import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsNumber,
  IsOptional,
  IsUUID,
  Max,
  Min,
  ValidateIf,
  ValidateNested,
  registerDecorator,
  type ValidationOptions,
} from 'class-validator';
import { MAX_PRESET_LENGTH, MAX_PRESETS, PRESET_NAME_PATTERN } from '../signing/image-policy';
import { IMAGE_FORMATS, WATERMARK_POSITIONS } from '../signing/imgproxy-options';

/** Set and not null: null is the "clear this field" value of a PATCH. */
const present = (_: object, value: unknown) => value !== undefined && value !== null;
const FINITE = { allowNaN: false, allowInfinity: false };
const TEN_YEARS = 10 * 365 * 86_400;

/**
 * `{"<name>": "<imgproxy options>"}` with names and sizes in bounds. Whether imgproxy accepts the
 * options themselves is checked by the service with the configured backend's parser.
 */
function IsPresetMap(options?: ValidationOptions): PropertyDecorator {
  return (target, propertyName) =>
    registerDecorator({
      name: 'isPresetMap',
      target: target.constructor,
      propertyName: propertyName as string,
      options: {
        message: `presets must map up to ${MAX_PRESETS} names (1-64 of A-Z a-z 0-9 _ -) to option strings of 1-${MAX_PRESET_LENGTH} characters`,
        ...options,
      },
      validator: {
        validate(value: unknown) {
          if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
          const entries = Object.entries(value);
          return (
            entries.length <= MAX_PRESETS &&
            entries.every(([name, text]) => PRESET_NAME_PATTERN.test(name) && typeof text === 'string' && text.length >= 1 && text.length <= MAX_PRESET_LENGTH)
          );
        },
      },
    });
}

export class WatermarkPolicyDto {
  @ApiPropertyOptional({ description: "imgproxy's watermark opacity modifier, above 0 and at most 1 (required).", example: 0.5 })
  @IsNumber(FINITE) @Min(0.001) @Max(1)
  opacity: number;

  @ApiPropertyOptional({
    description: 'Where the watermark goes; `re` tiles it, `ch` (imgproxy Pro) tiles it as a chessboard. Default `ce`.',
    enum: [...WATERMARK_POSITIONS, 'ch'],
    example: 'soea',
  })
  @IsOptional() @IsIn([...WATERMARK_POSITIONS, 'ch'])
  position?: string;

  @ApiPropertyOptional({ description: 'Horizontal offset: pixels when ≥ 1 or ≤ -1, relative otherwise. Default 0.', example: 10 })
  @IsOptional() @IsNumber(FINITE) @Min(-100_000) @Max(100_000)
  xOffset?: number;

  @ApiPropertyOptional({ description: 'Vertical offset, like xOffset. Default 0.', example: 10 })
  @IsOptional() @IsNumber(FINITE) @Min(-100_000) @Max(100_000)
  yOffset?: number;

  @ApiPropertyOptional({ description: 'Watermark size relative to the image; 0 or absent keeps its own size.', example: 0.25 })
  @IsOptional() @IsNumber(FINITE) @Min(0) @Max(100)
  scale?: number;

  @ApiPropertyOptional({
    description: "An upload of the tenant to use as its watermark image (imgproxy Pro's watermark_url; needs imgproxy.pro). Tenants only.",
    example: '0b6f6a8e-8a49-4d8e-9b5e-3a1c2f7d9e10',
  })
  @IsOptional() @IsUUID()
  uploadId?: string;
}

/**
 * The image policy of a plan or a tenant (docs/imgproxy.md). Every field is optional; in a PATCH
 * `null` clears a field and a `null` object clears them all. On a tenant, each field set
 * replaces the plan's (presets are merged by name).
 */
export class ImagePolicyDto {
  @ApiPropertyOptional({
    description: 'Named imgproxy option sets: `pr:<name>` (or `preset:<name>`) in a URL expands to them. Replaced whole by a PATCH.',
    type: 'object',
    additionalProperties: { type: 'string' },
    example: { thumb: 'rs:fill:200:200/q:80', hero: 'rs:fit:1600:900/f:webp' },
    nullable: true,
  })
  @ValidateIf(present) @IsPresetMap()
  presets?: Record<string, string> | null;

  @ApiPropertyOptional({ description: 'Only presets (and exp) in this tenant\'s URLs; anything else is 403.', example: false, nullable: true })
  @ValidateIf(present) @IsBoolean()
  presetsOnly?: boolean | null;

  @ApiPropertyOptional({ description: 'Largest output width in pixels (dpr, zoom and padding included).', example: 2000, nullable: true })
  @ValidateIf(present) @IsInt() @Min(1) @Max(100_000)
  maxWidth?: number | null;

  @ApiPropertyOptional({ description: 'Largest output height in pixels (dpr, zoom and padding included).', example: 2000, nullable: true })
  @ValidateIf(present) @IsInt() @Min(1) @Max(100_000)
  maxHeight?: number | null;

  @ApiPropertyOptional({ description: "Largest source image, in megapixels (imgproxy's max_src_resolution).", example: 24, nullable: true })
  @ValidateIf(present) @IsNumber(FINITE) @Min(0.01) @Max(10_000)
  maxSrcResolution?: number | null;

  @ApiPropertyOptional({ description: "Largest source file, in bytes (imgproxy's max_src_file_size).", example: 20971520, nullable: true })
  @ValidateIf(present) @IsInt() @Min(1) @Max(Number.MAX_SAFE_INTEGER)
  maxSrcFileSize?: number | null;

  @ApiPropertyOptional({ description: 'Output format when the URL names none (no format option, no extension).', enum: [...IMAGE_FORMATS], example: 'webp', nullable: true })
  @ValidateIf(present) @IsIn([...IMAGE_FORMATS])
  defaultFormat?: string | null;

  @ApiPropertyOptional({ description: 'Quality when the URL sets none (no quality or format_quality option).', example: 80, nullable: true })
  @ValidateIf(present) @IsInt() @Min(1) @Max(100)
  defaultQuality?: number | null;

  @ApiPropertyOptional({ description: 'Signed URLs must carry exp:<unix seconds>; others are 403.', example: true, nullable: true })
  @ValidateIf(present) @IsBoolean()
  requireExpiry?: boolean | null;

  @ApiPropertyOptional({ description: "How far ahead a signed URL's exp may be, in seconds.", example: 86400, nullable: true })
  @ValidateIf(present) @IsInt() @Min(1) @Max(TEN_YEARS)
  maxExpirySeconds?: number | null;

  @ApiPropertyOptional({ description: "Forced onto every image as imgproxy's watermark option; replaced whole by a PATCH.", type: WatermarkPolicyDto, nullable: true })
  @ValidateIf(present) @ValidateNested() @Type(() => WatermarkPolicyDto)
  watermark?: WatermarkPolicyDto | null;
}
