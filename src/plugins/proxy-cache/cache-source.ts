/**
 * Sources as purges see them (docs/cache.md): the URL the tenant wrote, decoded, with the scheme and
 * host in lower case, local sources relative to the tenant's own folder (`local:///avatars/a.jpg`,
 * the same string an upload answers with as its `source`).
 */

const LOCAL_TENANTS = 'local:///tenants/';
const SCHEME_AND_HOST = /^([A-Za-z][A-Za-z0-9+.-]*):(\/\/[^/?#]*)?/;

/**
 * The tenant's view of a source the sandbox approved: `local:///tenants/<id>/a.jpg` becomes
 * `local:///a.jpg`; remote URLs are already normalised by the sandbox.
 */
export function tenantSourceUrl(approvedUrl: string, tenantId: string): string {
  const own = `${LOCAL_TENANTS}${tenantId}/`;
  return approvedUrl.startsWith(own) ? `local:///${approvedUrl.slice(own.length)}` : approvedUrl;
}

/** A purge prefix in the form sources are stored: scheme and host in lower case, the rest as given. */
export function normalizeSourcePrefix(prefix: string): string {
  return prefix.replace(SCHEME_AND_HOST, (whole: string, scheme: string, authority: string | undefined) =>
    authority === undefined ? `${scheme.toLowerCase()}:` : `${scheme.toLowerCase()}:${authority.toLowerCase()}`,
  );
}

/** What a purge prefix must look like: a scheme, then anything printable. */
export const SOURCE_PREFIX_PATTERN = /^[A-Za-z][A-Za-z0-9+.-]*:[^\s\u0000-\u001f\u007f]*$/;
