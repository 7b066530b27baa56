import { Injectable } from '@nestjs/common';
import { ApiKeyGuard } from './api-key.guard';
import type { GatewayContext } from '../../gateway/context';
import { ChainPlugin, type CompiledSteps, type GatewayPlugin, PRIORITY } from '../../gateway/plugin';
import type { RouteSpec } from '../../gateway/route-spec';

/**
 * `auth: api-key` (and the image route `/i/*`): the key from `X-API-Key` or `Authorization:
 * Bearer`, through the very ApiKeyGuard instance the Nest routes use, without its execution
 * context: a cached key costs no database query and no Redis call.
 */
@Injectable()
@ChainPlugin()
export class KeyAuthPlugin implements GatewayPlugin {
  readonly name = 'key-auth';
  readonly priority = PRIORITY.keyAuth;

  constructor(private readonly guard: ApiKeyGuard) {}

  compile(route: RouteSpec): CompiledSteps | undefined {
    if (route.auth !== 'api-key') return undefined;
    const scopes = route.scopes;
    const guard = this.guard;
    return {
      access: (ctx: GatewayContext) => {
        const auth = guard.authenticate(ctx, scopes);
        return auth instanceof Promise ? auth.then(passed) : undefined;
      },
    };
  }
}

function passed(): undefined {
  return undefined;
}
