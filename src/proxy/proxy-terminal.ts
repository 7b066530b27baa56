import { Injectable, OnModuleInit } from '@nestjs/common';
import { BackendRegistry } from '../upstreams/backends/backend-registry.service';
import { GatewayException } from '../common/errors/gateway.exception';
import { GatewayService } from '../gateway/gateway.service';
import type { Terminal } from '../gateway/chain';
import type { GatewayContext } from '../gateway/context';
import { PluginRegistry, type TerminalFactory } from '../gateway/plugin-registry';
import type { RouteSpec } from '../gateway/route-spec';
import type { ResponseFill } from './response-fill';
import { compileHeaderEdit } from './header-edit';
import { type ForwardPlan, Forwarder } from './forwarder';

/** The header a configured route's upstream learns the caller's tenant from; never taken from a client. */
export const TENANT_HEADER = 'x-gateway-tenant';

/**
 * The last step of every route: the proxy to the route's upstream (and, for `websocket: true`
 * routes, the upgrade pipe). Compiles each route's forwarding plan once: which headers pass,
 * which the route sets or removes, its retries, timeout and body limit. When the cache step put
 * a fill in the context's `cache` slot, this request leads a fetch and the answer goes there.
 */
@Injectable()
export class ProxyTerminal implements TerminalFactory, OnModuleInit {
  constructor(
    private readonly registry: PluginRegistry,
    private readonly forwarder: Forwarder,
    private readonly gateway: GatewayService,
    private readonly upstreams: BackendRegistry,
  ) {}

  onModuleInit(): void {
    this.registry.setTerminal(this);
    // A reload's upstreams are in place before its routes go live.
    this.gateway.onReload((next) => this.upstreams.configure(next.upstreams));
    this.registry.setUpgradeHandler((ctx, socket, head) => this.forwarder.upgrade(ctx, planOf(ctx), socket, head));
  }

  compile(route: RouteSpec): Terminal {
    const plan = forwardPlan(route);
    plans.set(route, plan);
    const forwarder = this.forwarder;
    return (ctx: GatewayContext) => {
      prepare(ctx, route);
      return forwarder.forward(ctx, plan, ctx.cache as ResponseFill | undefined);
    };
  }
}

/** Plans by route spec, for the upgrade entry (which has the matched route, not its terminal). */
const plans = new WeakMap<RouteSpec, ForwardPlan>();

function planOf(ctx: GatewayContext): ForwardPlan {
  const spec = ctx.compiled!.spec;
  let plan = plans.get(spec);
  if (!plan) plans.set(spec, (plan = forwardPlan(spec)));
  prepare(ctx, spec);
  return plan;
}

/** The per-request part of forwarding on a configured route: the stripped path and the tenant header. */
function prepare(ctx: GatewayContext, route: RouteSpec): void {
  if (route.stripPrefix !== undefined) {
    const stripped = stripPrefix(ctx.req!.url ?? '/', route.stripPrefix);
    if (stripped === undefined) throw new GatewayException('not_found', 'No route matches this path.');
    ctx.upstreamPath = stripped;
  }
  if (route.kind === 'proxy' && route.auth !== 'none' && ctx.auth) ctx.upstreamHeaders = { [TENANT_HEADER]: ctx.auth.tenantId };
}

export function forwardPlan(route: RouteSpec): ForwardPlan {
  const edit = compileHeaderEdit(route.headers?.request);
  const keep = new Set<string>();
  if (route.kind === 'proxy') {
    // An application behind a configured route wants its cookies, and what the gateway did not consume.
    keep.add('cookie');
    if (route.auth !== 'api-key') keep.add('x-api-key');
    if (route.auth === 'none') keep.add('authorization');
  }
  const strip = new Set<string>([TENANT_HEADER, ...(edit?.remove ?? [])]);
  return {
    upstream: route.upstream,
    retries: route.retries,
    timeoutMs: route.timeoutMs,
    maxBodyBytes: route.maxBodyBytes,
    keep,
    strip,
    set: Object.fromEntries(edit?.set ?? []),
    keepCookies: route.kind === 'proxy',
    renders: route.kind !== 'proxy',
  };
}

/** `/api/users/7?x` without `/api` is `/users/7?x`; undefined when the raw URL lacks the prefix (an encoded form of it). */
export function stripPrefix(url: string, prefix: string): string | undefined {
  if (!url.startsWith(prefix)) return undefined;
  const rest = url.slice(prefix.length);
  if (rest === '' || rest[0] === '?') return `/${rest}`;
  return rest[0] === '/' ? rest : undefined;
}
