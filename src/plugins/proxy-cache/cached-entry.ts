import type { ServerResponse } from 'node:http';
import { type HeadersHook, ResponseHead, writeHead } from './response-head';

/** What a stored entry says about itself, beside its head and body (kept in the disk file's header). */
export interface EntryIdentity {
  /** Variant key (docs/cache.md). */
  readonly key: string;
  /** Base key: tenant + upstream path. */
  readonly base: string;
  readonly tenantId: string;
  /** Source URL purges are matched against (the tenant's own view of it). */
  readonly source: string;
  /** The Vary names of the response, sorted. */
  readonly varyNames: readonly string[];
  /** Epoch milliseconds. */
  readonly storedAt: number;
  readonly expiresAt: number;
}

/** Bookkeeping of one entry beyond its bytes (object, arrays, map slot), counted against memoryMaxBytes. */
const ENTRY_OVERHEAD_BYTES = 512;

/**
 * One stored response: a 200 with its whole body in one Buffer and its head precomputed, so a
 * hit is one `writeHead` and one `end`.
 */
export class CachedEntry implements EntryIdentity {
  /** Bytes counted against the memory budget. */
  readonly size: number;
  private readonly okOwn: string[];

  constructor(
    readonly identity: EntryIdentity,
    readonly head: ResponseHead,
    readonly body: Buffer,
  ) {
    this.okOwn = ['content-length', String(body.length)];
    let headerBytes = 0;
    for (const field of head.fields) headerBytes += field.length;
    this.size = body.length + headerBytes + (identity.key.length + identity.source.length) * 2 + ENTRY_OVERHEAD_BYTES;
  }

  get key(): string {
    return this.identity.key;
  }
  get base(): string {
    return this.identity.base;
  }
  get tenantId(): string {
    return this.identity.tenantId;
  }
  get source(): string {
    return this.identity.source;
  }
  get varyNames(): readonly string[] {
    return this.identity.varyNames;
  }
  get storedAt(): number {
    return this.identity.storedAt;
  }
  get expiresAt(): number {
    return this.identity.expiresAt;
  }

  /**
   * Writes the entry as a 200 (or a 304 when the request's validators match) and returns the body
   * bytes written. `headOnly` for HEAD.
   */
  write(res: ServerResponse, notModified: boolean, headOnly: boolean, extra: readonly string[] | undefined, hook: HeadersHook | undefined, now: number): number {
    const age = String(this.head.initialAge + Math.max(0, Math.floor((now - this.identity.storedAt) / 1000)));
    if (notModified) {
      writeHead(res, 304, this.head.notModifiedFields, ['age', age, 'x-cache-status', 'HIT'], extra, hook);
      res.end();
      return 0;
    }
    writeHead(res, 200, this.head.fields, [...this.okOwn, 'age', age, 'x-cache-status', 'HIT'], extra, hook);
    if (headOnly) {
      res.end();
      return 0;
    }
    res.end(this.body);
    return this.body.length;
  }
}
