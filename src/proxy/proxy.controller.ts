import { All, Controller, Req, Res } from '@nestjs/common';
import { ApiExcludeController, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ImgproxyUrlService } from '../imgproxy/imgproxy-url.service';
import { ProxyPipeline } from '../pipeline/proxy-pipeline.decorator';
import { ProxyRoutes } from './proxy-routes';
import { ProxyService } from './proxy.service';

export const HEADER_MODE_ROUTE = '/i/*';

/** Header mode (docs/tenants-and-keys.md): `/i/<signature-or-insecure>/<options>/<source>` with an API key header. */
// Documented by hand in src/bootstrap/swagger.ts: a catch-all path has no parameter form for raw slashes.
@ApiExcludeController()
@ApiTags('images')
@Controller()
export class ProxyController {
  constructor(
    private readonly proxy: ProxyService,
    private readonly urls: ImgproxyUrlService,
    routes: ProxyRoutes,
  ) {
    routes.register(HEADER_MODE_ROUTE, 'proxy');
  }

  @All('i/*')
  @ProxyPipeline()
  @ApiOperation({
    summary:
      'A processed image for an API-key caller. The source is sandboxed to the tenant (local:/// → its folder, remote ' +
      'sources only from its allowed list) and the URL is re-signed with the backends’ key before it is streamed.',
  })
  @ApiOkResponse({ description: "The backend's response, streamed (status, body and end-to-end headers preserved)." })
  forward(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<unknown> {
    const { upstreamPath, extraHeaders } = this.urls.rewriteHeaderModeUrl(request.raw.url ?? '', request.gw.auth!);
    return this.proxy.forward(request, reply, { upstreamPath, extraHeaders });
  }
}
