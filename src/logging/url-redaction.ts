import type { GatewayConfig } from '../config/gateway-config';

export const REDACTED = '[Redacted]';

/** Query parameters that carry credentials by name, compared after percent-decoding and lower-casing. */
const SECRET_NAMES = new Set([
  'api_key',
  'apikey',
  'api-key',
  'x-api-key',
  'key',
  'token',
  'access_token',
  'auth',
  'authorization',
  'password',
  'secret',
  'signature',
  'sig',
  'signing_key',
  'signingkey',
  'salt',
]);

/**
 * Values that are credentials whatever parameter or path segment they travel in: an API key
 * (`igw_<keyId>_<secret>`), a bearer credential, and (HEX_RUN) 32 or more random bytes in hex,
 * the shape of a URL-signing key or salt, imgproxy's key and salt, the secrets key. A content
 * hash of that shape is masked too: the price of never logging a key.
 */
const SECRET_VALUE = /igw_[0-9A-Za-z]{12}_[0-9A-Za-z]+|bearer\s+\S/i;
const HEX_RUN = /[0-9a-f]{64,}/gi;

/** A run of 64+ hex characters with digits and letters both, as random bytes have. */
function holdsHexKey(text: string): boolean {
  for (const match of text.matchAll(HEX_RUN)) {
    if (/[0-9]/.test(match[0]) && /[a-f]/i.test(match[0])) return true;
  }
  return false;
}

/** Cheap test of a whole URL: when nothing in it could be a secret, it is logged as it is. */
const MAYBE_SECRET = /[?%#]|igw_|bearer|[0-9a-f]{64}/i;

/** Secrets shorter than this are not matched by value (they would mask ordinary text). */
const MIN_KNOWN_SECRET_LENGTH = 8;

function decoded(text: string): string {
  if (!text.includes('%') && !text.includes('+')) return text;
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    // A malformed escape: match the raw text, which is what was sent.
    return text;
  }
}

/**
 * Masks credentials in a URL before it is logged (the request line, `request_logs.path`):
 * credential parameters by their percent-decoded name (`?api%5Fkey=`), and credential values by
 * shape or by being one of the gateway's own secrets (admin token, metrics token, ...), wherever
 * they are: another parameter (`?x=igw_...`), a parameter name, a path segment. The component
 * holding one is replaced whole, so no encoding of it survives. Pure; built once per process.
 */
export class UrlRedactor {
  private readonly known: readonly string[];

  constructor(knownSecrets: readonly (string | undefined)[] = []) {
    const known = new Set<string>();
    for (const secret of knownSecrets) {
      if (secret && secret.length >= MIN_KNOWN_SECRET_LENGTH) known.add(secret.toLowerCase());
    }
    this.known = [...known];
  }

  /** The gateway's own secrets from its configuration, matched by value. */
  static forConfig(config: GatewayConfig): UrlRedactor {
    const { security, imgproxy, metrics } = config;
    return new UrlRedactor([security.adminToken, security.keyPepper, security.secretsKey, imgproxy.key, imgproxy.salt, imgproxy.secret, metrics.token]);
  }

  redact(url: string): string {
    if (!MAYBE_SECRET.test(url) && !this.holdsKnown(url)) return url;
    const hash = url.indexOf('#');
    const beforeHash = hash === -1 ? url : url.slice(0, hash);
    const fragment = hash === -1 ? '' : `#${this.component(url.slice(hash + 1))}`;
    const query = beforeHash.indexOf('?');
    const path = query === -1 ? beforeHash : beforeHash.slice(0, query);
    const redactedPath = this.path(path);
    if (query === -1) return redactedPath + fragment;
    return `${redactedPath}?${this.query(beforeHash.slice(query + 1))}${fragment}`;
  }

  /** The path alone, every segment checked (request logs keep no query string at all). */
  path(path: string): string {
    if (!MAYBE_SECRET.test(path) && !this.holdsKnown(path)) return path;
    return path
      .split('/')
      .map((segment) => this.component(segment))
      .join('/');
  }

  private query(query: string): string {
    return query
      .split('&')
      .map((pair) => {
        const eq = pair.indexOf('=');
        const name = eq === -1 ? pair : pair.slice(0, eq);
        if (this.isSecret(name)) return REDACTED;
        if (eq === -1) return pair;
        if (SECRET_NAMES.has(decoded(name).toLowerCase()) || this.isSecret(pair.slice(eq + 1))) return `${name}=${REDACTED}`;
        return pair;
      })
      .join('&');
  }

  private component(text: string): string {
    return this.isSecret(text) ? REDACTED : text;
  }

  private isSecret(raw: string): boolean {
    if (raw.length === 0) return false;
    const text = decoded(raw);
    return SECRET_VALUE.test(text) || holdsHexKey(text) || this.holdsKnown(text);
  }

  private holdsKnown(text: string): boolean {
    if (this.known.length === 0) return false;
    const lower = text.toLowerCase();
    for (const secret of this.known) if (lower.includes(secret)) return true;
    return false;
  }
}
