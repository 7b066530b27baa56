import type { GatewayConfig } from '../config/gateway-config';
import { Chain, type Terminal } from './chain';
import type { AccessStep, GatewayPlugin, ResponseStep } from './plugin';
import type { PluginRegistry } from './plugin-registry';
import { writeRefusal } from './refusal-writer';
import { type RouteSpec, allowedMethods, buildRouteSpecs } from './route-spec';
import { type CompiledRoute, RouteTable } from './route-table';

export interface CompileOptions {
  /** Per-step CPU counters in every chain (the benchmark turns them on). */
  timed?: boolean;
}

/**
 * Compiles a configuration into a route table: the route specs (image routes and YAML routes),
 * then for each route the steps every registered plugin contributes, in priority order, with the
 * proxy terminal last. The configuration was validated by the loader, cross-references included.
 */
export function compileRouteTable(config: GatewayConfig, plugins: PluginRegistry, version: number, options: CompileOptions = {}): RouteTable {
  const specs = buildRouteSpecs(config);
  const ordered = plugins.ordered();
  const terminal = plugins.terminal();
  const routes = specs.map((spec) => compileRoute(spec, ordered, terminal.compile(spec), options));
  return new RouteTable(routes, version);
}

function compileRoute(spec: RouteSpec, plugins: readonly GatewayPlugin[], terminal: Terminal, options: CompileOptions): CompiledRoute {
  const access: AccessStep[] = [];
  const names: string[] = [];
  const response: ResponseStep[] = [];
  const steps: string[] = [];
  for (const plugin of plugins) {
    const compiled = plugin.compile(spec);
    if (!compiled) continue;
    steps.push(plugin.name);
    if (compiled.access) {
      access.push(compiled.access);
      names.push(plugin.name);
    }
    if (compiled.response) response.push(compiled.response);
  }
  steps.push('proxy');
  return {
    spec,
    chain: new Chain(access, names, response, terminal, writeRefusal, { timed: options.timed }),
    methods: new Set(allowedMethods(spec)),
    steps,
  };
}
