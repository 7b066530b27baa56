import { Injectable, OnModuleInit } from '@nestjs/common';
import type { GatewayContext } from '../../gateway/context';
import { type CompiledSteps, type GatewayPlugin, PRIORITY } from '../../gateway/plugin';
import { PluginRegistry } from '../../gateway/plugin-registry';
import type { RouteSpec } from '../../gateway/route-spec';
import { RateLimitGuard } from '../../rate-limit/rate-limit.guard';
import type { RateLimitRouteName } from '../../rate-limit/rate-limit-buckets';

/**
 * Every rate-limit bucket of the request in one Redis round trip, through the RateLimitGuard
 * instance of the Nest routes; its headers go on whatever answer is written.
 */
@Injectable()
export class RateLimitingPlugin implements GatewayPlugin, OnModuleInit {
  readonly name = 'rate-limiting';
  readonly priority = PRIORITY.rateLimiting;

  constructor(
    private readonly registry: PluginRegistry,
    private readonly guard: RateLimitGuard,
  ) {}

  onModuleInit(): void {
    this.registry.register(this);
  }

  compile(route: RouteSpec): CompiledSteps | undefined {
    const bucket: RateLimitRouteName | undefined = route.kind === 'proxy' ? undefined : 'proxy';
    const guard = this.guard;
    return {
      access: (ctx: GatewayContext) =>
        guard
          .admit(ctx, bucket, (headers) => {
            for (const name in headers) ctx.header(name, String(headers[name]));
          })
          .then(passed),
    };
  }
}

function passed(): undefined {
  return undefined;
}
