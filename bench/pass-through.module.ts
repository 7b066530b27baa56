import { All, Controller, Module, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ProxyRoutes } from '../src/proxy/proxy-routes';
import { ProxyModule } from '../src/proxy/proxy.module';
import { ProxyService } from '../src/proxy/proxy.service';

export const PASS_THROUGH_PREFIX = '/passthrough';

/**
 * The benchmark's `no-auth` gateway mode: the same application, hooks, metrics, request logs and
 * ProxyService.forward as `/i/*`, without the pipeline's guards and interceptor (no key, no rate
 * limit, no quota, no URL rewriting). The difference between the two is what the pipeline costs.
 */
@Controller()
class PassThroughController {
  constructor(
    private readonly proxy: ProxyService,
    routes: ProxyRoutes,
  ) {
    routes.register(`${PASS_THROUGH_PREFIX}/*`, 'proxy');
  }

  @All('passthrough/*')
  forward(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<unknown> {
    return this.proxy.forward(request, reply, { upstreamPath: (request.raw.url ?? '/').slice(PASS_THROUGH_PREFIX.length) });
  }
}

@Module({ imports: [ProxyModule], controllers: [PassThroughController] })
export class PassThroughModule {}
