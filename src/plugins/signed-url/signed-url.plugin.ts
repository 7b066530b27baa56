import { Injectable } from '@nestjs/common';
import { SignedUrlGuard } from './signed-url.guard';
import type { GatewayContext } from '../../gateway/context';
import { ChainPlugin, type CompiledSteps, type GatewayPlugin, PRIORITY } from '../../gateway/plugin';
import type { RouteSpec } from '../../gateway/route-spec';

/**
 * The signed image route `/t/<keyId>/<signature>/...`: the imgproxy signature made with the key's
 * URL-signing key is the credential. The verified, parsed path goes to the context's `image` slot,
 * where the imgproxy rewrite takes it, so the URL is parsed once per request.
 */
@Injectable()
@ChainPlugin()
export class SignedUrlPlugin implements GatewayPlugin {
  readonly name = 'signed-url';
  readonly priority = PRIORITY.signedUrl;

  constructor(private readonly guard: SignedUrlGuard) {}

  compile(route: RouteSpec): CompiledSteps | undefined {
    if (route.auth !== 'signed-url') return undefined;
    const guard = this.guard;
    return {
      access: (ctx: GatewayContext) =>
        guard.verify(ctx, ctx.req!.url ?? '').then(({ path }) => {
          ctx.image = path;
          return undefined;
        }),
    };
  }
}
