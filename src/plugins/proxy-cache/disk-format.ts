import { crc32 } from 'node:zlib';
import { CachedEntry, type EntryIdentity } from './cached-entry';
import { ResponseHead } from './response-head';

/**
 * One disk entry per file (docs/cache.md):
 *
 *   0  "IGWC"       magic
 *   4  u8           format version
 *   5  3 bytes      zero
 *   8  u32 BE       metadata length
 *   12 u32 BE       body length
 *   16 u32 BE       CRC-32 of metadata and body
 *   20 metadata     JSON: identity, status, header fields
 *   .. body
 *
 * The lengths catch a truncated file (a crash mid-write, a full disk) when the index is rebuilt;
 * the checksum catches any other damage when the entry is read. Either way the file is dropped,
 * never served.
 */
export const HEADER_BYTES = 20;
const MAGIC = 0x49474743; // "IGWC"
const VERSION = 1;
/** Metadata is a few hundred bytes; anything beyond this is damage, not a header. */
export const MAX_METADATA_BYTES = 256 * 1024;

interface Metadata {
  k: string;
  b: string;
  t: string;
  s: string;
  v: readonly string[];
  at: number;
  exp: number;
  c: number;
  h: readonly string[];
}

/** The file's bytes, as a header buffer plus the body (written with one writev, the body not copied). */
export function encodeEntry(entry: CachedEntry): Buffer[] {
  const { identity, head } = entry;
  const meta: Metadata = {
    k: identity.key,
    b: identity.base,
    t: identity.tenantId,
    s: identity.source,
    v: identity.varyNames,
    at: identity.storedAt,
    exp: identity.expiresAt,
    c: head.statusCode,
    // Age is kept with the fields so the entry's age keeps counting from the backend's.
    h: head.initialAge > 0 ? [...head.fields, 'age', String(head.initialAge)] : head.fields,
  };
  const metaBytes = Buffer.from(JSON.stringify(meta), 'utf8');
  const header = Buffer.alloc(HEADER_BYTES + metaBytes.length);
  header.writeUInt32BE(MAGIC, 0);
  header.writeUInt8(VERSION, 4);
  header.writeUInt32BE(metaBytes.length, 8);
  header.writeUInt32BE(entry.body.length, 12);
  header.writeUInt32BE(crc32(entry.body, crc32(metaBytes)), 16);
  metaBytes.copy(header, HEADER_BYTES);
  return [header, entry.body];
}

/** The fixed header of a file: lengths, or undefined when it is not an entry of this version. */
export function decodeHeader(bytes: Buffer): { metaLength: number; bodyLength: number; crc: number } | undefined {
  if (bytes.length < HEADER_BYTES || bytes.readUInt32BE(0) !== MAGIC || bytes.readUInt8(4) !== VERSION) return undefined;
  const metaLength = bytes.readUInt32BE(8);
  if (metaLength === 0 || metaLength > MAX_METADATA_BYTES) return undefined;
  return { metaLength, bodyLength: bytes.readUInt32BE(12), crc: bytes.readUInt32BE(16) };
}

/** Identity and head from the metadata bytes; undefined when they do not parse. */
export function decodeMetadata(bytes: Buffer): { identity: EntryIdentity; head: ResponseHead } | undefined {
  let meta: Metadata;
  try {
    meta = JSON.parse(bytes.toString('utf8')) as Metadata;
  } catch {
    return undefined;
  }
  const valid =
    typeof meta.k === 'string' &&
    typeof meta.b === 'string' &&
    typeof meta.t === 'string' &&
    typeof meta.s === 'string' &&
    Array.isArray(meta.v) &&
    Number.isFinite(meta.at) &&
    Number.isFinite(meta.exp) &&
    Number.isInteger(meta.c) &&
    Array.isArray(meta.h) &&
    meta.h.length % 2 === 0 &&
    meta.h.every((field) => typeof field === 'string');
  if (!valid) return undefined;
  return {
    identity: { key: meta.k, base: meta.b, tenantId: meta.t, source: meta.s, varyNames: meta.v, storedAt: meta.at, expiresAt: meta.exp },
    head: new ResponseHead(meta.c, meta.h),
  };
}

/** A whole file back into an entry, or undefined when any check fails. */
export function decodeEntry(file: Buffer): CachedEntry | undefined {
  const header = decodeHeader(file);
  if (!header || file.length !== HEADER_BYTES + header.metaLength + header.bodyLength) return undefined;
  const metaEnd = HEADER_BYTES + header.metaLength;
  const metaBytes = file.subarray(HEADER_BYTES, metaEnd);
  const body = file.subarray(metaEnd);
  if (crc32(body, crc32(metaBytes)) !== header.crc) return undefined;
  const decoded = decodeMetadata(metaBytes);
  if (!decoded) return undefined;
  return new CachedEntry(decoded.identity, decoded.head, body);
}
