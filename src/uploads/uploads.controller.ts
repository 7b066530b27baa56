import { Controller, Delete, Get, HttpCode, Param, Post, Query, Req, UseGuards, UseInterceptors } from '@nestjs/common';
import {
  ApiBody,
  ApiConsumes,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiPayloadTooLargeResponse,
  ApiSecurity,
  ApiTags,
  ApiTooManyRequestsResponse,
  ApiUnsupportedMediaTypeResponse,
} from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { ApiKeyGuard } from '../plugins/key-auth/api-key.guard';
import { RequireScope } from '../plugins/key-auth/require-scope.decorator';
import { ErrorResponseDto } from '../common/errors/error-response.dto';
import { PageQueryDto } from '../common/pagination/page.dto';
import { IpAllowlistGuard } from '../plugins/ip-restriction/ip-allowlist.guard';
import { StreamedBodyRoutes } from './streamed-body-routes';
import { QuotaInterceptor } from '../plugins/quota/quota.interceptor';
import { RateLimitRoute } from '../plugins/rate-limiting/rate-limit-route.decorator';
import { RateLimitGuard } from '../plugins/rate-limiting/rate-limit.guard';
import { UuidParamPipe } from '../common/http/uuid-param.pipe';
import { ImagePageDto, ImageResponseDto } from './image.dto';
import { UploadsService } from './uploads.service';

export const UPLOAD_ROUTE = '/api/v1/images';
export const IMAGE_ROUTE = '/api/v1/images/:id';

/** A tenant's uploaded images (docs/imgproxy.md). */
@ApiTags('images')
@ApiSecurity('apiKey')
@Controller('api/v1/images')
@UseGuards(ApiKeyGuard, IpAllowlistGuard, RateLimitGuard)
export class UploadsController {
  constructor(
    private readonly uploads: UploadsService,
    routes: StreamedBodyRoutes,
  ) {
    // The upload body must reach the handler as a stream, never parsed or buffered; the proxy's
    // route registry masks its Content-Type for that and names the route for logs and metrics.
    routes.register(UPLOAD_ROUTE, 'upload');
    routes.register(IMAGE_ROUTE, 'api');
  }

  @Post()
  @RequireScope('images:write')
  @RateLimitRoute('upload')
  @UseInterceptors(QuotaInterceptor)
  @ApiOperation({
    summary: 'Upload an image: multipart/form-data with the field "file", or the raw bytes with an image/* or application/octet-stream type.',
    description:
      'The type is decided by the content (JPEG, PNG, GIF, WebP, AVIF; SVG only when enabled). The answer holds the ' +
      'tenant-relative source (local:///<name>) and a ready signed URL for the calling key.',
  })
  @ApiConsumes('multipart/form-data', 'image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/avif', 'application/octet-stream')
  @ApiBody({ schema: { type: 'object', properties: { file: { type: 'string', format: 'binary' } }, required: ['file'] } })
  @ApiCreatedResponse({ type: ImageResponseDto })
  @ApiPayloadTooLargeResponse({ description: 'payload_too_large: the file exceeds uploads.maxBytes.', type: ErrorResponseDto })
  @ApiUnsupportedMediaTypeResponse({ description: 'unsupported_media_type: not an accepted image format.', type: ErrorResponseDto })
  @ApiTooManyRequestsResponse({ description: 'rate_limited, or quota_exceeded (storageBytes, monthlyRequests, monthlyBandwidthBytes).', type: ErrorResponseDto })
  upload(@Req() request: FastifyRequest): Promise<ImageResponseDto> {
    return this.uploads.upload(request, request.gw.auth!);
  }

  @Get()
  @RequireScope('images:read')
  @ApiOperation({ summary: "The tenant's images, newest first." })
  @ApiOkResponse({ type: ImagePageDto })
  list(@Req() request: FastifyRequest, @Query() page: PageQueryDto): Promise<ImagePageDto> {
    return this.uploads.list(request.gw.auth!, page.limit, page.offset);
  }

  @Get(':id')
  @RequireScope('images:read')
  @ApiOperation({ summary: 'One image of the tenant.' })
  @ApiOkResponse({ type: ImageResponseDto })
  @ApiNotFoundResponse({ description: 'No such image for this tenant.', type: ErrorResponseDto })
  get(@Req() request: FastifyRequest, @Param('id', UuidParamPipe) id: string): Promise<ImageResponseDto> {
    return this.uploads.get(request.gw.auth!, id);
  }

  @Delete(':id')
  @HttpCode(204)
  @RequireScope('images:write')
  @ApiOperation({ summary: 'Delete an image (row and file); frees its storage quota.' })
  @ApiNoContentResponse({ description: 'Deleted.' })
  @ApiNotFoundResponse({ description: 'No such image for this tenant.', type: ErrorResponseDto })
  delete(@Req() request: FastifyRequest, @Param('id', UuidParamPipe) id: string): Promise<void> {
    return this.uploads.delete(request.gw.auth!, id);
  }
}
