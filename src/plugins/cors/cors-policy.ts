import type { CorsConfig } from '../../config/routes.config';

/** A CORS preflight: OPTIONS with `Origin` and `Access-Control-Request-Method`. */
export interface PreflightRequest {
  readonly origin: string;
  readonly method: string;
  readonly headers: string | undefined;
}

/**
 * One route's CORS rules, compiled once (docs/routes.md): which origins are allowed, and the
 * ready header pairs for preflights and for actual requests. A disallowed origin gets no
 * `Access-Control-Allow-*` header at all, so the browser refuses the response; the gateway never
 * reflects an arbitrary origin unless `*` was configured.
 */
export class CorsPolicy {
  private readonly anyOrigin: boolean;
  private readonly origins: ReadonlySet<string>;
  private readonly methods: string;
  private readonly allowMethods: ReadonlySet<string>;
  private readonly allowHeaders: string | undefined;
  private readonly credentials: boolean;
  private readonly maxAge: string | undefined;
  private readonly expose: string | undefined;

  constructor(config: CorsConfig, routeMethods: readonly string[]) {
    this.anyOrigin = config.origins.includes('*');
    this.origins = new Set(config.origins.filter((origin) => origin !== '*').map((origin) => origin.toLowerCase()));
    const methods = config.methods ?? routeMethods.filter((method) => method !== 'OPTIONS');
    this.allowMethods = new Set(methods);
    this.methods = methods.join(', ');
    this.allowHeaders = config.headers?.join(', ');
    this.credentials = config.credentials ?? false;
    this.maxAge = config.maxAgeSeconds !== undefined ? String(config.maxAgeSeconds) : undefined;
    this.expose = config.exposeHeaders?.length ? config.exposeHeaders.join(', ') : undefined;
  }

  allows(origin: string): boolean {
    return this.anyOrigin || this.origins.has(origin.toLowerCase());
  }

  /** Headers of the preflight answer; without any allow header when the origin or method is refused. */
  preflight(request: PreflightRequest): string[] {
    const out = ['vary', 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers'];
    if (!this.allows(request.origin) || !this.allowMethods.has(request.method.toUpperCase())) return out;
    out.push('access-control-allow-origin', this.originValue(request.origin), 'access-control-allow-methods', this.methods);
    // Without a configured list the requested headers are allowed: the route's auth still applies.
    const headers = this.allowHeaders ?? request.headers;
    if (headers) out.push('access-control-allow-headers', headers);
    if (this.credentials) out.push('access-control-allow-credentials', 'true');
    if (this.maxAge !== undefined) out.push('access-control-max-age', this.maxAge);
    return out;
  }

  /** Headers for an actual (non-preflight) request from `origin`, or undefined when not allowed. */
  actual(origin: string): string[] | undefined {
    if (!this.allows(origin)) return undefined;
    const out = ['access-control-allow-origin', this.originValue(origin)];
    if (this.credentials) out.push('access-control-allow-credentials', 'true');
    if (this.expose !== undefined) out.push('access-control-expose-headers', this.expose);
    return out;
  }

  /** `*` only without credentials; browsers refuse `*` on a credentialed request. */
  private originValue(origin: string): string {
    return this.anyOrigin && !this.credentials ? '*' : origin;
  }
}
