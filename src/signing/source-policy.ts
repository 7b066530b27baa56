import ipaddr from 'ipaddr.js';
import {
  buildImgproxyPath,
  decodeImgproxySource,
  type ImgproxyOption,
  type ImgproxyPath,
  type ImgproxySource,
  type ImgproxySourceRef,
} from './imgproxy-url';
import { SourceRejectedError, UrlRejectedError } from './signing.errors';

/**
 * The per-tenant source sandbox of docs/imgproxy.md, as a pure class: it decides which source a tenant's
 * URL may make a backend fetch, rewrites local sources into the tenant's folder and refuses
 * options that would loosen the backend's limits. It never resolves DNS: a host name that
 * resolves to a private address is stopped by the allow-list (only named hosts pass) and by
 * imgproxy's own IMGPROXY_ALLOW_*_SOURCE_ADDRESSES checks, its second line of defence.
 */

export interface SourcePolicyConfig {
  /** Global prefixes every tenant may fetch from, e.g. `https://cdn.example.com/images/`. */
  readonly allowedSources: readonly string[];
  /** Lets sources point at loopback, private, link-local and internal names (development only). */
  readonly allowPrivateAddresses: boolean;
  /** Source schemes the backends may use; `local`, `http` and `https` by default. */
  readonly allowedSchemes?: readonly string[];
}

export interface TenantSourceScope {
  readonly tenantId: string;
  /** The tenant's own prefixes, checked before the global list. */
  readonly allowedSources: readonly string[];
}

export interface ApprovedSource extends ImgproxySource {
  /** The scheme of the approved URL, lower case. */
  readonly scheme: string;
}

export interface ApprovedImgproxyPath {
  /** The unsigned path to sign with the pool's key and send upstream. */
  readonly upstreamPath: string;
  readonly source: ApprovedSource;
}

/** A parsed allow-list entry; compiled once per list. */
export interface SourcePrefix {
  readonly scheme: string;
  /** Lower case, without a trailing dot; IPv6 literals in normalized form, without brackets. */
  readonly host: string;
  readonly port: number | undefined;
  /** Always starts with `/`. */
  readonly path: string;
}

export const DEFAULT_ALLOWED_SCHEMES: readonly string[] = ['local', 'http', 'https'];

/**
 * Options that raise a limit the operator set on the backends (imgproxy calls them security
 * options and refuses them unless IMGPROXY_ALLOW_SECURITY_OPTIONS), plus `raw`, which streams the
 * source without the file size, format and resolution checks.
 */
export const LIMIT_RAISING_OPTIONS: ReadonlySet<string> = new Set([
  'max_src_resolution',
  'msr',
  'max_src_file_size',
  'msfs',
  'max_animation_frames',
  'maf',
  'max_animation_frame_resolution',
  'mafr',
  'max_result_dimension',
  'mrd',
  'raw',
]);

/** Options that make the backend fetch a second URL (imgproxy Pro), which would bypass the sandbox. */
export const SOURCE_FETCHING_OPTIONS: ReadonlySet<string> = new Set([
  'watermark_url',
  'wmu',
  'fallback_image_url',
  'fiu',
]);

const LOCAL_SCHEME = 'local';
const LOCAL_PREFIX = 'local:///';
const DEFAULT_PORTS: Readonly<Record<string, number>> = { http: 80, https: 443 };
const SCHEME_PATTERN = /^([A-Za-z][A-Za-z0-9+.-]*):/;
const HOST_NAME_PATTERN = /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/;
const PORT_PATTERN = /^[0-9]{1,5}$/;
const CANONICAL_IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
/** A last label like this makes resolvers (and WHATWG URL) read the whole host as an IPv4 number. */
const NUMERIC_LABEL = /^(?:0x[0-9a-f]*|[0-9]+)$/i;
const TENANT_ID_PATTERN = /^[A-Za-z0-9_-]+$/;
/** Enough to unwrap any realistic multiple encoding; each layer is checked. */
const MAX_DECODE_LAYERS = 4;
/**
 * Names that only resolve inside a private network: mDNS, Kubernetes services, cloud metadata
 * (`metadata.google.internal`) and common home/corporate suffixes.
 */
const INTERNAL_NAME_SUFFIXES = ['localhost', 'local', 'localdomain', 'internal', 'intranet', 'lan', 'home.arpa', 'svc'];

export class SourcePolicy {
  private readonly globalPrefixes: readonly SourcePrefix[];
  private readonly allowedSchemes: ReadonlySet<string>;
  private readonly allowPrivateAddresses: boolean;
  // Tenants come from a cache that keeps the same array between requests: compile it once.
  private readonly tenantPrefixes = new WeakMap<readonly string[], readonly SourcePrefix[]>();

  constructor(config: SourcePolicyConfig) {
    this.allowedSchemes = new Set((config.allowedSchemes ?? DEFAULT_ALLOWED_SCHEMES).map((s) => s.toLowerCase()));
    this.allowPrivateAddresses = config.allowPrivateAddresses;
    // A bad global entry is an operator error: fail at boot, naming it.
    this.globalPrefixes = config.allowedSources.map((prefix) => parseSourcePrefix(prefix));
  }

  /**
   * Checks a parsed tenant URL and returns the path to sign and send upstream. Options pass
   * through byte for byte; only the source is rewritten.
   */
  approve(path: ImgproxyPath, tenant: TenantSourceScope): ApprovedImgproxyPath {
    this.checkOptions(path.options);
    const source = this.approveSource(path.source, tenant);
    return { upstreamPath: buildImgproxyPath(path.optionsPath, source), source };
  }

  checkOptions(options: readonly ImgproxyOption[]): void {
    for (const option of options) {
      const name = fullyDecoded(option.name).toLowerCase();
      if (LIMIT_RAISING_OPTIONS.has(name)) {
        throw new UrlRejectedError(`The processing option "${name}" raises a backend limit and is not allowed`);
      }
      if (SOURCE_FETCHING_OPTIONS.has(name)) {
        throw new UrlRejectedError(`The processing option "${name}" fetches another URL and is not allowed`);
      }
    }
  }

  /** Decodes the source once (plain: percent, base64: base64), checks it and returns the URL to use. */
  approveSource(ref: ImgproxySourceRef, tenant: TenantSourceScope): ApprovedSource {
    const decoded = decodeImgproxySource(ref);
    const { scheme, url } = this.approveSourceUrl(decoded.url, tenant);
    return { encoding: decoded.encoding, url, extension: decoded.extension, scheme };
  }

  /** Checks a decoded source URL; returns it rewritten (local) or normalized (scheme and host case). */
  approveSourceUrl(url: string, tenant: TenantSourceScope): { scheme: string; url: string } {
    assertNoForbiddenCharacters(url);
    const schemeMatch = SCHEME_PATTERN.exec(url);
    if (!schemeMatch) throw new SourceRejectedError('The source must be an absolute URL with a scheme');
    const scheme = schemeMatch[1].toLowerCase();
    if (!this.allowedSchemes.has(scheme)) {
      throw new SourceRejectedError(`Sources with the scheme "${scheme}" are not allowed`);
    }
    const rest = url.slice(schemeMatch[0].length);
    if (scheme === LOCAL_SCHEME) return { scheme, url: this.rewriteLocal(rest, tenant) };
    return { scheme, url: this.approveRemote(scheme, rest, tenant) };
  }

  private rewriteLocal(afterScheme: string, tenant: TenantSourceScope): string {
    if (!TENANT_ID_PATTERN.test(tenant.tenantId)) {
      // A programming error, not a tenant's: the id is written into a file system path.
      throw new TypeError('tenantId must be a plain identifier');
    }
    const relative = afterScheme.slice('///'.length);
    if (!afterScheme.startsWith('///') || relative === '') {
      throw new SourceRejectedError('Local sources must look like local:///<path>');
    }
    if (relative.startsWith('/')) throw new SourceRejectedError('Absolute local paths are not allowed');
    assertNoTraversal(relative);
    return `${LOCAL_PREFIX}tenants/${tenant.tenantId}/${relative}`;
  }

  private approveRemote(scheme: string, afterScheme: string, tenant: TenantSourceScope): string {
    if (!afterScheme.startsWith('//')) throw new SourceRejectedError('Remote sources must look like scheme://host/path');
    const authorityEnd = firstIndexOf(afterScheme, ['/', '?', '#'], 2);
    const authority = afterScheme.slice(2, authorityEnd);
    const pathAndQuery = afterScheme.slice(authorityEnd);
    const location = parseAuthority(scheme, authority);

    const pathEnd = firstIndexOf(pathAndQuery, ['?', '#'], 0);
    const path = pathAndQuery.slice(0, pathEnd) || '/';
    assertNoTraversal(path);

    if ((scheme === 'http' || scheme === 'https') && !this.allowPrivateAddresses) {
      assertPublicHost(location);
    }
    const candidate = { scheme, host: location.host, port: location.port, path };
    const allowed =
      this.compiledTenantPrefixes(tenant.allowedSources).some((prefix) => prefixMatches(prefix, candidate)) ||
      this.globalPrefixes.some((prefix) => prefixMatches(prefix, candidate));
    if (!allowed) throw new SourceRejectedError('The source is not in the allowed sources of this tenant');

    const port = location.explicitPort === undefined ? '' : `:${location.explicitPort}`;
    return `${scheme}://${location.urlHost}${port}${pathAndQuery}`;
  }

  private compiledTenantPrefixes(list: readonly string[]): readonly SourcePrefix[] {
    let compiled = this.tenantPrefixes.get(list);
    if (!compiled) {
      // Tenant lists are validated when written (parseSourcePrefix); an entry that still does not
      // parse matches nothing, so a bad entry can only narrow what a tenant may fetch.
      compiled = list.flatMap((entry) => {
        try {
          return [parseSourcePrefix(entry)];
        } catch {
          return [];
        }
      });
      this.tenantPrefixes.set(list, compiled);
    }
    return compiled;
  }
}

/**
 * Parses an allow-list entry such as `https://cdn.example.com/images/`. Throws a TypeError with a
 * readable reason; the admin API and the config schema use it to validate entries when written.
 */
export function parseSourcePrefix(prefix: string): SourcePrefix {
  const schemeMatch = SCHEME_PATTERN.exec(prefix);
  if (!schemeMatch || !prefix.slice(schemeMatch[0].length).startsWith('//')) {
    throw new TypeError(`"${prefix}" is not an allowed-source prefix like https://host/path/`);
  }
  const scheme = schemeMatch[1].toLowerCase();
  if (scheme === LOCAL_SCHEME) throw new TypeError('local sources are always allowed, inside the tenant folder');
  if (prefix.includes('?') || prefix.includes('#')) {
    throw new TypeError(`"${prefix}" must not contain a query or fragment`);
  }
  const afterScheme = prefix.slice(schemeMatch[0].length);
  const authorityEnd = firstIndexOf(afterScheme, ['/'], 2);
  let location: HostLocation;
  try {
    location = parseAuthority(scheme, afterScheme.slice(2, authorityEnd));
  } catch (error) {
    throw new TypeError(`"${prefix}": ${(error as Error).message}`);
  }
  const path = afterScheme.slice(authorityEnd) || '/';
  if (/[\s\\]/.test(path) || path.split('/').includes('..')) {
    throw new TypeError(`"${prefix}" has an invalid path`);
  }
  return { scheme, host: location.host, port: location.port, path };
}

interface HostLocation {
  readonly host: string;
  /** The host as written back into a URL (IPv6 in brackets). */
  readonly urlHost: string;
  readonly kind: 'name' | 'ipv4' | 'ipv6';
  readonly explicitPort: number | undefined;
  /** The explicit port, or the scheme's default one. */
  readonly port: number | undefined;
}

/**
 * A deliberately narrow authority parser: no user info (the `a.com@b.com` trick), no
 * percent-encoding, ASCII host names only (IDNs come as punycode), and numeric IPv4 forms other
 * than dotted decimal refused, so the gateway and every resolver behind it read the same host.
 */
function parseAuthority(scheme: string, authority: string): HostLocation {
  if (authority.includes('@')) throw new SourceRejectedError('Source URLs must not contain user information');
  if (authority.includes('%')) throw new SourceRejectedError('The source host must not be percent-encoded');

  let hostPart: string;
  let portPart: string | undefined;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close < 0) throw new SourceRejectedError('The source host is not a valid IPv6 literal');
    hostPart = authority.slice(0, close + 1);
    const after = authority.slice(close + 1);
    if (after !== '' && !after.startsWith(':')) throw new SourceRejectedError('The source host is invalid');
    portPart = after === '' ? undefined : after.slice(1);
  } else {
    const colon = authority.indexOf(':');
    hostPart = colon < 0 ? authority : authority.slice(0, colon);
    portPart = colon < 0 ? undefined : authority.slice(colon + 1);
  }

  let explicitPort: number | undefined;
  if (portPart !== undefined) {
    explicitPort = PORT_PATTERN.test(portPart) ? Number(portPart) : NaN;
    if (!(explicitPort >= 1 && explicitPort <= 65535)) throw new SourceRejectedError('The source port is invalid');
  }
  const port = explicitPort ?? DEFAULT_PORTS[scheme];

  if (hostPart.startsWith('[')) {
    const literal = hostPart.slice(1, -1);
    if (!ipaddr.IPv6.isValid(literal)) throw new SourceRejectedError('The source host is not a valid IPv6 literal');
    const host = ipaddr.IPv6.parse(literal).toNormalizedString();
    return { host, urlHost: `[${literal.toLowerCase()}]`, kind: 'ipv6', explicitPort, port };
  }

  const host = hostPart.toLowerCase().replace(/\.$/, '');
  if (!HOST_NAME_PATTERN.test(host)) throw new SourceRejectedError('The source host is invalid');
  const labels = host.split('.');
  if (NUMERIC_LABEL.test(labels[labels.length - 1])) {
    if (!CANONICAL_IPV4.test(host)) {
      throw new SourceRejectedError('Numeric source hosts must be written as dotted-decimal IPv4 addresses');
    }
    return { host, urlHost: host, kind: 'ipv4', explicitPort, port };
  }
  return { host, urlHost: host, kind: 'name', explicitPort, port };
}

/** Loopback, private, link-local, unique-local, metadata and other non-public destinations. */
function assertPublicHost(location: HostLocation): void {
  if (location.kind === 'ipv4') {
    if (ipaddr.IPv4.parse(location.host).range() !== 'unicast') throw privateAddress();
    return;
  }
  if (location.kind === 'ipv6') {
    const address = ipaddr.IPv6.parse(location.host);
    // ::/96 holds the deprecated IPv4-compatible form (::127.0.0.1), which ipaddr.js calls unicast.
    const ipv4Compatible = address.parts.slice(0, 6).every((part) => part === 0);
    if (address.range() !== 'unicast' || ipv4Compatible) throw privateAddress();
    return;
  }
  const host = location.host;
  const internal = INTERNAL_NAME_SUFFIXES.some((suffix) => host === suffix || host.endsWith(`.${suffix}`));
  // A single-label name resolves through the search domains, i.e. to a service of the local network.
  if (internal || !host.includes('.')) throw privateAddress();
}

function privateAddress(): SourceRejectedError {
  return new SourceRejectedError('Sources on loopback, private, link-local or internal addresses are not allowed');
}

function prefixMatches(prefix: SourcePrefix, candidate: SourcePrefix): boolean {
  if (prefix.scheme !== candidate.scheme || prefix.host !== candidate.host || prefix.port !== candidate.port) {
    return false;
  }
  if (prefix.path.endsWith('/')) return candidate.path.startsWith(prefix.path);
  // `/images` allows `/images` and `/images/...`, not `/images-private`.
  return candidate.path === prefix.path || candidate.path.startsWith(`${prefix.path}/`);
}

/**
 * NUL, control characters and backslashes have no business in a source URL (some servers read a
 * backslash as `/`). Spaces are allowed: plain URLs like `a%20b.jpg` decode to them and imgproxy's HTTP
 * client encodes them again.
 */
function assertNoForbiddenCharacters(url: string): void {
  for (let i = 0; i < url.length; i++) {
    const code = url.charCodeAt(i);
    if (code < 0x20 || code === 0x7f || code === 0x5c) {
      throw new SourceRejectedError('The source URL contains control characters or backslashes');
    }
  }
}

/**
 * Refuses `..` segments in the path and in every further percent-decoding of it, since a backend,
 * a file system layer or a remote server may decode again (`%2e%2e`, `%252e%252e`). Deeper layers
 * are decoded leniently (a malformed escape is kept as is), so a stray `%zz` cannot hide a `%2e%2e`
 * from this check while a lenient server would still decode it.
 */
function assertNoTraversal(path: string): void {
  let layer = path;
  for (let depth = 1; ; depth++) {
    if (/[\0\\]/.test(layer)) throw new SourceRejectedError('The source path contains NUL or backslashes');
    for (const segment of layer.split('/')) {
      // `..;x` is `..` to servlet containers.
      if (segment === '..' || segment.startsWith('..;')) {
        throw new SourceRejectedError('The source path must not contain ".." segments');
      }
    }
    const decoded = lenientPercentDecode(layer);
    if (decoded === layer) return;
    if (depth >= MAX_DECODE_LAYERS) throw new SourceRejectedError('The source path is encoded too many times');
    layer = decoded;
  }
}

/** Decodes every valid `%XX` (as latin1, one character per byte) and keeps anything else. */
function lenientPercentDecode(text: string): string {
  return text.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

function fullyDecoded(text: string): string {
  let layer = text;
  for (let depth = 0; depth < MAX_DECODE_LAYERS; depth++) {
    const next = lenientPercentDecode(layer);
    if (next === layer) break;
    layer = next;
  }
  return layer;
}

function firstIndexOf(text: string, needles: readonly string[], from: number): number {
  let index = text.length;
  for (const needle of needles) {
    const at = text.indexOf(needle, from);
    if (at >= 0 && at < index) index = at;
  }
  return index;
}
