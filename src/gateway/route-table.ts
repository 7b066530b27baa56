import FindMyWay from 'find-my-way';
import type { Chain } from './chain';
import { type RouteSpec, allowedMethods } from './route-spec';

/** A route ready to serve: its spec, its compiled chain and its methods. */
export interface CompiledRoute {
  readonly spec: RouteSpec;
  readonly chain: Chain;
  /** Methods answered, HEAD implied by GET (OPTIONS when CORS is on). */
  readonly methods: ReadonlySet<string>;
  /** Plugin names in the order the chain runs them, for `GET /admin/v1/routes`. */
  readonly steps: readonly string[];
}

export type RouteMatch =
  | { readonly kind: 'route'; readonly route: CompiledRoute; readonly params: Record<string, string | undefined> }
  | { readonly kind: 'method-not-allowed'; readonly allow: string }
  | { readonly kind: 'none' };

const NONE: RouteMatch = { kind: 'none' };
/** The one method routes are filed under: matching is by path, then the route checks the method. */
const FILED_UNDER = 'GET';

/**
 * An immutable route table (Kong's router): built whole from a configuration, never changed; a
 * reload builds a new table and swaps the reference, so a request keeps the route (and chain) it
 * matched until it ends. Matching uses find-my-way, Fastify's own router: static segments,
 * `:param` and a trailing `*`, most specific first. Several routes may share a path with
 * different methods; a path that matches with a method no route allows answers 405 with `Allow`.
 */
export class RouteTable {
  private readonly router = FindMyWay({ maxParamLength: 4096, caseSensitive: true, ignoreTrailingSlash: false });
  private readonly byPath = new Map<string, CompiledRoute[]>();

  constructor(
    readonly routes: readonly CompiledRoute[],
    readonly version: number,
    readonly loadedAt: Date = new Date(),
  ) {
    for (const route of routes) {
      const group = this.byPath.get(route.spec.path);
      if (group) group.push(route);
      else this.byPath.set(route.spec.path, [route]);
    }
    for (const [path, group] of this.byPath) {
      const allow = [...new Set(group.flatMap((route) => allowedMethods(route.spec)))].join(', ');
      this.router.on(FILED_UNDER, path, noop, { group, allow });
    }
  }

  match(method: string, path: string): RouteMatch {
    const found = this.router.find(FILED_UNDER, path);
    if (found === null) return NONE;
    const { group, allow } = found.store as { group: CompiledRoute[]; allow: string };
    for (let i = 0; i < group.length; i++) {
      if (group[i].methods.has(method)) return { kind: 'route', route: group[i], params: found.params };
    }
    return { kind: 'method-not-allowed', allow };
  }

  byName(name: string): CompiledRoute | undefined {
    return this.routes.find((route) => route.spec.name === name);
  }
}

function noop(): void {}
