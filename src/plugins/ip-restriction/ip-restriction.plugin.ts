import { Injectable, OnModuleInit } from '@nestjs/common';
import { IpAllowlistGuard } from './ip-allowlist.guard';
import type { GatewayContext } from '../../gateway/context';
import { type CompiledSteps, type GatewayPlugin, PRIORITY } from '../../gateway/plugin';
import { PluginRegistry } from '../../gateway/plugin-registry';
import type { RouteSpec } from '../../gateway/route-spec';

/**
 * The tenant's IP allowlist on every authenticated route, after authentication (it needs the
 * tenant): decided at once from the compiled allowlist the key lookup primed.
 */
@Injectable()
export class IpRestrictionPlugin implements GatewayPlugin, OnModuleInit {
  readonly name = 'ip-restriction';
  readonly priority = PRIORITY.ipRestriction;

  constructor(
    private readonly registry: PluginRegistry,
    private readonly guard: IpAllowlistGuard,
  ) {}

  onModuleInit(): void {
    this.registry.register(this);
  }

  compile(route: RouteSpec): CompiledSteps | undefined {
    if (route.auth === 'none') return undefined;
    const guard = this.guard;
    return {
      access: (ctx: GatewayContext) => {
        const verdict = guard.admit(ctx.auth!.tenantId, ctx.clientIp);
        return verdict === true ? undefined : verdict.then(passed);
      },
    };
  }
}

function passed(): undefined {
  return undefined;
}
