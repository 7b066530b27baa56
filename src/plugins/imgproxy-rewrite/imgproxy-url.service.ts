import { randomBytes } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { GatewayException, TENANT_AUTH_CHALLENGE } from '../../common/errors/gateway.exception';
import type { AuthContext } from '../../gateway/caller';
import { GatewayConfig } from '../../config/gateway-config';
import { applyImagePolicy, EMPTY_IMAGE_POLICY } from '../../signing/image-policy';
import { ImgproxyOptionRules } from '../../signing/imgproxy-options';
import { ImgproxySigner, INSECURE_SIGNATURE, toImgproxyRequestPath } from '../../signing/imgproxy-signature';
import {
  buildImgproxyPath,
  parseGatewayImgproxyPath,
  type GatewayImgproxyPath,
  type ImgproxyPath,
  type SignedModeImgproxyPath,
} from '../../signing/imgproxy-url';
import { isImgproxyRejection } from '../../signing/signing.errors';
import { SourcePolicy, type ApprovedSource } from '../../signing/source-policy';

/** What the proxy needs to send a tenant's image request to the pool. */
export interface UpstreamImageRequest {
  /** `/<pool signature or insecure>/<options>/<sandboxed source>`, to append to the backend URL. */
  readonly upstreamPath: string;
  /** `Authorization: Bearer <imgproxy.secret>` when a secret is configured. */
  readonly extraHeaders: Readonly<Record<string, string>>;
  readonly source: ApprovedSource;
}

/** A key's URL-signing material, as ApiKeyService answers it. */
export interface TenantSigningKey {
  /** The tenant behind the key; the same frozen object for as long as the key is cached. */
  readonly auth: AuthContext;
  /** The current pair first, then the previous one while a rotation is in progress. */
  readonly signers: readonly ImgproxySigner[];
}

/** A key holds at most two signing pairs (docs/tenants-and-keys.md, rotation). */
const SIGNING_PAIRS = 2;

/**
 * Glues the pure imgproxy code (src/signing) to the request path (docs/tenants-and-keys.md, docs/imgproxy.md): parses the raw
 * URL, verifies a tenant's signature, applies the tenant's image policy and source sandbox and
 * re-signs the result with the pool's own key, so backends only ever see URLs the gateway signed.
 */
@Injectable()
export class ImgproxyUrlService {
  private readonly sandbox: SourcePolicy;
  private readonly rules: ImgproxyOptionRules;
  private readonly poolSigner: ImgproxySigner | undefined;
  private readonly extraHeaders: Readonly<Record<string, string>>;
  /** Stands in for a pair a key does not have, so every verification costs the same. */
  private readonly decoy = new ImgproxySigner(randomBytes(32).toString('hex'), randomBytes(32).toString('hex'));

  constructor(config: GatewayConfig) {
    const { key, salt, secret, allowedSources, allowPrivateSourceAddresses, allowedSchemes } = config.imgproxy;
    if ((key === undefined) !== (salt === undefined)) {
      throw new Error('IMGPROXY_KEY and IMGPROXY_SALT (imgproxy.key, imgproxy.salt) must be set together');
    }
    this.poolSigner = key && salt ? new ImgproxySigner(key, salt) : undefined;
    const headers: Record<string, string> = secret ? { authorization: `Bearer ${secret}` } : {};
    this.extraHeaders = Object.freeze(headers);
    this.sandbox = new SourcePolicy({ allowedSources, allowPrivateAddresses: allowPrivateSourceAddresses, allowedSchemes });
    this.rules = new ImgproxyOptionRules(config.imgproxy);
  }

  /** Parses `/t/...` or `/i/...` exactly as received; 400 `bad_url` when it is no usable imgproxy URL. */
  parse(rawUrl: string): GatewayImgproxyPath {
    return refusingAsGatewayErrors(() => parseGatewayImgproxyPath(rawUrl));
  }

  /**
   * Signed mode: the signature must be the imgproxy signature of the path after it under one of
   * the key's signing pairs, or `insecure` when the tenant allows unsigned URLs. Without a key
   * (unknown, revoked, ...) the same work is done against decoys, so neither the answer nor the
   * time it takes tells a caller whether the key id exists. Answers what is wrong, or undefined.
   */
  signatureProblem(path: SignedModeImgproxyPath, key: TenantSigningKey | undefined): SignatureProblem | undefined {
    if (path.signature === INSECURE_SIGNATURE) return key?.auth.allowUnsignedUrls ? undefined : 'unsigned';
    const signers = key?.signers ?? [];
    let verified = false;
    // No early exit: both pairs (or their decoys) are always checked.
    for (let i = 0; i < SIGNING_PAIRS; i++) {
      const signer = signers[i];
      const match = (signer ?? this.decoy).verify(path.signature, path.signedPath);
      verified = verified || (signer !== undefined && match);
    }
    return verified ? undefined : 'bad_signature';
  }

  /** signatureProblem as the one 401 of signed URLs. */
  verifySignature(path: SignedModeImgproxyPath, key: TenantSigningKey): void {
    if (this.signatureProblem(path, key)) throw signedUrlRefusal();
  }

  /**
   * Applies the tenant's image policy (400 `bad_url` for options imgproxy would refuse, 403
   * `forbidden` for what the policy does not allow) and source sandbox (400 `bad_source`), then
   * signs the result with the pool's key. The tenant's option segments pass byte for byte; the
   * gateway's own (presets expanded, caps, defaults, watermark) are added after them.
   */
  upstreamFor(path: ImgproxyPath, auth: AuthContext, nowMs = Date.now()): UpstreamImageRequest {
    const { optionsPath, source } = refusingAsGatewayErrors(() => {
      const policy = applyImagePolicy(
        {
          options: path.options,
          optionsPath: path.optionsPath,
          extension: path.source.extension,
          signedUrl: auth.via === 'signed-url',
          nowSeconds: Math.floor(nowMs / 1000),
        },
        auth.imagePolicy ?? EMPTY_IMAGE_POLICY,
        this.rules,
      );
      // Second line of defence: limit-raising names in any spelling (decoded, other case).
      this.sandbox.checkOptions(path.options);
      const approved = this.sandbox.approveSource(path.source, { tenantId: auth.tenantId, allowedSources: auth.allowedSources });
      return { optionsPath: policy.optionsPath, source: approved };
    });
    return {
      upstreamPath: toImgproxyRequestPath(buildImgproxyPath(optionsPath, source), this.poolSigner),
      extraHeaders: this.extraHeaders,
      source,
    };
  }

  /**
   * Header mode (`/i/<signature-or-insecure>/...`), for the `/i/*` route once ApiKeyGuard has set
   * `request.gw.auth`: the API key authenticates, so the signature segment is not checked; the
   * source rules and the image policy are the same as in signed mode.
   */
  rewriteHeaderModeUrl(rawUrl: string, auth: AuthContext): UpstreamImageRequest {
    const path = this.parse(rawUrl);
    if (path.mode !== 'header') throw new GatewayException('bad_url', 'Header-mode image URLs start with /i/.');
    return this.upstreamFor(path, auth);
  }

  /**
   * A ready signed-mode URL (`/t/<keyId>/<signature>/<options>/<base64 source>`) for a source in
   * the tenant's own namespace, e.g. `local:///<name>` of an upload, signed with the key's
   * current pair. `optionsPath` is `''` or `/opt:a/opt:b`.
   */
  signedTenantUrl(keyId: string, key: TenantSigningKey, sourceUrl: string, optionsPath: string): string {
    const path = buildImgproxyPath(optionsPath, { encoding: 'base64', url: sourceUrl });
    const [current] = key.signers;
    if (!current) throw new GatewayException('unavailable', 'The signing key of this API key cannot be read.');
    return `/t/${keyId}${current.signPath(path)}`;
  }
}

/** Why a signed URL was refused; also the auth-failure metric's reason. */
export type SignatureProblem = 'unsigned' | 'bad_signature';

/**
 * The one answer for every signed URL that does not verify, whatever the reason (unknown,
 * revoked or expired key, bad signature, unsigned): same status, body and headers.
 */
export function signedUrlRefusal(): GatewayException {
  return new GatewayException('unauthorized', 'A valid URL signature is required.', {}, { 'www-authenticate': TENANT_AUTH_CHALLENGE });
}

/** The pure code's typed refusals become the catalogue's 400s and 403s, with their tenant-safe messages. */
function refusingAsGatewayErrors<T>(step: () => T): T {
  try {
    return step();
  } catch (error) {
    if (isImgproxyRejection(error)) throw new GatewayException(error.code, error.message);
    throw error;
  }
}
