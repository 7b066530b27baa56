import { Injectable } from '@nestjs/common';
import { IpAllowlistGuard } from './ip-allowlist.guard';
import type { GatewayContext } from '../../gateway/context';
import { ChainPlugin, type CompiledSteps, type GatewayPlugin, PRIORITY } from '../../gateway/plugin';
import type { RouteSpec } from '../../gateway/route-spec';

/**
 * The tenant's IP allowlist on every authenticated route, after authentication (it needs the
 * tenant): decided at once from the compiled allowlist the key lookup primed.
 */
@Injectable()
@ChainPlugin()
export class IpRestrictionPlugin implements GatewayPlugin {
  readonly name = 'ip-restriction';
  readonly priority = PRIORITY.ipRestriction;

  constructor(private readonly guard: IpAllowlistGuard) {}

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
