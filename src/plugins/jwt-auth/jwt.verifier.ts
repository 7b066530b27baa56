import { createHash, webcrypto } from 'node:crypto';
import type { Logger } from '@nestjs/common';
import { errors, jwtVerify, type CryptoKey, type FlattenedJWSInput, type JWSHeaderParameters, type JWTPayload, type JWTVerifyOptions } from 'jose';
import type { ApiKeyScope } from '../key-auth/api-key-scopes';
import { LruCache } from '../../common/cache/lru-cache';
import { SingleFlight } from '../../common/cache/single-flight';
import { JwksKeySet, JwksUnavailableError, type JwksStats } from './jwks-key-set';
import { isHmacAlgorithm, type JwtAuthConfig } from '../../config/jwt-auth.config';
import type { JwtRefusalReason } from './jwt-refusal';
import { scopesFromClaims } from './jwt-scopes';

/** What a valid token says about its caller. Shared and frozen: cached and read by later steps. */
export interface VerifiedJwt {
  /** The tenant claim, lower-cased. */
  readonly tenantId: string;
  readonly subject?: string;
  readonly claims: Readonly<JWTPayload>;
  /** See scopesFromClaims. */
  readonly scopes: readonly ApiKeyScope[];
}

export type JwtVerification = { ok: true; token: VerifiedJwt } | { ok: false; reason: JwtRefusalReason };

export interface JwtVerifierOptions {
  now?: () => number;
  logger?: Pick<Logger, 'warn' | 'log'>;
}

interface CachedVerdict {
  /** Returned as is on a hit: no allocation per request. */
  verdict: JwtVerification & { ok: true };
  /** `exp` plus the skew, in ms: the verdict holds no longer than a fresh check would. */
  validUntil: number;
}

/** A longer header is not a token any identity provider issues; refused before any work. */
export const MAX_TOKEN_LENGTH = 8192;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Verifies bearer JWTs with jose (docs/routes.md "JWT"): the signature under one of the configured
 * algorithms only (so `alg: none` and any other algorithm are refused before a key is looked up),
 * `exp` (required) and `nbf` with the configured skew, `iss` and `aud` when configured, and a
 * tenant uuid in `tenantClaim`. A key is only ever used for its own family: HS256 takes the
 * configured secret and nothing else, RS256/ES256 take a public RSA/EC key of the key set, which
 * never hands out a symmetric key. That is what defeats algorithm confusion (an HS256 token
 * "signed" with the RSA public key as its HMAC secret).
 *
 * A verified token is cached by the SHA-256 of its bytes until min(exp + skew, tokenCacheSeconds),
 * so a client reusing its token costs a hash and a map lookup instead of a signature check;
 * parallel requests with one new token share one check; the cache is emptied when the key set
 * changes.
 */
export class JwtVerifier {
  private readonly options: JWTVerifyOptions;
  private readonly hmacKey?: Promise<CryptoKey>;
  private readonly jwks?: JwksKeySet;
  private readonly verdicts?: LruCache<string, CachedVerdict>;
  private readonly flight = new SingleFlight<string, JwtVerification>();
  private readonly now: () => number;
  private readonly skewMs: number;
  private readonly tenantClaim: string;

  constructor(config: JwtAuthConfig, options: JwtVerifierOptions = {}) {
    this.now = options.now ?? Date.now;
    this.skewMs = config.clockSkewSeconds * 1000;
    this.tenantClaim = config.tenantClaim;
    this.options = {
      algorithms: [...config.algorithms],
      clockTolerance: config.clockSkewSeconds,
      requiredClaims: ['exp'],
      ...(config.issuer !== undefined ? { issuer: config.issuer } : {}),
      ...(config.audience !== undefined ? { audience: config.audience } : {}),
    };
    if (config.secret && config.algorithms.some(isHmacAlgorithm)) {
      // Imported once: jose would otherwise import a raw secret again on every verification.
      this.hmacKey = webcrypto.subtle.importKey('raw', Buffer.from(config.secret, 'utf8'), { name: 'HMAC', hash: 'SHA-256' }, false, [
        'verify',
      ]) as Promise<unknown> as Promise<CryptoKey>;
    }
    if (config.jwksUrl && config.algorithms.some((alg) => !isHmacAlgorithm(alg))) {
      this.jwks = new JwksKeySet({
        url: config.jwksUrl,
        timeoutMs: config.jwksTimeoutMs,
        maxBytes: config.jwksMaxBytes,
        refreshSeconds: config.jwksCacheSeconds,
        minRefetchIntervalSeconds: config.jwksRefreshMinIntervalSeconds,
        now: this.now,
        logger: options.logger,
      });
    }
    if (config.tokenCacheSeconds > 0) {
      this.verdicts = new LruCache(config.tokenCacheMaxEntries, config.tokenCacheSeconds * 1000, this.now);
      // A token verified with a key that left the set must be checked again.
      this.jwks?.onChange(() => {
        this.verdicts?.clear();
        this.flight.forget();
      });
    }
  }

  /** Fetches the key set and starts its timer (no-op without `jwksUrl`). */
  start(): void {
    this.jwks?.start();
  }

  stop(): void {
    this.jwks?.stop();
  }

  /**
   * The verdict on a compact JWT (the part after `Bearer `). Synchronous when it can be decided
   * without a signature check (a cached token, an impossible shape), a promise otherwise; never
   * rejects.
   */
  verify(token: string): JwtVerification | Promise<JwtVerification> {
    if (token.length > MAX_TOKEN_LENGTH || !hasThreeSegments(token)) return { ok: false, reason: 'jwt_malformed' };
    if (!this.verdicts) return this.check(token);
    const digest = createHash('sha256').update(token).digest('base64url');
    const cached = this.verdicts.get(digest);
    if (cached) {
      if (cached.validUntil > this.now()) return cached.verdict;
      this.verdicts.delete(digest);
    }
    // A client sending one fresh token on many parallel requests pays for one signature check.
    return this.flight.run(digest, () => this.check(token, digest));
  }

  stats(): { cachedTokens: number; jwks?: JwksStats } {
    return { cachedTokens: this.verdicts?.size ?? 0, ...(this.jwks ? { jwks: this.jwks.stats() } : {}) };
  }

  private async check(token: string, digest?: string): Promise<JwtVerification> {
    let payload: JWTPayload;
    try {
      payload = await this.verifySignatureAndClaims(token);
    } catch (error) {
      return { ok: false, reason: reasonOf(error) };
    }
    const tenant = payload[this.tenantClaim];
    if (typeof tenant !== 'string' || !UUID.test(tenant)) return { ok: false, reason: 'jwt_no_tenant' };
    const verified: VerifiedJwt = Object.freeze({
      tenantId: tenant.toLowerCase(),
      ...(typeof payload.sub === 'string' ? { subject: payload.sub } : {}),
      claims: Object.freeze(payload),
      scopes: scopesFromClaims(payload),
    });
    const verdict = Object.freeze({ ok: true as const, token: verified });
    if (this.verdicts && digest) this.verdicts.set(digest, { verdict, validUntil: (payload.exp as number) * 1000 + this.skewMs });
    return verdict;
  }

  private async verifySignatureAndClaims(token: string): Promise<JWTPayload> {
    const options: JWTVerifyOptions = { ...this.options, currentDate: new Date(this.now()) };
    try {
      return (await jwtVerify(token, this.keyFor, options)).payload;
    } catch (error) {
      if (!(error instanceof errors.JWKSMultipleMatchingKeys)) throw error;
      // Several keys fit a token without `kid` (or a set reusing one): the one that verifies wins.
      for await (const key of error) {
        try {
          return (await jwtVerify(token, key, options)).payload;
        } catch (attempt) {
          if (!(attempt instanceof errors.JWSSignatureVerificationFailed)) throw attempt;
        }
      }
      throw new errors.JWSSignatureVerificationFailed();
    }
  }

  /** Only reached for an allowed algorithm (jose checks the list first). */
  private readonly keyFor = (header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> => {
    if (isHmacAlgorithm(header.alg ?? '')) {
      if (!this.hmacKey) throw new errors.JOSEAlgNotAllowed('no secret for HS256');
      return this.hmacKey;
    }
    if (!this.jwks) throw new errors.JOSEAlgNotAllowed('no key set for public-key algorithms');
    return this.jwks.getKey(header, token);
  };
}

/** header.payload.signature; an empty signature passes, so jose names an `alg: none` token for what it is. */
function hasThreeSegments(token: string): boolean {
  const first = token.indexOf('.');
  if (first <= 0) return false;
  const second = token.indexOf('.', first + 1);
  return second > first + 1 && token.indexOf('.', second + 1) === -1;
}

/** jose's error, as the metric's reason. */
function reasonOf(error: unknown): JwtRefusalReason {
  if (error instanceof JwksUnavailableError) return 'jwt_jwks_unavailable';
  if (error instanceof errors.JWTExpired) return 'jwt_expired';
  if (error instanceof errors.JWTClaimValidationFailed) {
    switch (error.claim) {
      case 'nbf':
        return error.reason === 'check_failed' ? 'jwt_not_yet_valid' : 'jwt_malformed';
      case 'iss':
        return 'jwt_bad_issuer';
      case 'aud':
        return 'jwt_bad_audience';
      default:
        return 'jwt_malformed';
    }
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return 'jwt_bad_algorithm';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'jwt_bad_signature';
  if (error instanceof errors.JWKSNoMatchingKey) return 'jwt_unknown_kid';
  // JWSInvalid, JWTInvalid, JOSENotSupported (an unknown `crit`), bad base64 or JSON.
  return 'jwt_malformed';
}
