import type { CompiledImagePolicy } from '../signing/image-policy';

/** A tenant's limits after its per-tenant overrides are applied to its plan. */
export interface EffectiveLimits {
  perMinute: number;
  perHour: number;
  /** Bucket capacity; undefined = the per-window figure. */
  burst?: number;
  monthlyRequests: number;
  dailyRequests?: number;
  monthlyBandwidthBytes: number;
  storageBytes: number;
}

/** What the auth guards learn about the caller (from cache on the hot path), read by every later step. */
export interface AuthContext {
  tenantId: string;
  tenantName: string;
  /** Public key id (`igw_<keyId>_...`), or undefined for JWT callers. */
  keyId?: string;
  scopes: readonly string[];
  via: 'api-key' | 'signed-url' | 'jwt';
  limits: EffectiveLimits;
  /** Remote source prefixes this tenant may fetch from (docs/imgproxy.md). */
  allowedSources: readonly string[];
  allowUnsignedUrls: boolean;
  /** The plan's and tenant's image policy, merged and compiled once per key-cache fill (docs/imgproxy.md). */
  imagePolicy?: CompiledImagePolicy;
}
