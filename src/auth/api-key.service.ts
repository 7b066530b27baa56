import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { GatewayException, TENANT_AUTH_CHALLENGE } from '../common/errors/gateway.exception';
import type { AuthContext, AuthenticationRequest, EffectiveLimits } from '../common/http/request-context';
import { GatewayConfig } from '../config/gateway-config';
import { IpAllowlistCache } from '../ip-allowlist/ip-allowlist.cache';
import { PRE_AUTH_LIMITER, PreAuthLimiter } from '../pipeline/pre-auth-limiter';
import { compileImagePolicy, mergeImagePolicy, type CompiledImagePolicy } from '../signing/image-policy';
import { ImgproxyOptionRules } from '../signing/imgproxy-options';
import { ImgproxySigner } from '../signing/imgproxy-signature';
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
  /** The current signing pair first, then the previous one during a rotation; built once per fill. */
  signers: readonly ImgproxySigner[];
}

export interface SigningKeyResolution {
  /** The tenant behind the key, with `via: 'signed-url'`. */
  auth: AuthContext;
  /** The current pair first, then the previous one while a rotation is in progress. */
  signers: readonly ImgproxySigner[];
}

/** What a key id can do for a signed URL, without saying it to the caller. */
export interface SigningCandidate {
  /** The key's tenant and signing pairs; absent when the key id names no key. */
  key?: SigningKeyResolution;
  /** Why the key cannot sign (for the metric; the caller answers one 401 whatever it is). */
  unusable?: AuthFailureReason;
  /** Said to the caller only once its signature verified. */
  suspended: boolean;
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
  private readonly policyRules: ImgproxyOptionRules;
  private readonly pro: boolean;
  private readonly logger = new Logger(ApiKeyService.name);

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
    this.policyRules = new ImgproxyOptionRules(config.imgproxy);
    this.pro = config.imgproxy.pro;
    this.keys = new LruCache(keyCacheMaxEntries, keyCacheTtlSeconds * 1000);
    this.unknown = new LruCache(keyCacheMaxEntries, keyCacheTtlSeconds * 1000);
    invalidation.onInvalidate((event) => this.drop(event));
  }

  /**
   * Authenticates the request's key and sets `request.gw.auth`. Throws 401 `unauthorized`
   * (with WWW-Authenticate, one message whatever the reason) or 403 `forbidden` for a
   * suspended tenant, which is only said to a caller holding a valid key.
   */
  async authenticate(request: AuthenticationRequest): Promise<AuthContext> {
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
  async resolveSigningKey(keyId: string, request?: AuthenticationRequest): Promise<SigningKeyResolution> {
    if (!isKeyId(keyId)) throw this.refuse('malformed');
    const entry = await this.lookup(keyId, request);
    if (!entry) throw this.refuse('unknown');
    this.checkUsable(entry);
    this.lastUsed.mark(keyId);
    return { auth: entry.signedUrlAuth, signers: entry.signers };
  }

  /**
   * The signed-URL guard's lookup: never throws for the key's state (only the pre-auth limiter's
   * 429 or a storage failure), so the guard can verify the signature first and answer every
   * failure alike (docs/tenants-and-keys.md).
   */
  async signingCandidate(keyId: string, request?: AuthenticationRequest): Promise<SigningCandidate> {
    if (!isKeyId(keyId)) return { unusable: 'malformed', suspended: false };
    const entry = await this.lookup(keyId, request);
    if (!entry) return { unusable: 'unknown', suspended: false };
    // Expiry is checked against the clock on every request, not when the entry was cached.
    const unusable = entry.revoked ? 'revoked' : entry.expiresAtMs <= Date.now() ? 'expired' : undefined;
    return { key: { auth: entry.signedUrlAuth, signers: entry.signers }, unusable, suspended: entry.tenantStatus !== 'active' };
  }

  /** Records a successful use (written in batches). */
  markUsed(keyId: string): void {
    this.lastUsed.mark(keyId);
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

  private async lookup(keyId: string, request?: AuthenticationRequest): Promise<CachedKey | undefined> {
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
      imagePolicy: this.compilePolicy(record),
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
      signers: Object.freeze(this.signersOf(record)),
    };
    this.byAuth.set(entry.auth, entry);
    this.byAuth.set(entry.signedUrlAuth, entry);
    return entry;
  }

  /** The merged plan and tenant policy, compiled once per fill; problems are logged, not thrown. */
  private compilePolicy(record: KeyAuthRecord): CompiledImagePolicy {
    const watermarkSource = record.watermarkFile ? `local:///tenants/${record.tenantId}/${record.watermarkFile}` : undefined;
    const policy = compileImagePolicy(mergeImagePolicy(record.planImagePolicy, record.tenantImagePolicy), {
      rules: this.policyRules,
      pro: this.pro,
      watermarkSource,
    });
    for (const problem of policy.problems) this.logger.warn(`image policy of tenant ${record.tenantId}: ${problem}`);
    return policy;
  }

  /**
   * Decrypts the signing pairs once per fill. A pair that does not open (SECRETS_KEY changed) is
   * left out: that key's signed URLs are refused, its header-mode requests still work.
   */
  private signersOf(record: KeyAuthRecord): ImgproxySigner[] {
    const pairs = [[record.signingKeyEnc, record.signingSaltEnc]];
    if (record.signingKeyPrevEnc && record.signingSaltPrevEnc) pairs.push([record.signingKeyPrevEnc, record.signingSaltPrevEnc]);
    const signers: ImgproxySigner[] = [];
    for (const [keyEnc, saltEnc] of pairs) {
      try {
        const keyHex = this.box.open(keyEnc, signingAad(record.keyId, 'key')).toString('hex');
        const saltHex = this.box.open(saltEnc, signingAad(record.keyId, 'salt')).toString('hex');
        signers.push(new ImgproxySigner(keyHex, saltHex));
      } catch (error) {
        this.logger.warn(`signing pair of key ${record.keyId} cannot be decrypted: ${(error as Error).message}`);
      }
    }
    return signers;
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

  private presentedKey(request: AuthenticationRequest): string | undefined {
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
