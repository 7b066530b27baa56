import { Injectable, OnModuleInit } from '@nestjs/common';
import { SignedUrlGuard } from './signed-url.guard';
import type { GatewayContext } from '../../gateway/context';
import { type CompiledSteps, type GatewayPlugin, PRIORITY } from '../../gateway/plugin';
import { PluginRegistry } from '../../gateway/plugin-registry';
import type { RouteSpec } from '../../gateway/route-spec';

/**
 * The signed image route `/t/<keyId>/<signature>/...`: the imgproxy signature made with the key's
 * URL-signing key is the credential. The verified, parsed path goes to the context's `image` slot,
 * where the imgproxy rewrite takes it, so the URL is parsed once per request.
 */
@Injectable()
export class SignedUrlPlugin implements GatewayPlugin, OnModuleInit {
  readonly name = 'signed-url';
  readonly priority = PRIORITY.signedUrl;

  constructor(
    private readonly registry: PluginRegistry,
    private readonly guard: SignedUrlGuard,
  ) {}

  onModuleInit(): void {
    this.registry.register(this);
  }

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
