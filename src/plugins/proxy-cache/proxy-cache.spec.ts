import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse, createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { request as undiciRequest } from 'undici';
import { GatewayException } from '../../common/errors/gateway.exception';
import { GatewayConfig } from '../../config/gateway-config';
import { GatewayMetrics } from '../../metrics/gateway-metrics.service';
import type { CacheFill, CacheLookup } from './cache-lookup';
import { feedFill } from '../../proxy/feed-fill';
import { ProxyCache } from './proxy-cache';

/**
 * The cache between real HTTP clients and a backend the test drives by hand (or a real slow
 * backend through undici and feedFill), answered the way the request chain's cache step does.
 */

interface Fetched {
  fill: CacheFill;
  headers: IncomingHttpHeaders;
  method: string;
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

const TENANT = 'tenant-a';

class Harness {
  readonly fetched: Fetched[] = [];
  readonly registry = new Registry();
  readonly cache: ProxyCache;
  private server!: Server;
  url = '';
  /** When set, fetches go to this real backend through undici instead of waiting for the test. */
  backend: string | undefined;
  /** Answers of pass-through requests (the proxy the step would call). */
  passed = 0;
  private taken = 0;
  /** Requests the cache has looked up. */
  lookups = 0;

  constructor(configure: (config: GatewayConfig) => void = () => undefined) {
    const config = new GatewayConfig();
    configure(config);
    this.cache = new ProxyCache(config, new GatewayMetrics(config, this.registry));
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => this.handle(req, res));
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
    await this.cache.onApplicationShutdown();
  }

  /** The chain step: lookup, then answer the outcome. */
  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.lookups++;
    const tenantId = (req.headers['x-tenant'] as string | undefined) ?? TENANT;
    const outcome: CacheLookup = this.cache.lookup(
      { tenantId, method: req.method ?? 'GET', upstreamPath: req.url ?? '/', sourceUrl: `local:///${(req.url ?? '/').slice(1)}`, requestHeaders: req.headers },
      (fill) => this.fetch(fill, req),
    );
    const extra = ['x-request-id', 'r-1'];
    if (outcome.kind === 'hit') {
      outcome.respond(res, extra);
    } else if (outcome.kind === 'pass') {
      this.passed++;
      res.writeHead(200, { 'x-cache-status': outcome.status, 'content-type': 'text/plain' });
      res.end('passed');
    } else {
      outcome.response
        .then((response) => response.respond(res, extra))
        .catch((error: unknown) => {
          if (res.headersSent) return res.destroy();
          const refusal = error instanceof GatewayException ? error : new GatewayException('internal_error');
          res.writeHead(refusal.getStatus(), { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: { code: refusal.code } }));
        });
    }
  }

  private fetch(fill: CacheFill, req: IncomingMessage): void {
    this.fetched.push({ fill, headers: req.headers, method: req.method ?? 'GET' });
    if (this.backend === undefined) return;
    undiciRequest(this.backend + req.url, { method: req.method as 'GET', headers: { accept: req.headers.accept ?? '*/*' }, signal: fill.signal })
      .then((answer) => feedFill(fill, answer))
      .catch((error: unknown) => fill.fail(error instanceof GatewayException ? error : new GatewayException('bad_gateway')));
  }

  /** The next fetch the test has not handled yet, once it has been made. */
  async next(): Promise<Fetched> {
    await this.settle(() => this.fetched.length > this.taken);
    return this.fetched[this.taken++];
  }

  /** Answers the next fetch with a whole response. */
  async answerNext(status: number, headers: Record<string, string>, body: string): Promise<Fetched> {
    const fetched = await this.next();
    fetched.fill.response(status, headers);
    fetched.fill.chunk(Buffer.from(body));
    fetched.fill.end();
    return fetched;
  }

  /** One request; resolves with the whole answer. */
  get(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(this.url + path, { method, headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  }

  /** A request whose body arrival the test watches. */
  open(path: string, headers: Record<string, string> = {}): StreamingClient {
    return new StreamingClient(this.url + path, headers);
  }

  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const values = (await this.registry.getSingleMetric(name)?.get())?.values ?? [];
    return values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ?? 0;
  }

  /** Lets queued I/O run (connections accepted, lookups made). */
  async settle(until: () => boolean): Promise<void> {
    for (let i = 0; i < 200 && !until(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(until()).toBe(true);
  }
}

class StreamingClient {
  status = 0;
  headers: IncomingHttpHeaders = {};
  readonly chunks: Buffer[] = [];
  error: Error | undefined;
  readonly done: Promise<void>;
  private response: IncomingMessage | undefined;

  constructor(url: string, headers: Record<string, string>, private readonly paused = false) {
    this.done = new Promise((resolve) => {
      const req = httpRequest(url, { headers, agent: false }, (res) => {
        this.response = res;
        this.status = res.statusCode ?? 0;
        this.headers = res.headers;
        if (this.paused) res.pause();
        res.on('data', (chunk: Buffer) => this.chunks.push(chunk));
        res.on('end', () => resolve());
        res.on('error', (error) => {
          this.error = error;
          resolve();
        });
        // A paused response never ends; it closes when the server cuts the connection.
        res.on('close', () => {
          if (!res.complete) this.error ??= new Error('connection closed before the end');
          resolve();
        });
      });
      req.on('error', (error) => {
        this.error = error;
        resolve();
      });
      req.end();
    });
  }

  static paused(url: string, headers: Record<string, string> = {}): StreamingClient {
    return new StreamingClient(url, headers, true);
  }

  get text(): string {
    return Buffer.concat(this.chunks).toString();
  }

  get bytes(): number {
    return this.chunks.reduce((n, c) => n + c.length, 0);
  }

  destroy(): void {
    this.response?.destroy();
  }

  resume(): void {
    this.response?.resume();
  }
}

/** Feeds chunks the way feedFill does: waiting whenever the fill asks to, then ends. */
function feed(fill: CacheFill, chunks: Buffer[]): Promise<void> {
  let next = 0;
  return new Promise<void>((resolve) => {
    const go = (): void => {
      while (next < chunks.length) if (!fill.chunk(chunks[next++])) return fill.onDrain(go);
      fill.end();
      resolve();
    };
    go();
  });
}

const IMAGE_HEADERS = { 'content-type': 'image/webp', 'cache-control': 'public, max-age=600', vary: 'Accept', etag: '"v1"', 'last-modified': 'Sun, 01 Mar 2026 12:00:00 GMT' };

describe('ProxyCache', () => {
  let h: Harness;
  afterEach(async () => {
    await h?.close();
  });

  describe('coalescing', () => {
    beforeEach(async () => {
      h = await new Harness().start();
    });

    it('makes one upstream request for N concurrent identical misses, then answers from memory', async () => {
      const answers = Promise.all(Array.from({ length: 5 }, () => h.get('/cat.jpg', { accept: 'image/webp' })));
      await h.settle(() => h.fetched.length === 1 && h.cache['fills'].size === 1);
      await h.settle(() => h.lookups === 5);
      expect(h.fetched).toHaveLength(1);
      const { fill } = h.fetched[0];
      fill.response(200, IMAGE_HEADERS);
      fill.chunk(Buffer.from('RIFF-webp'));
      fill.end();
      for (const answer of await answers) {
        expect(answer.status).toBe(200);
        expect(answer.body.toString()).toBe('RIFF-webp');
        expect(answer.headers['x-cache-status']).toBe('MISS');
        expect(answer.headers['content-type']).toBe('image/webp');
        expect(answer.headers['x-request-id']).toBe('r-1');
      }
      expect(await h.metric('gateway_cache_coalesced_total')).toBe(4);

      const hit = await h.get('/cat.jpg', { accept: 'image/webp,*/*' });
      expect(h.fetched).toHaveLength(1);
      expect(hit.headers['x-cache-status']).toBe('HIT');
      expect(hit.headers['content-length']).toBe('9');
      expect(hit.headers.age).toBe('0');
      expect(hit.headers.etag).toBe('"v1"');
      expect(hit.headers['x-request-id']).toBe('r-1');
      expect(hit.body.toString()).toBe('RIFF-webp');
      expect(await h.metric('gateway_cache_requests_total', { status: 'hit' })).toBe(1);
      expect(await h.metric('gateway_cache_requests_total', { status: 'miss' })).toBe(5);
      expect(await h.metric('gateway_cache_bytes', { tier: 'memory' })).toBeGreaterThan(9);
    });

    it('streams to every waiter as the body arrives, before it ends', async () => {
      const clients = [h.open('/big.jpg'), h.open('/big.jpg'), h.open('/big.jpg')];
      await h.settle(() => h.fetched.length === 1);
      await h.settle(() => h.lookups === 3);
      const { fill } = h.fetched[0];
      fill.response(200, { 'content-type': 'image/jpeg' });
      fill.chunk(Buffer.from('first-part;'));
      await h.settle(() => clients.every((c) => c.text === 'first-part;'));
      expect(clients.every((c) => c.status === 200)).toBe(true);

      // A latecomer while the body is still held from its start replays it from the first byte.
      const late = h.open('/big.jpg');
      await h.settle(() => late.text === 'first-part;');
      fill.chunk(Buffer.from('second-part'));
      fill.end();
      await Promise.all([...clients, late].map((c) => c.done));
      expect([...clients, late].map((c) => c.text)).toEqual(Array(4).fill('first-part;second-part'));
      expect(h.fetched).toHaveLength(1);
    });

    it('fails every waiter with the same error when the fetch fails, and stores nothing', async () => {
      const answers = Promise.all(Array.from({ length: 3 }, () => h.get('/cat.jpg')));
      await h.settle(() => h.fetched.length === 1);
      await h.settle(() => h.lookups === 3);
      h.fetched[0].fill.fail(new GatewayException('gateway_timeout'));
      for (const answer of await answers) {
        expect(answer.status).toBe(504);
        expect(JSON.parse(answer.body.toString()).error.code).toBe('gateway_timeout');
      }
      const again = h.get('/cat.jpg');
      await h.settle(() => h.fetched.length === 2);
      h.fetched[1].fill.response(200, IMAGE_HEADERS);
      h.fetched[1].fill.end();
      expect((await again).headers['x-cache-status']).toBe('MISS');
    });

    it('cuts every waiter when the body fails half way, and stores nothing', async () => {
      const clients = [h.open('/cat.jpg'), h.open('/cat.jpg')];
      await h.settle(() => h.fetched.length === 1);
      await h.settle(() => h.lookups === 2);
      const { fill } = h.fetched[0];
      fill.response(200, { ...IMAGE_HEADERS, 'content-length': '100' });
      fill.chunk(Buffer.alloc(40));
      await h.settle(() => clients.every((c) => c.bytes === 40));
      fill.fail(new GatewayException('bad_gateway'));
      await Promise.all(clients.map((c) => c.done));
      expect(clients.every((c) => c.error !== undefined)).toBe(true);
      expect(h.cache.memoryStats.entries).toBe(0);
    });

    it('keeps filling for the others and for the cache when the leader’s client goes away', async () => {
      const leader = h.open('/cat.jpg');
      await h.settle(() => h.fetched.length === 1);
      const follower = h.open('/cat.jpg');
      await h.settle(() => h.lookups === 2);
      const { fill } = h.fetched[0];
      fill.response(200, IMAGE_HEADERS);
      fill.chunk(Buffer.from('one;'));
      await h.settle(() => leader.text === 'one;' && follower.text === 'one;');
      leader.destroy();
      await leader.done;
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(fill.signal.aborted).toBe(false);
      fill.chunk(Buffer.from('two'));
      fill.end();
      await follower.done;
      expect(follower.text).toBe('one;two');
      expect((await h.get('/cat.jpg')).headers['x-cache-status']).toBe('HIT');
    });

    it('cancels the fetch once every client left and nothing is to be stored', async () => {
      const only = h.open('/cat.jpg');
      await h.settle(() => h.fetched.length === 1);
      const { fill } = h.fetched[0];
      fill.response(200, { ...IMAGE_HEADERS, 'cache-control': 'no-store' });
      fill.chunk(Buffer.from('x'));
      await h.settle(() => only.text === 'x');
      only.destroy();
      await h.settle(() => fill.signal.aborted);
    });
  });

  describe('entries larger than maxEntryBytes', () => {
    beforeEach(async () => {
      h = await new Harness((config) => {
        config.cache.maxEntryBytes = 64 * 1024;
      }).start();
    });

    it('streams through uncached, the waiters already attached getting the whole body', async () => {
      const clients = [h.open('/huge.jpg'), h.open('/huge.jpg')];
      await h.settle(() => h.fetched.length === 1);
      await h.settle(() => h.lookups === 2);
      const { fill } = h.fetched[0];
      fill.response(200, { 'content-type': 'image/jpeg', 'cache-control': 'max-age=600' });
      await feed(fill, Array.from({ length: 4 }, (_, i) => Buffer.alloc(32 * 1024, i)));
      await Promise.all(clients.map((c) => c.done));
      expect(clients.map((c) => c.bytes)).toEqual([128 * 1024, 128 * 1024]);
      expect(h.cache.memoryStats.entries).toBe(0);
      // Known too large: the next requests skip the cache for a while.
      expect((await h.get('/huge.jpg')).headers['x-cache-status']).toBe('BYPASS');
    });

    it('never stores a response that announces a larger Content-Length', async () => {
      const client = h.get('/huge.jpg');
      await h.settle(() => h.fetched.length === 1);
      const { fill } = h.fetched[0];
      fill.response(200, { 'content-type': 'image/jpeg', 'content-length': String(100 * 1024) });
      fill.chunk(Buffer.alloc(100 * 1024));
      fill.end();
      expect((await client).body.length).toBe(100 * 1024);
      expect(h.cache.memoryStats.entries).toBe(0);
    });

    it('cuts a client that falls more than maxEntryBytes behind, without slowing the others', async () => {
      const slow = StreamingClient.paused(h.url + '/huge.jpg');
      await h.settle(() => h.fetched.length === 1);
      const fast = h.open('/huge.jpg');
      await h.settle(() => h.lookups === 2);
      const { fill } = h.fetched[0];
      fill.response(200, { 'content-type': 'application/octet-stream' });
      // Far more than socket buffers hold: the paused client stops reading long before the end.
      const total = 48 * 1024 * 1024;
      await feed(fill, Array(total / (64 * 1024)).fill(Buffer.alloc(64 * 1024, 1)));
      await fast.done;
      expect(fast.bytes).toBe(total);
      // The paused client was cut: reading again, it finds the connection ended with a fraction of the body.
      slow.resume();
      await slow.done;
      expect(slow.error).toBeDefined();
      expect(slow.bytes).toBeLessThan(total);
    });
  });

  describe('memory bound', () => {
    beforeEach(async () => {
      h = await new Harness((config) => {
        config.cache.memoryMaxBytes = 1024 * 1024;
      }).start();
    });

    it('streams a fetch through uncached when the bodies already held use up the budget', async () => {
      const first = h.open('/first.jpg');
      const second = h.open('/second.jpg');
      const [a, b] = [await h.next(), await h.next()];
      a.fill.response(200, IMAGE_HEADERS);
      b.fill.response(200, IMAGE_HEADERS);
      a.fill.chunk(Buffer.alloc(700 * 1024));
      b.fill.chunk(Buffer.alloc(700 * 1024));
      a.fill.end();
      b.fill.end();
      await Promise.all([first.done, second.done]);
      expect([first.bytes, second.bytes]).toEqual([700 * 1024, 700 * 1024]);
      // The second could not be held: the first was stored, and nothing was evicted for the second.
      expect(h.cache.memoryStats.entries).toBe(1);
      expect(await h.metric('gateway_cache_evictions_total', { tier: 'memory' })).toBe(0);
      expect((await h.get('/first.jpg', { 'if-none-match': '"v1"' })).headers['x-cache-status']).toBe('HIT');
    });

    it('evicts the least recently used entries to stay within memoryMaxBytes, and counts them', async () => {
      for (const name of ['a', 'b', 'c', 'd']) {
        const answer = h.get(`/${name}.jpg`);
        await h.answerNext(200, IMAGE_HEADERS, name.repeat(300 * 1024));
        await answer;
        if (name === 'b') expect((await h.get('/a.jpg')).headers['x-cache-status']).toBe('HIT');
      }
      expect(h.cache.memoryStats.bytes).toBeLessThanOrEqual(1024 * 1024);
      expect(await h.metric('gateway_cache_evictions_total', { tier: 'memory' })).toBe(1);
      expect(await h.metric('gateway_cache_bytes', { tier: 'memory' })).toBe(h.cache.memoryStats.bytes);
      expect((await h.get('/a.jpg', { 'if-none-match': '"v1"' })).headers['x-cache-status']).toBe('HIT');
      expect((await h.get('/b.jpg', { 'if-none-match': '"v1"' })).headers['x-cache-status']).toBe('MISS');
    });
  });

  describe('keys', () => {
    beforeEach(async () => {
      h = await new Harness().start();
    });

    it('keeps one entry per Accept bucket, never one per raw header', async () => {
      const avif = h.get('/cat.jpg', { accept: 'image/avif,image/webp,*/*' });
      await h.answerNext(200, IMAGE_HEADERS, 'avif-bytes');
      await avif;
      const webp = h.get('/cat.jpg', { accept: 'image/webp,*/*' });
      await h.answerNext(200, IMAGE_HEADERS, 'webp-bytes');
      await webp;
      expect(h.fetched).toHaveLength(2);
      expect(h.fetched.map((f) => f.headers.accept)).toEqual(['image/avif,image/webp,*/*', 'image/webp,*/*']);

      const again = await h.get('/cat.jpg', { accept: 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8' });
      expect([again.headers['x-cache-status'], again.body.toString()]).toEqual(['HIT', 'avif-bytes']);
      const webpAgain = await h.get('/cat.jpg', { accept: 'image/webp' });
      expect([webpAgain.headers['x-cache-status'], webpAgain.body.toString()]).toEqual(['HIT', 'webp-bytes']);
      const other = h.get('/cat.jpg', { accept: 'image/png' });
      await h.answerNext(200, IMAGE_HEADERS, 'jpeg-bytes');
      expect((await other).headers['x-cache-status']).toBe('MISS');
    });

    it('gives requests that differ in a header the response varies on a fetch of their own', async () => {
      const headers = { ...IMAGE_HEADERS, vary: 'Accept, DPR' };
      const two = h.get('/cat.jpg', { dpr: '2' });
      await h.settle(() => h.fetched.length === 1);
      const three = h.get('/cat.jpg', { dpr: '3' });
      await h.settle(() => h.lookups === 2);
      expect(h.fetched).toHaveLength(1);
      h.fetched[0].fill.response(200, headers);
      h.fetched[0].fill.chunk(Buffer.from('at-2x'));
      h.fetched[0].fill.end();
      expect((await two).body.toString()).toBe('at-2x');
      // Its Vary values differ from the leader's: it was not given the 2x image but fetched its own.
      await h.settle(() => h.fetched.length === 2);
      expect(h.fetched[1].headers.dpr).toBe('3');
      h.fetched[1].fill.response(200, headers);
      h.fetched[1].fill.chunk(Buffer.from('at-3x'));
      h.fetched[1].fill.end();
      expect((await three).body.toString()).toBe('at-3x');

      expect((await h.get('/cat.jpg', { dpr: '3' })).body.toString()).toBe('at-3x');
      expect((await h.get('/cat.jpg', { dpr: '2' })).body.toString()).toBe('at-2x');
      expect(h.fetched).toHaveLength(2);
    });

    it('never shares an entry between tenants', async () => {
      const a = h.get('/cat.jpg', { 'x-tenant': 'tenant-a' });
      await h.answerNext(200, IMAGE_HEADERS, 'a');
      await a;
      const b = h.get('/cat.jpg', { 'x-tenant': 'tenant-b' });
      await h.answerNext(200, IMAGE_HEADERS, 'b');
      expect((await b).body.toString()).toBe('b');
      expect((await h.get('/cat.jpg', { 'x-tenant': 'tenant-a' })).body.toString()).toBe('a');
    });
  });

  describe('freshness', () => {
    beforeEach(async () => {
      h = await new Harness().start();
    });

    it.each([
      ['Cache-Control: private', { 'cache-control': 'private, max-age=600' }],
      ['Cache-Control: no-store', { 'cache-control': 'no-store' }],
      ['Set-Cookie', { 'set-cookie': 'sid=1' }],
    ])('stores nothing for %s, and never hands it to another waiting client', async (_name, extra) => {
      const leader = h.get('/me.jpg');
      await h.settle(() => h.fetched.length === 1);
      const other = h.get('/me.jpg');
      await h.settle(() => h.lookups === 2);
      h.fetched[0].fill.response(200, { 'content-type': 'image/jpeg', ...extra });
      h.fetched[0].fill.chunk(Buffer.from('for-the-leader'));
      h.fetched[0].fill.end();
      expect((await leader).body.toString()).toBe('for-the-leader');
      await h.settle(() => h.fetched.length === 2);
      h.fetched[1].fill.response(200, { 'content-type': 'image/jpeg', ...extra });
      h.fetched[1].fill.chunk(Buffer.from('for-the-other'));
      h.fetched[1].fill.end();
      expect((await other).body.toString()).toBe('for-the-other');
      expect(h.cache.memoryStats.entries).toBe(0);
      expect((await h.get('/me.jpg')).headers['x-cache-status']).toBe('BYPASS');
    });

    it('shares a non-200 answer with the waiters but does not store it', async () => {
      const answers = Promise.all([h.get('/missing.jpg'), h.get('/missing.jpg')]);
      await h.settle(() => h.fetched.length === 1);
      await h.settle(() => h.lookups === 2);
      h.fetched[0].fill.response(404, { 'content-type': 'text/plain' });
      h.fetched[0].fill.chunk(Buffer.from('no such image'));
      h.fetched[0].fill.end();
      expect((await answers).map((a) => [a.status, a.body.toString()])).toEqual([
        [404, 'no such image'],
        [404, 'no such image'],
      ]);
      expect(h.fetched).toHaveLength(1);
      expect(h.cache.memoryStats.entries).toBe(0);
    });

    it('expires an entry after its max-age', async () => {
      const first = h.get('/cat.jpg');
      await h.settle(() => h.fetched.length === 1);
      h.fetched[0].fill.response(200, { ...IMAGE_HEADERS, 'cache-control': 'max-age=1' });
      h.fetched[0].fill.end();
      await first;
      expect((await h.get('/cat.jpg')).headers['x-cache-status']).toBe('HIT');
      await new Promise((resolve) => setTimeout(resolve, 1_050));
      const later = h.get('/cat.jpg');
      await h.settle(() => h.fetched.length === 2);
      h.fetched[1].fill.response(200, IMAGE_HEADERS);
      h.fetched[1].fill.end();
      expect((await later).headers['x-cache-status']).toBe('MISS');
    });
  });

  describe('conditional and HEAD requests', () => {
    beforeEach(async () => {
      h = await new Harness().start();
      const first = h.get('/cat.jpg');
      await h.settle(() => h.fetched.length === 1);
      h.fetched[0].fill.response(200, IMAGE_HEADERS);
      h.fetched[0].fill.chunk(Buffer.from('image'));
      h.fetched[0].fill.end();
      await first;
    });

    it('answers a matching If-None-Match or If-Modified-Since with 304 from the entry', async () => {
      const validations: Record<string, string>[] = [{ 'if-none-match': '"v1"' }, { 'if-none-match': 'W/"v0", W/"v1"' }, { 'if-modified-since': 'Mon, 02 Mar 2026 00:00:00 GMT' }];
      for (const headers of validations) {
        const answer = await h.get('/cat.jpg', headers);
        expect(answer.status).toBe(304);
        expect(answer.body.length).toBe(0);
        expect(answer.headers.etag).toBe('"v1"');
        expect(answer.headers['x-cache-status']).toBe('HIT');
        expect(answer.headers['content-type']).toBeUndefined();
      }
      const changed = await h.get('/cat.jpg', { 'if-none-match': '"v0"' });
      expect([changed.status, changed.body.toString()]).toEqual([200, 'image']);
    });

    it('answers HEAD from the entry with its headers and no body', async () => {
      const answer = await h.get('/cat.jpg', {}, 'HEAD');
      expect(answer.status).toBe(200);
      expect(answer.headers['content-length']).toBe('5');
      expect(answer.headers['x-cache-status']).toBe('HIT');
      expect(answer.body.length).toBe(0);
    });

    it('lets a conditional or HEAD miss through without leading a fetch', async () => {
      for (const [headers, method] of [[{ 'if-none-match': '"v1"' }, 'GET'], [{}, 'HEAD']] as const) {
        const answer = await h.get('/dog.jpg', headers, method);
        expect(answer.headers['x-cache-status']).toBe('MISS');
      }
      expect(h.passed).toBe(2);
      expect(h.fetched).toHaveLength(1);
    });

    it('lets the route’s response steps change the headers of a hit', async () => {
      const outcome = h.cache.lookup(
        { tenantId: TENANT, method: 'GET', upstreamPath: '/cat.jpg', sourceUrl: 'local:///cat.jpg', requestHeaders: {} },
        () => undefined,
      );
      expect(outcome.kind).toBe('hit');
      const server = createServer((_req, res) => {
        if (outcome.kind !== 'hit') return res.end();
        outcome.respond(res, ['x-request-id', 'r-2'], (status, headers) => {
          headers['x-frame-options'] = 'DENY';
          delete headers.etag;
          headers['x-seen-status'] = String(status);
        });
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      try {
        const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
        expect([res.headers.get('x-frame-options'), res.headers.get('etag'), res.headers.get('x-seen-status')]).toEqual(['DENY', null, '200']);
        expect([res.headers.get('x-cache-status'), res.headers.get('x-request-id'), await res.text()]).toEqual(['HIT', 'r-2', 'image']);
      } finally {
        server.close();
      }
    });

    it('bypasses other methods', async () => {
      expect((await h.get('/cat.jpg', {}, 'POST')).headers['x-cache-status']).toBe('BYPASS');
    });

    it('answers a coalesced conditional request with 304 once the shared response matches', async () => {
      const leader = h.get('/fresh.jpg');
      await h.settle(() => h.fetched.length === 2);
      const conditional = h.get('/fresh.jpg', { 'if-none-match': '"v1"' });
      await h.settle(() => h.lookups === 3);
      h.fetched[1].fill.response(200, IMAGE_HEADERS);
      h.fetched[1].fill.chunk(Buffer.from('image'));
      h.fetched[1].fill.end();
      expect((await leader).status).toBe(200);
      expect((await conditional).status).toBe(304);
    });
  });

  describe('purge', () => {
    beforeEach(async () => {
      h = await new Harness().start();
    });

    async function fillWith(path: string, tenant = TENANT): Promise<void> {
      const answer = h.get(path, { 'x-tenant': tenant });
      await h.answerNext(200, IMAGE_HEADERS, path);
      await answer;
    }

    it('drops the tenant’s entries whose source starts with the prefix, and only those', async () => {
      await fillWith('/avatars/a.jpg');
      await fillWith('/avatars/b.jpg');
      await fillWith('/banners/c.jpg');
      await fillWith('/avatars/a.jpg', 'tenant-b');
      expect(h.cache.purgeLocal({ tenantId: TENANT, prefix: 'local:///avatars/' })).toBe(2);
      const statuses = async (path: string, tenant = TENANT) => (await h.get(path, { 'x-tenant': tenant, 'if-none-match': '"v1"' })).headers['x-cache-status'];
      expect(await statuses('/banners/c.jpg')).toBe('HIT');
      expect(await statuses('/avatars/a.jpg', 'tenant-b')).toBe('HIT');
      expect(await statuses('/avatars/a.jpg')).toBe('MISS');
      expect(h.cache.purgeLocal({ tenantId: TENANT })).toBe(1);
    });

    it('does not store a fetch that was under way when a purge selected it', async () => {
      const answer = h.get('/avatars/a.jpg');
      await h.settle(() => h.fetched.length === 1);
      h.cache.purgeLocal({ tenantId: TENANT, prefix: 'local:///avatars/' });
      h.fetched[0].fill.response(200, IMAGE_HEADERS);
      h.fetched[0].fill.end();
      expect((await answer).status).toBe(200);
      expect(h.cache.memoryStats.entries).toBe(0);
    });
  });

  describe('with a real slow backend (undici and feedFill)', () => {
    let backend: Server;
    let calls = 0;
    beforeEach(async () => {
      calls = 0;
      backend = createServer((req, res) => {
        calls++;
        res.writeHead(200, { 'content-type': 'image/webp', 'cache-control': 'max-age=60', vary: 'Accept' });
        res.write('slow-');
        setTimeout(() => res.end(`image-for-${req.headers.accept}`), 300);
      });
      backend.listen(0, '127.0.0.1');
      await once(backend, 'listening');
      h = await new Harness().start();
      h.backend = `http://127.0.0.1:${(backend.address() as AddressInfo).port}`;
    });
    afterEach(async () => {
      backend.closeAllConnections();
      await new Promise((resolve) => backend.close(resolve));
    });

    it('turns 20 concurrent identical requests into one backend call', async () => {
      const answers = await Promise.all(Array.from({ length: 20 }, () => h.get('/cat.jpg', { accept: 'image/webp' })));
      expect(calls).toBe(1);
      expect(new Set(answers.map((a) => a.body.toString()))).toEqual(new Set(['slow-image-for-image/webp']));
      expect((await h.get('/cat.jpg', { accept: 'image/webp' })).headers['x-cache-status']).toBe('HIT');
      expect(calls).toBe(1);
    });
  });

  describe('disk tier', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'igw-cache-disk-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    async function diskHarness(): Promise<Harness> {
      const harness = await new Harness((config) => {
        config.cache.dir = dir;
      }).start();
      await harness.cache.openDisk({ reset: false, purges: [] });
      return harness;
    }

    it('answers from an entry a previous process stored, as a HIT', async () => {
      h = await diskHarness();
      const first = h.get('/cat.jpg', { accept: 'image/webp' });
      await h.settle(() => h.fetched.length === 1);
      h.fetched[0].fill.response(200, IMAGE_HEADERS);
      h.fetched[0].fill.chunk(Buffer.from('kept-on-disk'));
      h.fetched[0].fill.end();
      await first;
      await h.close();

      h = await diskHarness();
      const answer = await h.get('/cat.jpg', { accept: 'image/webp' });
      expect([answer.headers['x-cache-status'], answer.body.toString()]).toEqual(['HIT', 'kept-on-disk']);
      expect(h.fetched).toHaveLength(0);
      // Promoted to memory: the next one does not read the file.
      expect(h.cache.memoryStats.entries).toBe(1);
    });

    it('fetches again when the file was damaged, never serving it', async () => {
      h = await diskHarness();
      const first = h.get('/cat.jpg');
      await h.settle(() => h.fetched.length === 1);
      h.fetched[0].fill.response(200, IMAGE_HEADERS);
      h.fetched[0].fill.chunk(Buffer.from('original-bytes'));
      h.fetched[0].fill.end();
      await first;
      await h.close();
      const shard = readdirSync(dir).find((name) => /^[0-9a-f]{2}$/.test(name) && readdirSync(join(dir, name)).length > 0)!;
      const file = join(dir, shard, readdirSync(join(dir, shard))[0]);
      const bytes = readFileSync(file);
      bytes.write('XXXXXXXX', bytes.length - 8);
      writeFileSync(file, bytes);

      h = await diskHarness();
      const answer = h.get('/cat.jpg');
      await h.settle(() => h.fetched.length === 1);
      h.fetched[0].fill.response(200, IMAGE_HEADERS);
      h.fetched[0].fill.chunk(Buffer.from('fresh-bytes'));
      h.fetched[0].fill.end();
      expect([(await answer).headers['x-cache-status'], (await answer).body.toString()]).toEqual(['MISS', 'fresh-bytes']);
    });
  });
});
