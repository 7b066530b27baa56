import { Inject, Injectable, Optional } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { GatewayException, TENANT_AUTH_CHALLENGE } from '../common/errors/gateway.exception';
import type { AuthContext, EffectiveLimits } from '../common/http/request-context';
import { GatewayConfig } from '../config/gateway-config';
import { IpAllowlistCache } from '../ip-allowlist/ip-allowlist.cache';
import { PRE_AUTH_LIMITER, PreAuthLimiter } from '../pipeline/pre-auth-limiter';
import { mergeLimits } from '../tenants/effective-limits';
import type { TenantStatus } from '../tenants/tenant.entity';
import { isKeyId, parseApiKey, verifySecret } from './api-key-format';
import { ApiKeysRepository, KeyAuthRecord } from './api-keys.repository';
import { GatewayMetrics } from '../metrics/gateway-metrics.service';
import { AuthFailureReason } from './auth.metrics';
import { AuthInvalidation, AuthInvalidationService } from './invalidation/auth-invalidation.service';
import { LastUsedRecorder } from './last-used.recorder';
import { LruCache } from './lru-cache';
import { SecretBox } from './secret-box';
import { SingleFlight } from './single-flight';

/** A verified key as the request path keeps it in process. */
interface CachedKey {
  keyId: string;
  tenantId: string;
  tenantStatus: TenantStatus;
  planId: string;
  planName: string;
  secretHash: Buffer;
  expiresAt: Date | null;
  expiresAtMs: number;
  revoked: boolean;
  /** Shared, frozen: later pipeline steps read it, none may change it. */
  auth: AuthContext;
  signedUrlAuth: AuthContext;
  signingKeyEnc: Buffer;
  signingSaltEnc: Buffer;
  /** Decrypted on first use by the signed-URL path, then kept with the entry. */
  signing?: { keyHex: string; saltHex: string };
}

export interface SigningKeyResolution {
  /** The tenant behind the key, with `via: 'signed-url'`. */
  auth: AuthContext;
  signingKeyHex: string;
  signingSaltHex: string;
}

export interface CallerDescription {
  tenant: { id: string; name: string; plan: string; status: TenantStatus };
  key: { keyId: string; scopes: readonly string[]; expiresAt: Date | null };
  limits: EffectiveLimits;
}

export const WWW_AUTHENTICATE = TENANT_AUTH_CHALLENGE;
const NEVER = Number.POSITIVE_INFINITY;

/**
 * Authentication of API keys (docs/tenants-and-keys.md) for the request path. Verified keys and unknown key
 * ids are cached in process (bounded LRU, TTL `keyCacheTtlSeconds`, separate caches so a flood
 * of random ids cannot push real keys out); a cached key costs no PostgreSQL query and no
 * Redis call. Admin changes drop the affected entries on every instance through
 * AuthInvalidationService; the TTL is the backstop.
 */
@Injectable()
export class ApiKeyService {
  private readonly keys: LruCache<string, CachedKey>;
  private readonly unknown: LruCache<string, true>;
  private readonly flight = new SingleFlight<string, CachedKey | undefined>();
  private readonly byAuth = new WeakMap<AuthContext, CachedKey>();
  private readonly box: SecretBox;
  private readonly pepper: string;
  private readonly allowQueryKey: boolean;

  constructor(
    private readonly repository: ApiKeysRepository,
    private readonly invalidation: AuthInvalidationService,
    private readonly allowlists: IpAllowlistCache,
    private readonly lastUsed: LastUsedRecorder,
    config: GatewayConfig,
    private readonly metrics: GatewayMetrics,
    @Optional() @Inject(PRE_AUTH_LIMITER) private readonly preAuthLimiter?: PreAuthLimiter,
  ) {
    const { keyCacheMaxEntries, keyCacheTtlSeconds, keyPepper, secretsKey, allowQueryKey } = config.security;
    if (!keyPepper || !secretsKey) throw new Error('security.keyPepper and security.secretsKey are required');
    this.pepper = keyPepper;
    this.box = new SecretBox(secretsKey);
    this.allowQueryKey = allowQueryKey;
    this.keys = new LruCache(keyCacheMaxEntries, keyCacheTtlSeconds * 1000);
    this.unknown = new LruCache(keyCacheMaxEntries, keyCacheTtlSeconds * 1000);
    invalidation.onInvalidate((event) => this.drop(event));
  }

  /**
   * Authenticates the request's key and sets `request.gw.auth`. Throws 401 `unauthorized`
   * (with WWW-Authenticate, one message whatever the reason) or 403 `forbidden` for a
   * suspended tenant, which is only said to a caller holding a valid key.
   */
  async authenticate(request: FastifyRequest): Promise<AuthContext> {
    const presented = this.presentedKey(request);
    if (presented === undefined) throw this.refuse('missing');
    const parsed = parseApiKey(presented);
    if (!parsed) throw this.refuse('malformed');
    const entry = await this.lookup(parsed.keyId, request);
    if (!entry) throw this.refuse('unknown');
    if (!verifySecret(this.pepper, parsed.secret, entry.secretHash)) throw this.refuse('bad_secret');
    this.checkUsable(entry);
    this.lastUsed.mark(entry.keyId);
    request.gw.auth = entry.auth;
    return entry.auth;
  }

  /**
   * For signed URLs (`/t/<keyId>/...`), where no secret is presented: the tenant and the
   * key's URL-signing key and salt, so the caller can verify the signature. It does not set
   * `request.gw.auth`; that is the caller's job once the signature is verified. Pass the
   * request so a cache miss is charged to the client's IP bucket first.
   */
  async resolveSigningKey(keyId: string, request?: FastifyRequest): Promise<SigningKeyResolution> {
    if (!isKeyId(keyId)) throw this.refuse('malformed');
    const entry = await this.lookup(keyId, request);
    if (!entry) throw this.refuse('unknown');
    this.checkUsable(entry);
    entry.signing ??= {
      keyHex: this.box.open(entry.signingKeyEnc, signingAad(keyId, 'key')).toString('hex'),
      saltHex: this.box.open(entry.signingSaltEnc, signingAad(keyId, 'salt')).toString('hex'),
    };
    this.lastUsed.mark(keyId);
    return { auth: entry.signedUrlAuth, signingKeyHex: entry.signing.keyHex, signingSaltHex: entry.signing.saltHex };
  }

  /** 403 `forbidden` unless the caller holds every scope. */
  assertScopes(auth: AuthContext, required: readonly string[]): void {
    for (const scope of required) {
      if (!auth.scopes.includes(scope)) {
        this.metrics.authFailed('scope');
        throw new GatewayException('forbidden', `This key lacks the scope ${scope}.`, { requiredScope: scope });
      }
    }
  }

  /** The tenant and key behind an AuthContext this service issued (for GET /api/v1/me). */
  describe(auth: AuthContext): CallerDescription | undefined {
    const entry = this.byAuth.get(auth);
    if (!entry) return undefined;
    return {
      tenant: { id: entry.tenantId, name: auth.tenantName, plan: entry.planName, status: entry.tenantStatus },
      key: { keyId: entry.keyId, scopes: auth.scopes, expiresAt: entry.expiresAt },
      limits: auth.limits,
    };
  }

  /** Counters for tests and diagnostics: database lookups made, entries held. */
  stats(): { databaseLookups: number; cachedKeys: number; cachedUnknownKeyIds: number } {
    return { databaseLookups: this.repository.authLookupCount, cachedKeys: this.keys.size, cachedUnknownKeyIds: this.unknown.size };
  }

  /** Encrypts URL-signing material for storage, bound to its key id (see SecretBox). */
  sealSigningSecret(keyId: string, part: 'key' | 'salt', secret: Buffer): Buffer {
    return this.box.seal(secret, signingAad(keyId, part));
  }

  private async lookup(keyId: string, request?: FastifyRequest): Promise<CachedKey | undefined> {
    const cached = this.keys.get(keyId);
    if (cached) return cached;
    if (this.unknown.get(keyId)) return undefined;
    const limiter = request && this.preAuthLimiter;
    if (!limiter) return this.flight.run(keyId, () => this.load(keyId));
    // The database lookup is what the client IP's bucket pays for, once per lookup: requests
    // waiting for one already under way (a page of thumbnails signed with one key, all arriving
    // while the key is not cached yet) pay nothing. A flood of random key ids still starts, and
    // pays for, a lookup each.
    let started = false;
    const lookup = this.flight.run(keyId, async () => {
      started = true;
      await limiter.beforeKeyLookup(request);
      return this.load(keyId);
    });
    try {
      return await lookup;
    } catch (error) {
      // Another address's lookup was refused by its own bucket: this caller asks under its own.
      if (started || (error as { code?: unknown }).code !== 'rate_limited') throw error;
      await limiter.beforeKeyLookup(request);
      return this.flight.run(keyId, () => this.load(keyId));
    }
  }

  private async load(keyId: string): Promise<CachedKey | undefined> {
    const epoch = this.invalidation.epoch;
    const record = await this.repository.findAuthRecord(keyId);
    // A lookup that raced an invalidation may have read the old row: answer with it, cache nothing.
    const cacheable = epoch === this.invalidation.epoch;
    if (!record) {
      this.metrics.keyLookup('unknown');
      if (cacheable) this.unknown.set(keyId, true);
      return undefined;
    }
    this.metrics.keyLookup('found');
    const entry = this.toEntry(record);
    this.allowlists.prime(record.tenantId, record.allowlist, epoch);
    if (cacheable) this.keys.set(keyId, entry);
    return entry;
  }

  private toEntry(record: KeyAuthRecord): CachedKey {
    const base = {
      tenantId: record.tenantId,
      tenantName: record.tenantName,
      keyId: record.keyId,
      scopes: Object.freeze([...record.scopes]),
      limits: Object.freeze(mergeLimits(record.plan, record.rateLimits, record.quotas)),
      allowedSources: Object.freeze([...record.allowedSources]),
      allowUnsignedUrls: record.allowUnsignedUrls,
    };
    const entry: CachedKey = {
      keyId: record.keyId,
      tenantId: record.tenantId,
      tenantStatus: record.tenantStatus,
      planId: record.planId,
      planName: record.planName,
      secretHash: record.secretHash,
      expiresAt: record.expiresAt,
      expiresAtMs: record.expiresAt ? record.expiresAt.getTime() : NEVER,
      revoked: record.revokedAt !== null,
      auth: Object.freeze({ ...base, via: 'api-key' as const }),
      signedUrlAuth: Object.freeze({ ...base, via: 'signed-url' as const }),
      signingKeyEnc: record.signingKeyEnc,
      signingSaltEnc: record.signingSaltEnc,
    };
    this.byAuth.set(entry.auth, entry);
    this.byAuth.set(entry.signedUrlAuth, entry);
    return entry;
  }

  private checkUsable(entry: CachedKey): void {
    if (entry.revoked) throw this.refuse('revoked');
    // Expiry is checked against the clock on every request, not when the entry was cached.
    if (entry.expiresAtMs <= Date.now()) throw this.refuse('expired');
    if (entry.tenantStatus !== 'active') {
      this.metrics.authFailed('suspended');
      throw new GatewayException('forbidden', 'This account is suspended.');
    }
  }

  private presentedKey(request: FastifyRequest): string | undefined {
    const header = request.headers['x-api-key'];
    if (typeof header === 'string' && header.length > 0) return header.trim();
    const authorization = request.headers.authorization;
    if (authorization) {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
      return match ? match[1] : authorization;
    }
    if (this.allowQueryKey) {
      const value = (request.query as Record<string, unknown> | undefined)?.api_key;
      if (typeof value === 'string' && value.length > 0) return value;
    }
    return undefined;
  }

  private refuse(reason: AuthFailureReason): GatewayException {
    this.metrics.authFailed(reason);
    // One message for every reason: a caller learns nothing about which part was wrong.
    return new GatewayException('unauthorized', 'A valid API key is required.', {}, { 'www-authenticate': WWW_AUTHENTICATE });
  }

  private drop(event: AuthInvalidation): void {
    switch (event.kind) {
      case 'key':
        this.keys.delete(event.id);
        this.unknown.delete(event.id);
        this.flight.forget(event.id);
        return;
      case 'tenant':
        this.keys.deleteWhere((entry) => entry.tenantId === event.id);
        break;
      case 'plan':
        this.keys.deleteWhere((entry) => entry.planId === event.id);
        break;
      case 'all':
        this.keys.clear();
        this.unknown.clear();
        break;
    }
    this.flight.forget();
  }
}

function signingAad(keyId: string, part: 'key' | 'salt'): string {
  return `api_keys:${keyId}:signing-${part}`;
}
