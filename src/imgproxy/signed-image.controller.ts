import { Controller, Get, Req, Res } from '@nestjs/common';
import { ApiExcludeController, ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ProxyPipeline } from '../pipeline/proxy-pipeline.decorator';
import { ProxyRoutes } from '../proxy/proxy-routes';
import { ProxyService } from '../proxy/proxy.service';
import { ImgproxyUrlService } from './imgproxy-url.service';
import { SignedUrlGuard } from './signed-url.guard';
import { verifiedImagePathOf } from './verified-image-path';

export const SIGNED_MODE_ROUTE = '/t/*';

/** Browser mode (docs/tenants-and-keys.md): `/t/<keyId>/<signature>/<options>/<source>`, no API-key header needed. */
// Documented by hand in src/bootstrap/swagger.ts: a catch-all path has no parameter form for raw slashes.
@ApiExcludeController()
@ApiTags('images')
@Controller()
export class SignedImageController {
  constructor(
    private readonly proxy: ProxyService,
    private readonly urls: ImgproxyUrlService,
    routes: ProxyRoutes,
  ) {
    routes.register(SIGNED_MODE_ROUTE, 'signed-proxy');
  }

  @Get('t/*')
  @ProxyPipeline({ authenticate: SignedUrlGuard })
  @ApiOperation({
    summary: 'A processed image by signed URL (build it with any imgproxy URL builder, base URL https://<gateway>/t/<keyId>).',
  })
  @ApiParam({ name: 'path', description: '<signature>/<processing options>/<source>, as imgproxy takes it.' })
  @ApiOkResponse({ description: "The backend's image, streamed (status, body and cache headers preserved)." })
  forward(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<unknown> {
    const { upstreamPath, extraHeaders } = this.urls.upstreamFor(verifiedImagePathOf(request), request.gw.auth!);
    return this.proxy.forward(request, reply, { upstreamPath, extraHeaders });
  }
}
