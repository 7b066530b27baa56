import type { CacheLabel } from '../logging/logging.options';
import { UrlRedactor } from '../logging/url-redaction';

const SHAPE_ONLY = new UrlRedactor();

/** One row of `request_logs` (docs/architecture.md), built in memory when a tenant-facing request ends. */
export interface RequestLogEntry {
  createdAt: Date;
  requestId: string;
  tenantId: string | null;
  keyId: string | null;
  backend: string | null;
  method: string;
  /** Route name set by the controller (`proxy`, `signed-proxy`, `upload`, `api`). */
  route: string;
  /** Path without its query string (where `?api_key=` would be). */
  path: string;
  status: number;
  durationMs: number;
  bytesIn: number;
  bytesOut: number;
  clientIp: string | null;
  /** How the response cache answered (`hit`, `miss`, `bypass`); null on a route without a cache. */
  cache: CacheLabel | null;
}

/** The routes whose requests are logged to PostgreSQL; admin, health and metrics are not. */
export const LOGGED_ROUTES: ReadonlySet<string> = new Set(['proxy', 'signed-proxy', 'upload', 'api']);

const MAX_PATH_LENGTH = 2048;

/**
 * The raw URL's path: the query string is dropped, path segments holding a credential (an API
 * key, a configured secret, see src/logging/url-redaction.ts) are masked, overlong paths are cut.
 */
export function loggablePath(url: string, redactor: UrlRedactor = SHAPE_ONLY): string {
  const q = url.indexOf('?');
  const path = redactor.path(q === -1 ? url : url.slice(0, q));
  return path.length > MAX_PATH_LENGTH ? path.slice(0, MAX_PATH_LENGTH) : path;
}
