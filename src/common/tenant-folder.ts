import { join, resolve } from 'node:path';

/**
 * `<uploads.root>/tenants/<tenantId>`: the one place a tenant's files live (docs/imgproxy.md), shared by
 * uploads (which write there), the source sandbox (which rewrites `local:///` into it) and
 * tenant deletion (which removes it). Tenant ids are uuids, so they are safe path segments.
 */
export function tenantFolder(uploadsRoot: string, tenantId: string): string {
  return join(resolve(uploadsRoot), 'tenants', tenantId);
}
