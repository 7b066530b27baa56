import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { resolve } from 'node:path';
import { Injectable, Logger, OnApplicationShutdown, Optional } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { GatewayConfig } from '../../config/gateway-config';
import { GatewayMetrics } from '../../metrics/gateway-metrics.service';
import { Fill, type FillOwner, Waiter } from './cache-fill';
import { DEFAULT_VARY, baseKey, variantKey } from './cache-key';
import type { CacheHit, CacheLookup, CachePass, CacheRequest, CacheResponse, CacheWait, HeadersHook, UpstreamFetch } from './cache-lookup';
import { CachedEntry } from './cached-entry';
import { isConditional, notModified } from './conditional';
import { type DiskOpenOptions, type DiskRecord, DiskTier, type RecordMatch } from './disk-tier';
import { MemoryTier } from './memory-tier';

const PASS_BYPASS: CachePass = Object.freeze({ kind: 'pass', status: 'BYPASS' });
const PASS_MISS: CachePass = Object.freeze({ kind: 'pass', status: 'MISS' });

/** How long a resource found uncacheable (private, or too large) skips the cache: Varnish's hit-for-pass. */
const UNCACHEABLE_MARK_MS = 60_000;
/** Resources remembered as uncacheable, and Vary names remembered for resources with no entry. */
const MARKS_MAX = 10_000;
/** A coalesced request moved to another fill this often fetches alone (a backend whose Vary keeps changing). */
const MAX_MOVES = 2;

/** A memory hit: the entry and what this request gets from it. */
class MemoryHit implements CacheHit {
  readonly kind = 'hit';
  readonly status = 'HIT';
  readonly statusCode: number;

  constructor(
    private readonly entry: CachedEntry,
    private readonly notModified: boolean,
    private readonly headOnly: boolean,
  ) {
    this.statusCode = notModified ? 304 : 200;
  }

  respond(res: ServerResponse, extraHeaders?: readonly string[], onHeaders?: HeadersHook): number {
    return this.entry.write(res, this.notModified, this.headOnly, extraHeaders, onHeaders, Date.now());
  }
}

interface UncacheableMark {
  tenantId: string;
  source: string;
}

/** Who a purge selects: a tenant, optionally only sources starting with a prefix (docs/cache.md). */
export interface PurgeSelector {
  tenantId: string;
  prefix?: string | null;
}

/**
 * The cache of proxied responses (docs/cache.md): a memory tier, an optional disk tier, the
 * fetches in flight that identical misses coalesce onto, and purge. `lookup` is the whole request
 * path; everything it needs per request is a few map lookups.
 */
@Injectable()
export class ProxyCache implements FillOwner, OnApplicationShutdown {
  readonly maxEntryBytes: number;
  readonly disk: DiskTier | undefined;
  private readonly logger = new Logger('Cache');
  private readonly memory: MemoryTier;
  private readonly defaultTtlSeconds: number;
  /** Budget of bodies held while they stream (the memory tier's size: they are on their way into it). */
  private readonly inflightMaxBytes: number;
  private inflightBytes = 0;
  /** Joinable fills by variant key. */
  private readonly fills = new Map<string, Fill>();
  /** Every fill under way, joinable or not (a purge must reach them all). */
  private readonly active = new Set<Fill>();
  /** Base key → the Vary names of its stored entries, with how many entries (both tiers) hold it. */
  private readonly vary = new Map<string, { names: readonly string[]; refs: number }>();
  /** Vary names of responses seen but not stored (so the next lookup computes the right key). */
  private readonly recentVary = new LRUCache<string, readonly string[]>({ max: MARKS_MAX });
  private readonly uncacheable = new LRUCache<string, UncacheableMark>({ max: MARKS_MAX, ttl: UNCACHEABLE_MARK_MS });

  constructor(
    config: GatewayConfig,
    @Optional() private readonly metrics?: GatewayMetrics,
  ) {
    const cache = config.cache;
    this.maxEntryBytes = Math.min(cache.maxEntryBytes, cache.memoryMaxBytes);
    this.defaultTtlSeconds = cache.defaultTtlSeconds;
    this.inflightMaxBytes = cache.memoryMaxBytes;
    this.memory = new MemoryTier({
      maxBytes: cache.memoryMaxBytes,
      maxEntryBytes: this.maxEntryBytes,
      onRemove: (entry, evicted) => {
        this.unref(entry.base);
        if (evicted) this.metrics?.cacheEvicted('memory');
        this.metrics?.cacheBytes('memory', this.memory.bytes);
      },
    });
    this.disk = cache.dir
      ? new DiskTier({
          dir: resolve(cache.dir),
          maxBytes: cache.diskMaxBytes,
          log: this.logger,
          onAdd: (record) => {
            this.ref(record.base, record.varyNames);
            this.metrics?.cacheBytes('disk', this.disk!.bytes);
          },
          onRemove: (record, evicted) => {
            this.unref(record.base);
            if (evicted) this.metrics?.cacheEvicted('disk');
            this.metrics?.cacheBytes('disk', this.disk!.bytes);
          },
        })
      : undefined;
  }

  /**
   * The request path. A hit answers at once; a miss joins or starts a fetch (calling `fetch` when
   * this request leads one); see CacheLookup for each outcome.
   */
  lookup(request: CacheRequest, fetch: UpstreamFetch): CacheLookup {
    const method = request.method;
    if (method !== 'GET' && method !== 'HEAD') {
      this.metrics?.cacheRequest('bypass');
      return PASS_BYPASS;
    }
    const headers = request.requestHeaders;
    const base = baseKey(request.tenantId, request.upstreamPath);
    const key = variantKey(base, this.namesOf(base), headers);
    const now = Date.now();
    const entry = this.memory.get(key, now);
    if (entry !== undefined) {
      this.metrics?.cacheRequest('hit');
      return new MemoryHit(entry, isConditional(headers) && notModified(headers, entry.head.validators), method === 'HEAD');
    }
    if (this.uncacheable.has(base)) {
      this.metrics?.cacheRequest('bypass');
      return PASS_BYPASS;
    }
    if (this.disk?.has(key)) return { kind: 'wait', response: this.fromDisk(request, fetch, key) };
    const fill = this.fills.get(key);
    if (fill === undefined && !leadable(request)) {
      this.metrics?.cacheRequest('miss');
      return PASS_MISS;
    }
    this.metrics?.cacheRequest('miss');
    return this.waitFor(request, fetch, (waiter) => this.dispatch(waiter, base, key));
  }

  /** Drops a tenant's entries (all, or those whose source starts with `prefix`) here; returns how many. */
  purgeLocal(selector: PurgeSelector): number {
    const match = purgeMatch(selector);
    let dropped = this.memory.purge(match);
    dropped += this.disk?.purge(match) ?? 0;
    for (const fill of this.active) {
      if (!match(fill)) continue;
      fill.markPurged();
      this.unregister(fill);
    }
    const marks: string[] = [];
    for (const [base, mark] of this.uncacheable.entries()) if (match(mark)) marks.push(base);
    for (const base of marks) this.uncacheable.delete(base);
    return dropped;
  }

  /** Drops everything (both tiers), e.g. when purges may have been missed. */
  clear(): void {
    this.memory.clear();
    this.disk?.clear();
    for (const fill of this.active) {
      fill.markPurged();
      this.unregister(fill);
    }
    this.uncacheable.clear();
  }

  /** Rebuilds the disk tier's index in the background (docs/cache.md); resolves when it serves. */
  openDisk(options: DiskOpenOptions): Promise<void> {
    return this.disk?.open(options) ?? Promise.resolve();
  }

  /** Entries in memory and their bytes (tests, the benchmark). */
  get memoryStats(): { entries: number; bytes: number } {
    return { entries: this.memory.count, bytes: this.memory.bytes };
  }

  async onApplicationShutdown(): Promise<void> {
    await this.disk?.close();
  }

  // FillOwner: called by the fills.

  reserve(bytes: number): boolean {
    if (this.inflightBytes + bytes > this.inflightMaxBytes) return false;
    this.inflightBytes += bytes;
    return true;
  }

  release(bytes: number): void {
    this.inflightBytes -= bytes;
  }

  headKnown(fill: Fill): void {
    const names = fill.freshness!.varyNames;
    this.recentVary.set(fill.base, names);
    const known = this.vary.get(fill.base);
    if (known && fill.shareable) known.names = names;
    if (!fill.shareable) {
      this.markUncacheable(fill);
      this.unregister(fill);
    } else if (fill.realKey !== fill.registeredAs && fill.registeredAs !== undefined) {
      this.unregister(fill);
      if (fill.joinable && !this.fills.has(fill.realKey)) this.register(fill, fill.realKey);
    }
  }

  stoppedRetaining(fill: Fill): void {
    this.unregister(fill);
    // A 200 too large to keep: the next requests for it go straight through for a while.
    if (fill.head?.statusCode === 200 && fill.shareable && !fill.purged) this.markUncacheable(fill);
  }

  settled(fill: Fill): void {
    this.unregister(fill);
    this.active.delete(fill);
  }

  store(fill: Fill, body: Buffer): void {
    const now = Date.now();
    const entry = new CachedEntry(
      {
        key: fill.realKey,
        base: fill.base,
        tenantId: fill.tenantId,
        source: fill.source,
        varyNames: fill.freshness!.varyNames,
        storedAt: now,
        expiresAt: now + fill.freshness!.ttlSeconds * 1000,
      },
      fill.head!,
      body,
    );
    this.put(entry);
    this.disk?.write(entry);
  }

  redispatch(waiter: Waiter, solo: boolean): void {
    waiter.moves++;
    const base = baseKey(waiter.request.tenantId, waiter.request.upstreamPath);
    const key = variantKey(base, this.namesOf(base), waiter.request.requestHeaders);
    if (solo || waiter.moves > MAX_MOVES) this.lead(waiter, base, key, false);
    else this.dispatch(waiter, base, key);
  }

  // Internals.

  /** Joins the fill of `key`, or leads a new one (alone when the request may not lead a shared one). */
  private dispatch(waiter: Waiter, base: string, key: string): void {
    const fill = this.fills.get(key);
    if (fill !== undefined && fill.join(waiter)) {
      this.metrics?.cacheCoalesced();
      return;
    }
    this.lead(waiter, base, key, leadable(waiter.request));
  }

  private lead(waiter: Waiter, base: string, key: string, shared: boolean): void {
    const request = waiter.request;
    const fill = new Fill(this, request, base, key, request.ttlSeconds ?? this.defaultTtlSeconds, shared);
    fill.join(waiter);
    this.active.add(fill);
    if (shared && !this.fills.has(key)) this.register(fill, key);
    try {
      waiter.fetch(fill, request);
    } catch (error) {
      fill.fail(error);
    }
  }

  private waitFor(request: CacheRequest, fetch: UpstreamFetch, start: (waiter: Waiter) => void): CacheWait {
    return {
      kind: 'wait',
      response: new Promise<CacheResponse>((resolve, reject) => start(new Waiter(request, fetch, resolve, reject))),
    };
  }

  /** A disk entry, verified; when it cannot be used the request continues as a miss. */
  private async fromDisk(request: CacheRequest, fetch: UpstreamFetch, key: string): Promise<CacheResponse> {
    const entry = await this.disk!.read(key, Date.now());
    const headers = request.requestHeaders;
    if (entry !== undefined) {
      this.metrics?.cacheRequest('hit');
      this.put(entry);
      return new MemoryHit(entry, isConditional(headers) && notModified(headers, entry.head.validators), request.method === 'HEAD');
    }
    this.metrics?.cacheRequest('miss');
    const base = baseKey(request.tenantId, request.upstreamPath);
    return this.waitFor(request, fetch, (waiter) => this.dispatch(waiter, base, variantKey(base, this.namesOf(base), headers))).response;
  }

  private put(entry: CachedEntry): void {
    // The reference is taken first: the tier may drop the entry (too large) or evict others.
    this.ref(entry.base, entry.varyNames);
    if (!this.memory.set(entry)) this.unref(entry.base);
    this.metrics?.cacheBytes('memory', this.memory.bytes);
  }

  private namesOf(base: string): readonly string[] {
    return this.vary.get(base)?.names ?? this.recentVary.get(base) ?? DEFAULT_VARY;
  }

  private ref(base: string, names: readonly string[]): void {
    const known = this.vary.get(base);
    if (known === undefined) this.vary.set(base, { names, refs: 1 });
    else {
      known.refs++;
      known.names = names;
    }
  }

  private unref(base: string): void {
    const known = this.vary.get(base);
    if (known !== undefined && --known.refs <= 0) {
      this.vary.delete(base);
      // Still the best guess for the next lookup of this resource.
      this.recentVary.set(base, known.names);
    }
  }

  private register(fill: Fill, key: string): void {
    this.fills.set(key, fill);
    fill.registeredAs = key;
  }

  private unregister(fill: Fill): void {
    const key = fill.registeredAs;
    if (key === undefined) return;
    if (this.fills.get(key) === fill) this.fills.delete(key);
    fill.registeredAs = undefined;
  }

  private markUncacheable(fill: Fill): void {
    this.uncacheable.set(fill.base, { tenantId: fill.tenantId, source: fill.source });
  }
}

/** A request that may lead a shared fetch: a plain GET (a HEAD has no body to share, a conditional or Range one no full answer). */
function leadable(request: CacheRequest): boolean {
  const headers: IncomingHttpHeaders = request.requestHeaders;
  return request.method === 'GET' && headers.range === undefined && !isConditional(headers);
}

/** Entries (and fills, marks) a purge selects: the tenant's, with a source starting with the prefix. */
export function purgeMatch(selector: PurgeSelector): RecordMatch {
  const { tenantId } = selector;
  const prefix = selector.prefix ?? '';
  return prefix === '' ? (item) => item.tenantId === tenantId : (item) => item.tenantId === tenantId && item.source.startsWith(prefix);
}

export type { DiskRecord };
