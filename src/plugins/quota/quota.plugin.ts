import { Injectable } from '@nestjs/common';
import type { GatewayContext } from '../../gateway/context';
import { ChainPlugin, type CompiledSteps, type GatewayPlugin, PRIORITY } from '../../gateway/plugin';
import type { RouteSpec } from '../../gateway/route-spec';
import { AdmissionService } from '../rate-limiting/admission.service';

/**
 * The tenant's quotas on every authenticated route: decided by the rate-limiting step's one call
 * (its answer waits in the context's `admission` slot), refused here (429 `quota_exceeded`) with
 * the `X-Quota-*` headers. The request was counted at admission; when its response is over its
 * bytes are settled (batched), refunded when the gateway answered a 5xx of its own, and marked a
 * render when the backend produced the answer.
 */
@Injectable()
@ChainPlugin()
export class QuotaPlugin implements GatewayPlugin {
  readonly name = 'quota';
  readonly priority = PRIORITY.quota;

  constructor(private readonly admission: AdmissionService) {}

  compile(route: RouteSpec): CompiledSteps | undefined {
    if (!route.countsTowardQuota) return undefined;
    const admission = this.admission;
    const settle = (ctx: GatewayContext) => {
      const ticket = ctx.admission!.ticket!;
      const status = ctx.res?.statusCode ?? 0;
      const gatewayError = ctx.gatewayStatus >= 500;
      admission.settle(ticket, {
        bytesIn: ctx.bytesIn,
        bytesOut: ctx.bytesOut,
        gatewayError,
        render: !gatewayError && ctx.backend !== undefined && ctx.cacheStatus !== 'HIT' && status >= 200 && status < 300,
      });
    };
    return {
      access: (ctx: GatewayContext) => {
        const result = ctx.admission;
        if (result === undefined) return undefined;
        const headers = result.quotaHeaders;
        for (let i = 0; i < headers.length; i++) ctx.header(headers[i][0], headers[i][1]);
        if (result.quotaRefusal) return result.quotaRefusal;
        if (result.ticket) ctx.onEnd(settle);
        return undefined;
      },
    };
  }
}
