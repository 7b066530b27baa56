import { Injectable } from '@nestjs/common';
import type { GatewayContext } from '../../gateway/context';
import { ChainPlugin, type CompiledSteps, type GatewayPlugin, PRIORITY, type StepOutcome } from '../../gateway/plugin';
import type { RouteSpec } from '../../gateway/route-spec';
import { AdmissionService } from './admission.service';
import type { AdmissionResult } from '../../gateway/admission';

/**
 * Every rate-limit bucket of the request (the caller's, the route's own, the route's capacity),
 * the quota check and the request count, in one call of the admission store: one Redis round
 * trip, or none under `local-sync`. The rate part decides here; the quota part is left in the
 * context's `admission` slot for the quota step. The route's limits are compiled once.
 */
@Injectable()
@ChainPlugin()
export class RateLimitingPlugin implements GatewayPlugin {
  readonly name = 'rate-limiting';
  readonly priority = PRIORITY.rateLimiting;

  constructor(private readonly admission: AdmissionService) {}

  compile(route: RouteSpec): CompiledSteps {
    const { limits } = route;
    const compiled = this.admission.compileRoute({
      routeName: limits.bucket,
      capacity: limits.capacity,
      perCaller: limits.perCaller,
      policy: limits.policy,
      countsTowardQuota: route.countsTowardQuota,
    });
    const admission = this.admission;
    return {
      access: (ctx: GatewayContext) => {
        const decided = admission.admit(compiled, ctx);
        return decided instanceof Promise ? decided.then((result) => apply(ctx, result)) : apply(ctx, decided);
      },
    };
  }
}

function apply(ctx: GatewayContext, result: AdmissionResult): StepOutcome {
  ctx.admission = result;
  const headers = result.rateHeaders;
  for (let i = 0; i < headers.length; i++) ctx.header(headers[i][0], headers[i][1]);
  return result.rateRefusal;
}
