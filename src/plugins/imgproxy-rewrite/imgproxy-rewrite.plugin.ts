import { Injectable } from '@nestjs/common';
import type { GatewayContext } from '../../gateway/context';
import { ChainPlugin, type CompiledSteps, type GatewayPlugin, PRIORITY } from '../../gateway/plugin';
import type { RouteSpec } from '../../gateway/route-spec';
import { ImgproxyUrlService } from './imgproxy-url.service';
import type { SignedModeImgproxyPath } from '../../signing/imgproxy-url';

/**
 * The image routes' rewrite: the tenant's source sandbox applied to the imgproxy URL, then the
 * URL re-signed with the backends' own key, so backends only ever see URLs the gateway signed.
 * Header mode parses the URL here; signed mode takes the path the signature step verified. The
 * approved source goes to the context for the cache (purges match it).
 */
@Injectable()
@ChainPlugin()
export class ImgproxyRewritePlugin implements GatewayPlugin {
  readonly name = 'imgproxy-rewrite';
  readonly priority = PRIORITY.imgproxyRewrite;

  constructor(private readonly urls: ImgproxyUrlService) {}

  compile(route: RouteSpec): CompiledSteps | undefined {
    const urls = this.urls;
    if (route.kind === 'image-header') {
      return {
        access: (ctx: GatewayContext) => {
          const upstream = urls.rewriteHeaderModeUrl(ctx.req!.url ?? '', ctx.auth!);
          ctx.upstreamPath = upstream.upstreamPath;
          ctx.upstreamHeaders = upstream.extraHeaders;
          ctx.imageSource = upstream.source.url;
          return undefined;
        },
      };
    }
    if (route.kind === 'image-signed') {
      return {
        access: (ctx: GatewayContext) => {
          const upstream = urls.upstreamFor(ctx.image as SignedModeImgproxyPath, ctx.auth!);
          ctx.upstreamPath = upstream.upstreamPath;
          ctx.upstreamHeaders = upstream.extraHeaders;
          ctx.imageSource = upstream.source.url;
          return undefined;
        },
      };
    }
    return undefined;
  }
}
