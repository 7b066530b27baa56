import { Logger } from '@nestjs/common';
import { createLocalJWKSet, errors, type CryptoKey, type FlattenedJWSInput, type JSONWebKeySet, type JWK, type JWSHeaderParameters } from 'jose';
import { request } from 'undici';

export interface JwksKeySetOptions {
  url: string;
  timeoutMs: number;
  maxBytes: number;
  /** The timer's period: the set is fetched again this often. */
  refreshSeconds: number;
  /** No two fetches start closer together than this, whatever asks for them. */
  minRefetchIntervalSeconds: number;
  now?: () => number;
  logger?: Pick<Logger, 'warn' | 'log'>;
}

export interface JwksStats {
  /** Fetches started (boot, timer, unknown `kid`). */
  fetches: number;
  failures: number;
  /** Successful fetches that brought a different set of keys. */
  changes: number;
  /** Usable keys in the set in use; 0 before the first good fetch. */
  keys: number;
  lastSuccessAt?: number;
}

/** The key set could not be fetched yet; the token may well be valid. */
export class JwksUnavailableError extends Error {}

interface KeySnapshot {
  resolve: ReturnType<typeof createLocalJWKSet>;
  fingerprint: string;
  keys: number;
}

/** Members that only a private or symmetric key has: such a JWK never verifies a token here. */
const SECRET_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const FAILURE_LOG_INTERVAL_MS = 60_000;

/**
 * The public keys of `jwksUrl`, for RS256/ES256 (docs/routes.md "JWT"). Fetched at start, again
 * every `refreshSeconds`, and when a token names a key the set lacks (rotation), but never more
 * than once per `minRefetchIntervalSeconds`: a flood of tokens with made-up `kid`s costs the
 * identity provider nothing. Concurrent misses share one fetch. A failed fetch (timeout, non-200,
 * oversized or invalid body) keeps the last good set, so an outage of the identity provider does
 * not log anybody out; it is logged at most once a minute.
 */
export class JwksKeySet {
  private current?: KeySnapshot;
  private inFlight?: Promise<void>;
  private lastAttemptAt = Number.NEGATIVE_INFINITY;
  private timer?: NodeJS.Timeout;
  private readonly stopped = new AbortController();
  private readonly listeners = new Set<() => void>();
  private readonly now: () => number;
  private readonly logger: Pick<Logger, 'warn' | 'log'>;
  private failingSince?: number;
  private lastFailureLogAt = Number.NEGATIVE_INFINITY;
  private readonly counters: Omit<JwksStats, 'keys'> = { fetches: 0, failures: 0, changes: 0 };

  constructor(private readonly options: JwksKeySetOptions) {
    this.now = options.now ?? Date.now;
    this.logger = options.logger ?? new Logger(JwksKeySet.name);
  }

  /** First fetch at once (without waiting for it), then the timer. */
  start(): void {
    if (this.timer) return;
    void this.refetch();
    this.timer = setInterval(() => void this.refetch(), this.options.refreshSeconds * 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.stopped.abort();
  }

  /** Called after a fetch that changed the keys (the verifier forgets tokens it verified with the old set). */
  onChange(listener: () => void): void {
    this.listeners.add(listener);
  }

  stats(): JwksStats {
    return { ...this.counters, keys: this.current?.keys ?? 0 };
  }

  /**
   * The key for a token, in the shape jose's `jwtVerify` takes. Throws jose's JWKSNoMatchingKey
   * when no key fits (after one rate-limited refetch), JWKSMultipleMatchingKeys when several do
   * (it iterates them), and JwksUnavailableError before the first good fetch.
   */
  readonly getKey = async (header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> => {
    // The first fetch may still be on its way: wait for it rather than refuse.
    if (!this.current && this.inFlight) await this.inFlight;
    const seen = this.current ?? (await this.refetchThen());
    try {
      return await seen.resolve(header, token);
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey)) throw error;
      await this.refetch();
      // Only a set that changed since this token looked can hold its key now.
      if (!this.current || this.current === seen) throw error;
      return this.current.resolve(header, token);
    }
  };

  /**
   * Fetches the set unless a fetch started less than `minRefetchIntervalSeconds` ago; joins the
   * fetch in flight if there is one. Never throws.
   */
  refetch(): Promise<void> {
    if (this.inFlight) return this.inFlight;
    const now = this.now();
    if (now - this.lastAttemptAt < this.options.minRefetchIntervalSeconds * 1000) return Promise.resolve();
    this.lastAttemptAt = now;
    this.counters.fetches++;
    const promise = this.load().finally(() => {
      if (this.inFlight === promise) this.inFlight = undefined;
    });
    this.inFlight = promise;
    return promise;
  }

  private async refetchThen(): Promise<KeySnapshot> {
    await this.refetch();
    if (!this.current) throw new JwksUnavailableError('the key set has not been fetched yet');
    return this.current;
  }

  private async load(): Promise<void> {
    try {
      const body = await this.download();
      const snapshot = toSnapshot(body);
      if (this.failingSince !== undefined) {
        this.logger.log(`key set ${this.options.url} fetched again after ${Math.round((this.now() - this.failingSince) / 1000)} s of failures`);
        this.failingSince = undefined;
      }
      this.counters.lastSuccessAt = this.now();
      if (this.current?.fingerprint === snapshot.fingerprint) return;
      const first = this.current === undefined;
      this.current = snapshot;
      if (!first) this.counters.changes++;
      for (const listener of this.listeners) listener();
    } catch (error) {
      if (this.stopped.signal.aborted) return;
      this.counters.failures++;
      this.failingSince ??= this.now();
      if (this.now() - this.lastFailureLogAt >= FAILURE_LOG_INTERVAL_MS) {
        this.lastFailureLogAt = this.now();
        const kept = this.current ? `keeping the last good set (${this.current.keys} keys)` : 'no key set yet';
        this.logger.warn(`key set ${this.options.url} not fetched (${this.counters.failures} failures so far): ${(error as Error).message}; ${kept}`);
      }
    }
  }

  private async download(): Promise<unknown> {
    const { url, timeoutMs, maxBytes } = this.options;
    const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), this.stopped.signal]);
    const response = await request(url, {
      method: 'GET',
      headers: { accept: 'application/jwk-set+json, application/json' },
      signal,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    if (response.statusCode !== 200) {
      await response.body.dump();
      throw new Error(`HTTP ${response.statusCode}`);
    }
    const declared = Number(response.headers['content-length']);
    if (declared > maxBytes) {
      response.body.destroy();
      throw new Error(`body of ${declared} bytes is larger than ${maxBytes}`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of response.body) {
      size += (chunk as Buffer).length;
      if (size > maxBytes) {
        response.body.destroy();
        throw new Error(`body is larger than ${maxBytes} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  }
}

/** Keeps the public RSA and EC keys only; a set without one is refused as a whole. */
function toSnapshot(body: unknown): KeySnapshot {
  const members = (body as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(members)) throw new Error('not a JSON Web Key Set (no "keys" array)');
  const keys = members.filter(
    (jwk): jwk is JWK =>
      typeof jwk === 'object' && jwk !== null && (jwk.kty === 'RSA' || jwk.kty === 'EC') && !SECRET_MEMBERS.some((member) => member in jwk),
  );
  if (keys.length === 0) throw new Error('the key set holds no public RSA or EC key');
  const set: JSONWebKeySet = { keys };
  return { resolve: createLocalJWKSet(set), fingerprint: JSON.stringify(keys), keys: keys.length };
}
