import { SourceRejectedError, UrlRejectedError } from './signing.errors';

/**
 * imgproxy URL parsing and building, mirroring imgproxy's own code (handlers/path.go,
 * options/parser/url.go, url_options.go) so that a signature computed by any imgproxy URL builder
 * verifies here exactly as it would on imgproxy.
 *
 * Everything works on the raw request path as bytes were received: no URL parser, no `..`
 * resolution, no decoding before the split. Paths are ASCII by construction (see
 * assertRawPathCharacters), so strings and bytes coincide.
 */

export type ImgproxySourceEncoding = 'plain' | 'base64';

export interface ImgproxyOption {
  readonly name: string;
  readonly args: readonly string[];
}

export interface ImgproxySourceRef {
  readonly encoding: ImgproxySourceEncoding;
  /**
   * plain: the text after `plain/` and before `@`, still percent-encoded;
   * base64: the segments joined without `/`, before `.`, still encoded.
   */
  readonly raw: string;
  /** The output format from `@ext` (plain) or `.ext` (base64), when given. */
  readonly extension: string | undefined;
}

export interface ImgproxyPath {
  /** The segment before the path: a signature, `insecure`, or anything when unsigned. */
  readonly signature: string;
  /** What the signature covers: `/` + everything after the signature segment, after the repairs. */
  readonly signedPath: string;
  /** The processing options as received (after the repairs): `''` or `/opt1:a/opt2:b`. */
  readonly optionsPath: string;
  readonly options: readonly ImgproxyOption[];
  readonly source: ImgproxySourceRef;
}

/** `/t/<keyId>/<signature>/...`: browser mode, signed with the key's URL-signing key and salt. */
export interface SignedModeImgproxyPath extends ImgproxyPath {
  readonly mode: 'signed';
  readonly keyId: string;
}

/** `/i/<signature-or-insecure>/...`: header mode, authenticated by an API key header. */
export interface HeaderModeImgproxyPath extends ImgproxyPath {
  readonly mode: 'header';
  readonly keyId: undefined;
}

export type GatewayImgproxyPath = SignedModeImgproxyPath | HeaderModeImgproxyPath;

export interface ImgproxySource {
  readonly encoding: ImgproxySourceEncoding;
  /** The decoded source URL, e.g. `local:///tenants/<id>/a.png` or `https://cdn.example.com/a.jpg`. */
  readonly url: string;
  readonly extension?: string | undefined;
}

export const SIGNED_MODE_PREFIX = '/t/';
export const HEADER_MODE_PREFIX = '/i/';

/** Far above any real imgproxy URL, low enough that hashing and splitting stay cheap. */
export const MAX_IMGPROXY_PATH_LENGTH = 16 * 1024;

const PLAIN_TOKEN = 'plain';
const ENCRYPTED_TOKEN = 'enc';
const INFO_TOKEN = 'info';
const PLAIN_MARKER = `/${PLAIN_TOKEN}/`;
/** imgproxy's default IMGPROXY_ARGUMENTS_SEPARATOR. */
const ARGUMENTS_SEPARATOR = ':';
/** imgproxy refuses a first segment naming a resizing type: it is the deprecated basic URL format. */
const BASIC_FORMAT_RESIZING_TYPES = new Set(['fit', 'fill', 'fill-down', 'force', 'auto']);
/** Go's RE2 `\S` is ASCII: anything but tab, newline, form feed, carriage return and space. */
const SCHEME_WITH_ONE_SLASH = /^([^\t\n\f\r ]+):\/([^/])/;
const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const EXTENSION_PATTERN = /^[A-Za-z0-9]{1,10}$/;
const BASE64URL_PATTERN = /^[A-Za-z0-9_-]*$/;
/** RFC 3986 unreserved characters, sub-delimiters and `/` pass unescaped; `:` depends on what follows. */
const KEPT_IN_PLAIN_SOURCE = new Uint8Array(256);
for (const char of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=/") {
  KEPT_IN_PLAIN_SOURCE[char.charCodeAt(0)] = 1;
}
/** A character outside that set other than `:`, or a `:/` that imgproxy's `scheme:/x` repair would rewrite. */
const NEEDS_PLAIN_ENCODING = /[^A-Za-z0-9\-._~!$&'()*+,;=/:]|:\/(?!\/)/;

/**
 * Parses a gateway request URL (`req.raw.url`: path and query, undecoded) in either mode.
 * Throws UrlRejectedError for anything that is not a usable imgproxy URL.
 */
export function parseGatewayImgproxyPath(rawUrl: string): GatewayImgproxyPath {
  const path = prepareRawPath(rawUrl);
  if (path.startsWith(SIGNED_MODE_PREFIX)) {
    const afterPrefix = path.slice(SIGNED_MODE_PREFIX.length);
    const slash = afterPrefix.indexOf('/');
    const keyId = slash < 0 ? afterPrefix : afterPrefix.slice(0, slash);
    if (!KEY_ID_PATTERN.test(keyId)) throw new UrlRejectedError('The key id segment of a signed URL is invalid');
    const rest = slash < 0 ? '' : afterPrefix.slice(slash);
    return { mode: 'signed', keyId, ...splitSignatureAndParse(rest) };
  }
  if (path.startsWith(HEADER_MODE_PREFIX)) {
    return { mode: 'header', keyId: undefined, ...splitSignatureAndParse(path.slice(HEADER_MODE_PREFIX.length - 1)) };
  }
  throw new UrlRejectedError('Image URLs start with /t/<keyId>/ or /i/');
}

/**
 * Parses a plain imgproxy request URL, `/<signature>/<options>/<source>` (with or without a
 * query), as an imgproxy server receives it. Used by the development worker.
 */
export function parseImgproxyPath(rawUrl: string): ImgproxyPath {
  return splitSignatureAndParse(prepareRawPath(rawUrl));
}

/**
 * Decodes a source reference exactly once, as imgproxy does: plain sources are percent-decoded
 * (Go's url.PathUnescape), base64 sources are URL-safe base64 with optional padding.
 */
export function decodeImgproxySource(source: ImgproxySourceRef): ImgproxySource {
  const bytes = source.encoding === 'plain' ? percentDecode(source.raw) : decodeBase64Source(source.raw);
  if (!bytes) throw new SourceRejectedError('The source URL is not validly encoded');
  const url = decodeUtf8(bytes);
  if (url === undefined) throw new SourceRejectedError('The source URL is not valid UTF-8');
  return { encoding: source.encoding, url, extension: source.extension };
}

/**
 * Builds the path to sign and send upstream: the options exactly as received, then the source in
 * the encoding it arrived in. Plain sources are percent-encoded only where imgproxy would
 * otherwise misread them; base64 sources are one URL-safe segment without padding.
 */
export function buildImgproxyPath(optionsPath: string, source: ImgproxySource): string {
  if (optionsPath !== '' && !optionsPath.startsWith('/')) {
    throw new TypeError('optionsPath must be empty or start with "/"');
  }
  if (source.extension !== undefined && !EXTENSION_PATTERN.test(source.extension)) {
    throw new TypeError('source extension must be alphanumeric');
  }
  if (source.encoding === 'plain') {
    const extension = source.extension ? `@${source.extension}` : '';
    return `${optionsPath}${PLAIN_MARKER}${encodePlainSource(source.url)}${extension}`;
  }
  const extension = source.extension ? `.${source.extension}` : '';
  return `${optionsPath}/${Buffer.from(source.url, 'utf8').toString('base64url')}${extension}`;
}

/**
 * Percent-encodes a decoded plain source so that imgproxy's parser gives it back unchanged:
 * `%`, `@` (the extension separator), `?` and `#` (cut off by HTTP), and everything outside
 * RFC 3986's unreserved and sub-delimiter characters. A `:` followed by `/` and another character
 * is encoded too, so imgproxy's `scheme:/x` repair cannot rewrite it, and in lower case, because
 * imgproxy replaces an upper-case `%3A` with `:` in the options part.
 */
export function encodePlainSource(url: string): string {
  const schemeEnd = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(url)?.[0].length ?? 0;
  const rest = url.slice(schemeEnd);
  // Most sources need no escaping at all; skip the byte loop for them.
  if (!NEEDS_PLAIN_ENCODING.test(rest)) return url;
  let out = url.slice(0, schemeEnd);
  const bytes = Buffer.from(rest, 'utf8');
  // IPv6 literals keep their brackets inside the authority, where URL parsers require them.
  const authorityEnd = schemeEnd === 0 ? 0 : authorityLength(bytes);
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i];
    if (byte === 0x3a) {
      out += bytes[i + 1] === 0x2f && bytes[i + 2] !== 0x2f ? '%3a' : ':';
    } else if (KEPT_IN_PLAIN_SOURCE[byte] === 1 || (i < authorityEnd && (byte === 0x5b || byte === 0x5d))) {
      out += String.fromCharCode(byte);
    } else {
      out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    }
  }
  return out;
}

/**
 * Go's url.PathUnescape on bytes: `%XX` sequences decoded, `+` kept, a malformed escape is an
 * error (returned as undefined).
 */
export function percentDecode(text: string): Buffer | undefined {
  if (!text.includes('%')) return Buffer.from(text, 'latin1');
  const out = Buffer.alloc(text.length);
  let length = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x25) {
      const high = hexValue(text.charCodeAt(i + 1));
      const low = hexValue(text.charCodeAt(i + 2));
      if (high < 0 || low < 0) return undefined;
      out[length++] = high * 16 + low;
      i += 2;
    } else {
      out[length++] = code & 0xff;
    }
  }
  return out.subarray(0, length);
}

function prepareRawPath(rawUrl: string): string {
  const queryStart = rawUrl.indexOf('?');
  const path = queryStart < 0 ? rawUrl : rawUrl.slice(0, queryStart);
  assertRawPathCharacters(path);
  return path;
}

/**
 * Only printable ASCII may appear in a raw path. HTTP clients percent-encode everything else;
 * refusing the rest keeps "the bytes that were signed" unambiguous (no latin1/UTF-8 guessing).
 */
function assertRawPathCharacters(path: string): void {
  if (path.length > MAX_IMGPROXY_PATH_LENGTH) throw new UrlRejectedError('The image URL is too long');
  for (let i = 0; i < path.length; i++) {
    const code = path.charCodeAt(i);
    if (code < 0x21 || code > 0x7e) {
      throw new UrlRejectedError('The image URL contains characters that must be percent-encoded');
    }
  }
}

/** `uri` is `/<signature>/<path>` (imgproxy's splitPathSignature after the prefix is cut). */
function splitSignatureAndParse(uri: string): ImgproxyPath {
  const trimmed = uri.startsWith('/') ? uri.slice(1) : uri;
  const slash = trimmed.indexOf('/');
  const signature = slash < 0 ? trimmed : trimmed.slice(0, slash);
  const path = slash < 0 ? '' : trimmed.slice(slash + 1);
  if (signature === '' || path === '') {
    throw new UrlRejectedError('The image URL needs a signature segment, processing options and a source');
  }
  if (signature === INFO_TOKEN) throw new UrlRejectedError('Image info requests are not supported');
  const signedPath = repairPath(`/${path}`);
  return { signature, signedPath, ...parseOptionsAndSource(signedPath) };
}

/**
 * imgproxy's redenormalizePath: some proxies and CDNs encode `:` as `%3A` in the options and
 * collapse `scheme://` to `scheme:/` in plain sources; imgproxy undoes both before verifying the
 * signature, so the signed path is the repaired one.
 *
 * Deliberate difference: imgproxy runs this on the path without its leading slash, so a plain
 * source directly after the signature (no options) is not found by its `/plain/` search and the
 * whole path is treated as options. Here the leading slash is kept, so both repairs apply to the
 * right parts in that case too. For paths that were not altered in transit the result is the same.
 */
function repairPath(path: string): string {
  const plainAt = path.indexOf(PLAIN_MARKER);
  const optionsPart = (plainAt < 0 ? path : path.slice(0, plainAt)).replaceAll('%3A', ':');
  if (plainAt < 0) return optionsPart;
  let plain = path.slice(plainAt + PLAIN_MARKER.length);
  const match = SCHEME_WITH_ONE_SLASH.exec(plain);
  if (match) {
    const scheme = match[1];
    const repaired = `${scheme}://${scheme === 'local' ? '/' : ''}${match[2]}`;
    plain = repaired + plain.slice(match[0].length);
  }
  return `${optionsPart}${PLAIN_MARKER}${plain}`;
}

/** imgproxy's parseURLOptions and DecodeURL, without decoding the source. */
function parseOptionsAndSource(signedPath: string): Pick<ImgproxyPath, 'optionsPath' | 'options' | 'source'> {
  const parts = signedPath.slice(1).split('/');
  if (BASIC_FORMAT_RESIZING_TYPES.has(parts[0])) {
    throw new UrlRejectedError('The deprecated basic imgproxy URL format is not supported');
  }

  // Options are the leading segments that contain the arguments separator; the first segment
  // without one starts the source.
  let sourceStart = 0;
  const options: ImgproxyOption[] = [];
  while (sourceStart < parts.length && parts[sourceStart].includes(ARGUMENTS_SEPARATOR)) {
    const [name, ...args] = parts[sourceStart].split(ARGUMENTS_SEPARATOR);
    options.push({ name, args });
    sourceStart++;
  }
  const optionsPath = sourceStart === 0 ? '' : `/${parts.slice(0, sourceStart).join('/')}`;
  const sourceParts = parts.slice(sourceStart);
  return { optionsPath, options, source: parseSourceParts(sourceParts) };
}

function parseSourceParts(parts: readonly string[]): ImgproxySourceRef {
  if (parts.length === 0) throw new UrlRejectedError('The source image URL is empty');
  if (parts[0] === ENCRYPTED_TOKEN && parts.length > 1) {
    throw new UrlRejectedError('Encrypted source URLs (enc/) are not supported');
  }
  if (parts[0] === PLAIN_TOKEN && parts.length > 1) {
    const [raw, extension] = splitExtension(parts.slice(1).join('/'), '@');
    return { encoding: 'plain', raw, extension };
  }
  const [raw, extension] = splitExtension(parts.join(''), '.');
  return { encoding: 'base64', raw, extension };
}

function splitExtension(encoded: string, separator: '@' | '.'): [string, string | undefined] {
  const pieces = encoded.split(separator);
  if (pieces[0] === '') throw new UrlRejectedError('The source image URL is empty');
  if (pieces.length > 2) throw new UrlRejectedError('The source image URL specifies more than one format');
  const extension = pieces.length === 2 && pieces[1] !== '' ? pieces[1] : undefined;
  if (extension !== undefined && !EXTENSION_PATTERN.test(extension)) {
    throw new UrlRejectedError('The output format extension is invalid');
  }
  return [pieces[0], extension];
}

/** Go's base64.RawURLEncoding after imgproxy trims `=`: a strict alphabet, no stray characters. */
function decodeBase64Source(raw: string): Buffer | undefined {
  const unpadded = raw.replace(/=+$/, '');
  if (!BASE64URL_PATTERN.test(unpadded) || unpadded.length % 4 === 1) return undefined;
  return Buffer.from(unpadded, 'base64url');
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeUtf8(bytes: Buffer): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    // A fatal TextDecoder throws only for malformed input, which is the answer we want.
    return undefined;
  }
}

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x37;
  if (code >= 0x61 && code <= 0x66) return code - 0x57;
  return -1;
}

function authorityLength(bytes: Buffer): number {
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 0x2f || bytes[i] === 0x3f || bytes[i] === 0x23) return i;
  }
  return bytes.length;
}
