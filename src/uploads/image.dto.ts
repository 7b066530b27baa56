import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class ImageResponseDto {
  @ApiProperty({ description: 'Image id.', example: '0b6f6a8e-8a49-4d8e-9b5e-3a1c2f7d9e10' })
  id: string;

  @ApiProperty({ description: 'Size of the stored file in bytes (counts toward the storageBytes quota).', example: 48213 })
  bytes: number;

  @ApiProperty({ description: 'The same figure under the name the product specification uses.', example: 48213 })
  size: number;

  @ApiProperty({ description: 'Media type decided from the file content, not from the request.', example: 'image/png' })
  type: string;

  @ApiProperty({ description: 'SHA-256 of the stored bytes, hex.', example: '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08' })
  sha256: string;

  @ApiProperty({ description: 'Width in pixels.', example: 1200, nullable: true, type: Number })
  width: number | null;

  @ApiProperty({ description: 'Height in pixels.', example: 800, nullable: true, type: Number })
  height: number | null;

  @ApiProperty({
    description: 'The tenant-relative imgproxy source of this image, for URLs you build yourself.',
    example: 'local:///0b6f6a8e-8a49-4d8e-9b5e-3a1c2f7d9e10.png',
  })
  source: string;

  @ApiProperty({
    description:
      'A ready signed URL (path on this gateway) for the calling key, with the default processing options; ' +
      'null when the caller has no URL-signing key (JWT).',
    example: '/t/AbC123xyz789/Xq1u8cO2r1cQ3q2r0GmZ8Z3c8Xz1J6kO9bS2P3tQ4vY/rs:fit:1024:1024/bG9jYWw6Ly8vMGI2ZjZhOGUucG5n',
    nullable: true,
    type: String,
  })
  url: string | null;

  @ApiPropertyOptional({ description: 'The file name the client sent (multipart only); never used on disk.', example: 'holiday.png', nullable: true, type: String })
  originalName: string | null;

  @ApiProperty({ description: 'Upload time.', example: '2026-11-22T10:00:00.000Z' })
  createdAt: Date;
}

export class ImagePageDto {
  @ApiProperty({ type: [ImageResponseDto] })
  items: ImageResponseDto[];

  @ApiProperty({ description: 'Images of the tenant in total.', example: 1 })
  total: number;

  @ApiProperty({ description: 'Page size used.', example: 50 })
  limit: number;

  @ApiProperty({ description: 'Items skipped.', example: 0 })
  offset: number;
}
