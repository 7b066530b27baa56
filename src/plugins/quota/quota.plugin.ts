import { Injectable, OnModuleInit } from '@nestjs/common';
import type { GatewayContext } from '../../gateway/context';
import { type CompiledSteps, type GatewayPlugin, PRIORITY } from '../../gateway/plugin';
import { PluginRegistry } from '../../gateway/plugin-registry';
import type { RouteSpec } from '../../gateway/route-spec';
import { QuotaService } from '../../quotas/quota.service';

/**
 * The tenant's quotas on every authenticated route, decided from the counters the rate-limiting
 * step read in its round trip; the request is counted when its response ends.
 */
@Injectable()
export class QuotaPlugin implements GatewayPlugin, OnModuleInit {
  readonly name = 'quota';
  readonly priority = PRIORITY.quota;

  constructor(
    private readonly registry: PluginRegistry,
    private readonly quotas: QuotaService,
  ) {}

  onModuleInit(): void {
    this.registry.register(this);
  }

  compile(route: RouteSpec): CompiledSteps | undefined {
    if (!route.countsTowardQuota) return undefined;
    const quotas = this.quotas;
    return {
      access: (ctx: GatewayContext) => {
        const pending = quotas.admitContext(ctx);
        return pending === undefined ? undefined : pending.then(passed);
      },
    };
  }
}

function passed(): undefined {
  return undefined;
}
