import { All, Controller, Req, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GatewayConfig } from '../config/gateway-config';
import { ProxyPipeline } from '../pipeline/proxy-pipeline.decorator';
import { ProxyRoutes } from './proxy-routes';
import { ProxyService } from './proxy.service';
import { upstreamPathOf } from './upstream-path';

export const HEADER_MODE_ROUTE = '/i/*';

/** Header mode (SPEC §3): `/i/<signature-or-insecure>/<options>/<source>` with an API key header. */
@ApiTags('images')
@Controller()
export class ProxyController {
  private readonly extraHeaders: Readonly<Record<string, string>>;

  constructor(
    private readonly proxy: ProxyService,
    routes: ProxyRoutes,
    config: GatewayConfig,
  ) {
    routes.register(HEADER_MODE_ROUTE, 'proxy');
    // imgproxy's IMGPROXY_SECRET: the backends only answer the gateway (SPEC §8).
    this.extraHeaders = config.imgproxy.secret ? { authorization: `Bearer ${config.imgproxy.secret}` } : {};
  }

  @All('i/*')
  @ProxyPipeline()
  @ApiOperation({ summary: 'Proxy an imgproxy URL to a backend; the path after /i is sent upstream unchanged.' })
  @ApiOkResponse({ description: "The backend's response, streamed (status, body and end-to-end headers preserved)." })
  forward(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<unknown> {
    return this.proxy.forward(request, reply, { upstreamPath: upstreamPathOf(request.raw.url ?? '/i/', '/i'), extraHeaders: this.extraHeaders });
  }
}
