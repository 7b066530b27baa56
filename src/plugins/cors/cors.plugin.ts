import type { OutgoingHttpHeaders } from 'node:http';
import { Injectable } from '@nestjs/common';
import { GatewayException } from '../../common/errors/gateway.exception';
import type { GatewayContext } from '../../gateway/context';
import { ChainPlugin, type CompiledSteps, type GatewayPlugin, HANDLED, PRIORITY } from '../../gateway/plugin';
import { type RouteSpec, allowedMethods } from '../../gateway/route-spec';
import { CorsPolicy } from './cors-policy';

/**
 * `cors:` on a route (image routes included). Runs first (Kong's priority 2000): a browser's
 * preflight carries no credentials, so it is answered here, before authentication, with 204 and
 * the allow headers, or none for a disallowed origin. An actual request from an allowed origin
 * gets `Access-Control-Allow-Origin` on whatever answer is written, refusals included, so a page
 * can read the error; `Vary: Origin` is merged into the response's own Vary on every answer.
 */
@Injectable()
@ChainPlugin()
export class CorsPlugin implements GatewayPlugin {
  readonly name = 'cors';
  readonly priority = PRIORITY.cors;

  

  compile(route: RouteSpec): CompiledSteps | undefined {
    if (!route.cors) return undefined;
    const policy = new CorsPolicy(route.cors, allowedMethods({ methods: route.methods, cors: undefined }));
    const optionsProxied = route.methods.includes('OPTIONS');
    const allow = allowedMethods(route).join(', ');
    return {
      access: (ctx: GatewayContext) => {
        const req = ctx.req!;
        const origin = req.headers.origin;
        if (req.method === 'OPTIONS') {
          const method = req.headers['access-control-request-method'];
          if (origin !== undefined && typeof method === 'string') {
            answerPreflight(ctx, policy.preflight({ origin, method, headers: joined(req.headers['access-control-request-headers']) }));
            return HANDLED;
          }
          if (!optionsProxied) return new GatewayException('method_not_allowed', `This route answers ${allow}.`, { allow }, { allow });
        }
        if (origin === undefined) return undefined;
        const headers = policy.actual(origin);
        if (headers) for (let i = 0; i < headers.length; i += 2) ctx.header(headers[i], headers[i + 1]);
        return undefined;
      },
      // Every answer of a CORS route depends on Origin (with it or without it), so a shared cache
      // must never hand one origin's answer, or a no-CORS answer, to another.
      response: (_ctx: GatewayContext, _status: number, headers: OutgoingHttpHeaders) => {
        headers.vary = mergeVary(headers.vary, 'Origin');
      },
    };
  }
}

function answerPreflight(ctx: GatewayContext, headers: string[]): void {
  const res = ctx.res!;
  ctx.gatewayStatus = 204;
  const out: OutgoingHttpHeaders = { 'x-request-id': ctx.requestId, 'content-length': 0 };
  for (let i = 0; i < headers.length; i += 2) out[headers[i]] = headers[i + 1];
  res.writeHead(204, out);
  res.end();
}

function joined(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Adds `name` to a Vary value unless it is already there (or the value is `*`). */
export function mergeVary(current: OutgoingHttpHeaders[string], name: string): string {
  const text = Array.isArray(current) ? current.join(', ') : current === undefined ? '' : String(current);
  if (text.trim() === '') return name;
  const names = text.split(',').map((part) => part.trim().toLowerCase());
  return names.includes('*') || names.includes(name.toLowerCase()) ? text : `${text}, ${name}`;
}
