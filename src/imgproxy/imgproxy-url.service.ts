import { Injectable } from '@nestjs/common';
import { GatewayException } from '../common/errors/gateway.exception';
import type { AuthContext } from '../common/http/request-context';
import { GatewayConfig } from '../config/gateway-config';
import { ImgproxySigner, INSECURE_SIGNATURE, toImgproxyRequestPath } from '../signing/imgproxy-signature';
import {
  buildImgproxyPath,
  parseGatewayImgproxyPath,
  type GatewayImgproxyPath,
  type ImgproxyPath,
  type SignedModeImgproxyPath,
} from '../signing/imgproxy-url';
import { isImgproxyRejection } from '../signing/signing.errors';
import { SourcePolicy, type ApprovedSource } from '../signing/source-policy';

/** What the proxy needs to send a tenant's image request to the pool. */
export interface UpstreamImageRequest {
  /** `/<pool signature or insecure>/<options>/<sandboxed source>`, to append to the backend URL. */
  readonly upstreamPath: string;
  /** `Authorization: Bearer <imgproxy.secret>` when a secret is configured. */
  readonly extraHeaders: Readonly<Record<string, string>>;
  readonly source: ApprovedSource;
}

/** A key's URL-signing material, as ApiKeyService.resolveSigningKey answers it. */
export interface TenantSigningKey {
  /** The tenant behind the key; the same frozen object for as long as the key is cached. */
  readonly auth: AuthContext;
  readonly signingKeyHex: string;
  readonly signingSaltHex: string;
}

/**
 * Glues the pure imgproxy code (src/signing) to the request path (docs/tenants-and-keys.md, docs/imgproxy.md): parses the raw
 * URL, verifies a tenant's signature, applies the tenant's source sandbox and re-signs the
 * result with the pool's own key, so backends only ever see URLs the gateway signed.
 */
@Injectable()
export class ImgproxyUrlService {
  private readonly policy: SourcePolicy;
  private readonly poolSigner: ImgproxySigner | undefined;
  private readonly extraHeaders: Readonly<Record<string, string>>;
  /** Parsing a key's hex on every request would be waste: one signer per cached key entry. */
  private readonly tenantSigners = new WeakMap<AuthContext, ImgproxySigner>();

  constructor(config: GatewayConfig) {
    const { key, salt, secret, allowedSources, allowPrivateSourceAddresses, allowedSchemes } = config.imgproxy;
    if ((key === undefined) !== (salt === undefined)) {
      throw new Error('IMGPROXY_KEY and IMGPROXY_SALT (imgproxy.key, imgproxy.salt) must be set together');
    }
    this.poolSigner = key && salt ? new ImgproxySigner(key, salt) : undefined;
    const headers: Record<string, string> = secret ? { authorization: `Bearer ${secret}` } : {};
    this.extraHeaders = Object.freeze(headers);
    this.policy = new SourcePolicy({ allowedSources, allowPrivateAddresses: allowPrivateSourceAddresses, allowedSchemes });
  }

  /** Parses `/t/...` or `/i/...` exactly as received; 400 `bad_url` when it is no usable imgproxy URL. */
  parse(rawUrl: string): GatewayImgproxyPath {
    return refusingAsGatewayErrors(() => parseGatewayImgproxyPath(rawUrl));
  }

  /**
   * Signed mode: the signature must be the tenant key's imgproxy signature of the path after it,
   * or `insecure` when the tenant allows unsigned URLs. Answers what is wrong, or undefined.
   */
  signatureProblem(path: SignedModeImgproxyPath, key: TenantSigningKey): SignatureProblem | undefined {
    if (path.signature === INSECURE_SIGNATURE) return key.auth.allowUnsignedUrls ? undefined : 'unsigned';
    return this.signerFor(key).verify(path.signature, path.signedPath) ? undefined : 'bad_signature';
  }

  /** signatureProblem as a 401 `unauthorized`. */
  verifySignature(path: SignedModeImgproxyPath, key: TenantSigningKey): void {
    const problem = this.signatureProblem(path, key);
    if (problem) throw signatureRefusal(problem);
  }

  /**
   * Applies the tenant's source sandbox (400 `bad_source` / `bad_url`) and signs the result with
   * the pool's key. Options pass through byte for byte.
   */
  upstreamFor(path: ImgproxyPath, auth: AuthContext): UpstreamImageRequest {
    const approved = refusingAsGatewayErrors(() =>
      this.policy.approve(path, { tenantId: auth.tenantId, allowedSources: auth.allowedSources }),
    );
    return {
      upstreamPath: toImgproxyRequestPath(approved.upstreamPath, this.poolSigner),
      extraHeaders: this.extraHeaders,
      source: approved.source,
    };
  }

  /**
   * Header mode (`/i/<signature-or-insecure>/...`), for the `/i/*` route once ApiKeyGuard has set
   * `request.gw.auth`: the API key authenticates, so the signature segment is not checked; the
   * source rules are the same as in signed mode.
   */
  rewriteHeaderModeUrl(rawUrl: string, auth: AuthContext): UpstreamImageRequest {
    const path = this.parse(rawUrl);
    if (path.mode !== 'header') throw new GatewayException('bad_url', 'Header-mode image URLs start with /i/.');
    return this.upstreamFor(path, auth);
  }

  /**
   * A ready signed-mode URL (`/t/<keyId>/<signature>/<options>/<base64 source>`) for a source in
   * the tenant's own namespace, e.g. `local:///<name>` of an upload. `optionsPath` is `''` or
   * `/opt:a/opt:b`.
   */
  signedTenantUrl(keyId: string, key: TenantSigningKey, sourceUrl: string, optionsPath: string): string {
    const path = buildImgproxyPath(optionsPath, { encoding: 'base64', url: sourceUrl });
    return `/t/${keyId}${this.signerFor(key).signPath(path)}`;
  }

  private signerFor(key: TenantSigningKey): ImgproxySigner {
    let signer = this.tenantSigners.get(key.auth);
    if (!signer) {
      signer = new ImgproxySigner(key.signingKeyHex, key.signingSaltHex);
      this.tenantSigners.set(key.auth, signer);
    }
    return signer;
  }
}

/** Why a signed URL was refused; also the auth-failure metric's reason. */
export type SignatureProblem = 'unsigned' | 'bad_signature';

export function signatureRefusal(problem: SignatureProblem): GatewayException {
  return new GatewayException(
    'unauthorized',
    problem === 'unsigned' ? 'Unsigned URLs are not enabled for this account.' : 'The URL signature is invalid.',
  );
}

/** The pure code's typed refusals become the catalogue's 400s, with their tenant-safe messages. */
function refusingAsGatewayErrors<T>(step: () => T): T {
  try {
    return step();
  } catch (error) {
    if (isImgproxyRejection(error)) throw new GatewayException(error.code, error.message);
    throw error;
  }
}
