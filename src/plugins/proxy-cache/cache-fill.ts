import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { GatewayException } from '../../common/errors/gateway.exception';
import type { ByteSink, CacheFill, CacheRequest, CacheResponse, UpstreamFetch } from './cache-lookup';
import { variantKey } from './cache-key';
import { isConditional, notModified } from './conditional';
import { type Freshness, responseFreshness } from './freshness';
import { type HeadersHook, ResponseHead, writeHead } from './response-head';

/** What a fill needs from the cache that owns it. */
export interface FillOwner {
  readonly maxEntryBytes: number;
  /** Takes bytes from the budget of bodies held while they stream; false when it is used up. */
  reserve(bytes: number): boolean;
  release(bytes: number): void;
  /** The response head arrived: the real Vary names and whether it can be shared are known. */
  headKnown(fill: Fill): void;
  /** The body is no longer held from its start: nobody new can join, nothing is stored. */
  stoppedRetaining(fill: Fill): void;
  /** Done, failed or abandoned. */
  settled(fill: Fill): void;
  store(fill: Fill, body: Buffer): void;
  /** A waiter this fill cannot serve (other Vary values, an unshareable response) needs an answer of its own. */
  redispatch(waiter: Waiter, solo: boolean): void;
}

/** One client waiting on a fill: its request, and where it is in the body. */
export class Waiter {
  res: ServerResponse | undefined = undefined;
  /** Index of the next chunk to write. */
  cursor = 0;
  /** Body bytes handed to `res`. */
  written = 0;
  /** Where those bytes are also counted as they go (the request's accounting). */
  sink: ByteSink | undefined = undefined;
  blocked = false;
  notModified = false;
  /** How often it moved to another fill; bounded, after which it fetches alone. */
  moves = 0;
  settle: { resolve: (bytes: number) => void; reject: (error: unknown) => void } | undefined = undefined;

  constructor(
    readonly request: CacheRequest,
    readonly fetch: UpstreamFetch,
    readonly resolve: (response: CacheResponse) => void,
    readonly reject: (error: unknown) => void,
  ) {}

  get headOnly(): boolean {
    return this.request.method === 'HEAD';
  }
}

const BODYLESS = new Set([204, 304]);

/**
 * One upstream fetch and everyone waiting on it (docs/cache.md, coalescing). The body is held from
 * its first byte while it may still be stored (up to maxEntryBytes): every client then writes from
 * that one copy at its own pace, a slow one delaying nobody, and late arrivals replay it from the
 * start. Beyond maxEntryBytes it streams through: the fetch goes at the pace of the fastest
 * client, chunks every client has written are released, and a client more than maxEntryBytes
 * behind is cut.
 */
export class Fill implements CacheFill {
  readonly signal: AbortSignal;
  private readonly abort = new AbortController();
  state: 'pending' | 'streaming' | 'done' | 'failed' = 'pending';
  head: ResponseHead | undefined = undefined;
  freshness: Freshness | undefined = undefined;
  realKey: string;
  /** Key it is registered under in the owner's map of joinable fills. */
  registeredAs: string | undefined = undefined;
  shareable = true;
  storing = false;
  /** The body is held from its first byte (joinable, storable). */
  retainAll = true;
  /** A purge selected it: never stored, never joined. */
  purged = false;
  private readonly chunks: (Buffer | undefined)[] = [];
  private received = 0;
  private reserved = 0;
  private trimmedTo = 0;
  private readonly waiters = new Set<Waiter>();
  private leader: Waiter | undefined = undefined;
  private drainListener: (() => void) | undefined = undefined;
  private paused = false;
  private error: unknown = undefined;

  constructor(
    private readonly owner: FillOwner,
    readonly request: CacheRequest,
    readonly base: string,
    readonly lookupKey: string,
    readonly ttlCapSeconds: number,
    /** The leader's request may be stored (GET, unconditional, no Range). */
    readonly storeIntent: boolean,
  ) {
    this.signal = this.abort.signal;
    this.realKey = lookupKey;
  }

  get tenantId(): string {
    return this.request.tenantId;
  }

  get source(): string {
    return this.request.sourceUrl;
  }

  /** New clients may still join and get the whole response. */
  get joinable(): boolean {
    return !this.purged && (this.state === 'pending' || (this.state === 'streaming' && this.retainAll && this.shareable));
  }

  /** Adds a waiter; false when this fill cannot serve it (then the caller finds it another way). */
  join(waiter: Waiter): boolean {
    if (!this.joinable) return false;
    if (this.leader === undefined) this.leader = waiter;
    else if (this.state === 'streaming' && variantKey(this.base, this.freshness!.varyNames, waiter.request.requestHeaders) !== this.realKey) return false;
    this.waiters.add(waiter);
    if (this.state === 'streaming') this.answer(waiter);
    return true;
  }

  response(statusCode: number, headers: IncomingHttpHeaders | OutgoingHttpHeaders): boolean {
    if (this.state !== 'pending') return false;
    this.state = 'streaming';
    const freshness = responseFreshness(statusCode, headers, this.ttlCapSeconds, Date.now());
    // An unshareable answer only ever reaches the leader: it may keep a cookie its route passes on.
    const head = ResponseHead.fromHeaders(statusCode, headers, !freshness.shareable && this.request.keepCookies === true);
    this.head = head;
    this.freshness = freshness;
    this.shareable = freshness.shareable;
    const fits = head.contentLength === undefined || head.contentLength <= this.owner.maxEntryBytes;
    this.retainAll = this.shareable && fits && !this.purged;
    this.storing = this.retainAll && this.storeIntent && freshness.storable;
    if (this.shareable) this.realKey = variantKey(this.base, freshness.varyNames, this.request.requestHeaders);
    this.owner.headKnown(this);

    for (const waiter of [...this.waiters]) {
      if (waiter === this.leader) this.answer(waiter);
      else if (!this.shareable) this.move(waiter, true);
      else if (variantKey(this.base, freshness.varyNames, waiter.request.requestHeaders) !== this.realKey) this.move(waiter, false);
      else this.answer(waiter);
    }
    if (!this.retainAll) this.owner.stoppedRetaining(this);
    if (this.waiters.size === 0 && !this.storing) {
      this.abandon();
      return false;
    }
    return true;
  }

  chunk(chunk: Buffer): boolean {
    if (this.state !== 'streaming' || chunk.length === 0) return this.state === 'streaming';
    this.chunks.push(chunk);
    this.received += chunk.length;
    if (this.retainAll) {
      if (this.received > this.owner.maxEntryBytes || !this.owner.reserve(chunk.length)) this.stopRetaining();
      else this.reserved += chunk.length;
    }
    for (const waiter of this.waiters) if (waiter.res !== undefined && !waiter.blocked) this.pump(waiter);
    if (!this.retainAll) this.trim();
    if (this.waiters.size === 0 && !this.storing) {
      this.abandon();
      return false;
    }
    if (this.retainAll || this.flowing()) return true;
    this.paused = true;
    return false;
  }

  onDrain(listener: () => void): void {
    if (this.paused) this.drainListener = listener;
    else queueMicrotask(listener);
  }

  end(): void {
    if (this.state === 'pending') {
      this.fail(new GatewayException('bad_gateway'));
      return;
    }
    if (this.state !== 'streaming') return;
    this.state = 'done';
    const complete = this.head!.contentLength === undefined || this.head!.contentLength === this.received;
    if (this.storing && !this.purged && complete) this.owner.store(this, Buffer.concat(this.chunks as Buffer[], this.received));
    this.releaseBudget();
    this.owner.settled(this);
    for (const waiter of this.waiters) if (waiter.res !== undefined && !waiter.blocked) this.pump(waiter);
  }

  fail(error: unknown): void {
    if (this.state === 'done' || this.state === 'failed') return;
    const before = this.state;
    this.state = 'failed';
    this.error = error;
    this.releaseBudget();
    this.owner.settled(this);
    for (const waiter of this.waiters) {
      if (before === 'pending') waiter.reject(error);
      else if (waiter.res !== undefined) {
        waiter.res.destroy();
        waiter.settle?.reject(error);
      }
      // Answered but not yet writing: its respond() sees the failure and rejects before writing.
    }
    this.waiters.clear();
  }

  /** A purge selected this fill: what is under way finishes for its clients, but nothing is kept or joined. */
  markPurged(): void {
    this.purged = true;
    if (this.storing) this.storing = false;
  }

  /** Writes the response to one waiter's client (its CacheResponse.respond). */
  attach(waiter: Waiter, res: ServerResponse, extra: readonly string[] | undefined, hook: HeadersHook | undefined, sink: ByteSink | undefined): Promise<number> {
    if (this.state === 'failed' || !this.waiters.has(waiter)) return Promise.reject(this.error ?? new GatewayException('bad_gateway'));
    if (res.destroyed) {
      // The client left while the head was on its way: it no longer holds the fetch up.
      this.leave(waiter);
      return Promise.resolve(0);
    }
    const head = this.head!;
    waiter.res = res;
    waiter.sink = sink;
    const status = waiter.notModified ? 304 : head.statusCode;
    const own = waiter.notModified || head.contentLength === undefined ? ['x-cache-status', 'MISS'] : ['content-length', String(head.contentLength), 'x-cache-status', 'MISS'];
    writeHead(res, status, waiter.notModified ? head.notModifiedFields : head.fields, own, extra, hook);
    return new Promise<number>((resolve, reject) => {
      waiter.settle = { resolve, reject };
      if (waiter.notModified || waiter.headOnly || BODYLESS.has(status) || status < 200) {
        this.leave(waiter);
        res.end();
        resolve(0);
        return;
      }
      res.once('close', () => {
        if (this.waiters.has(waiter)) this.leave(waiter);
        resolve(waiter.written);
      });
      this.pump(waiter);
      this.resume();
    });
  }

  private answer(waiter: Waiter): void {
    const head = this.head!;
    // The leader's conditional headers went upstream; a waiter's are answered here.
    waiter.notModified = waiter !== this.leader && head.statusCode === 200 && isConditional(waiter.request.requestHeaders) && notModified(waiter.request.requestHeaders, head.validators);
    const statusCode = waiter.notModified ? 304 : head.statusCode;
    waiter.resolve({ status: 'MISS', statusCode, respond: (res, extra, hook, sink) => this.attach(waiter, res, extra, hook, sink) });
  }

  private move(waiter: Waiter, solo: boolean): void {
    this.waiters.delete(waiter);
    this.owner.redispatch(waiter, solo);
  }

  private pump(waiter: Waiter): void {
    const res = waiter.res!;
    while (waiter.cursor < this.chunks.length) {
      const chunk = this.chunks[waiter.cursor];
      if (chunk === undefined) {
        this.cut(waiter);
        return;
      }
      waiter.cursor++;
      waiter.written += chunk.length;
      if (waiter.sink !== undefined) waiter.sink.bytesOut += chunk.length;
      if (!res.write(chunk)) {
        waiter.blocked = true;
        res.once('drain', () => {
          waiter.blocked = false;
          if (!this.waiters.has(waiter)) return;
          this.pump(waiter);
          if (!this.retainAll) this.trim();
          this.resume();
        });
        return;
      }
    }
    if (this.state === 'done') {
      this.waiters.delete(waiter);
      res.end();
    }
  }

  /**
   * Past the storable size the fetch goes at the pace of the fastest client: it may flow while one
   * is keeping up, and waits while a client that was answered has not started writing yet (it
   * does within the same tick, and must not miss the start of the body).
   */
  private flowing(): boolean {
    let keepingUp = false;
    for (const waiter of this.waiters) {
      if (waiter.res === undefined) return false;
      if (!waiter.blocked) keepingUp = true;
    }
    return keepingUp;
  }

  /** Releases chunks every client has written; cuts writing clients too far behind. */
  private trim(): void {
    let lowest = this.chunks.length;
    for (const waiter of this.waiters) {
      // Once the body is complete nothing grows any more: the clients still writing may take their time.
      if (this.state === 'streaming' && waiter.res !== undefined && this.received - waiter.written > this.owner.maxEntryBytes) this.cut(waiter);
      else if (waiter.cursor < lowest) lowest = waiter.cursor;
    }
    for (let i = this.trimmedTo; i < lowest; i++) this.chunks[i] = undefined;
    if (lowest > this.trimmedTo) this.trimmedTo = lowest;
  }

  /** A client that fell too far behind: its connection is closed, the others go on. */
  private cut(waiter: Waiter): void {
    this.waiters.delete(waiter);
    if (waiter.res !== undefined) {
      waiter.res.destroy();
      waiter.settle?.resolve(waiter.written);
    } else {
      waiter.reject(new GatewayException('bad_gateway', 'The response could not be held for this request.'));
    }
  }

  private resume(): void {
    if (!this.paused || this.state !== 'streaming' || !this.flowing()) return;
    this.paused = false;
    const listener = this.drainListener;
    this.drainListener = undefined;
    listener?.();
  }

  private leave(waiter: Waiter): void {
    this.waiters.delete(waiter);
    if (this.state === 'streaming') {
      if (this.waiters.size === 0 && !this.storing) this.abandon();
      else if (!this.retainAll) {
        this.trim();
        this.resume();
      }
    }
  }

  private stopRetaining(): void {
    this.retainAll = false;
    this.storing = false;
    this.releaseBudget();
    this.owner.stoppedRetaining(this);
  }

  /** Nobody wants the body: cancel the fetch. */
  private abandon(): void {
    this.state = 'failed';
    this.error = new GatewayException('bad_gateway');
    this.releaseBudget();
    this.owner.settled(this);
    this.abort.abort();
  }

  private releaseBudget(): void {
    if (this.reserved > 0) this.owner.release(this.reserved);
    this.reserved = 0;
  }
}
