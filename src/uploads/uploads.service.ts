import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { Injectable, Logger, Optional } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type Sharp from 'sharp';
import { ApiKeyService } from '../plugins/key-auth/api-key.service';
import { GatewayException } from '../common/errors/gateway.exception';
import { refusals } from '../common/errors/refusals';
import type { AuthContext } from '../gateway/caller';
import { tenantFolder } from '../common/tenant-folder';
import { GatewayConfig } from '../config/gateway-config';
import { ImgproxyUrlService } from '../plugins/imgproxy-rewrite/imgproxy-url.service';
import { CachePurgeService } from '../plugins/proxy-cache/cache-purge.service';
import { QuotaService, type StorageReservation } from '../plugins/quota/quota.service';
import { ImagePageDto, ImageResponseDto } from './image.dto';
import { ImagesRepository, StorageQuotaExceededError, type StoredImage } from './images.repository';
import {
  MalformedUploadError,
  receiveMultipartUpload,
  receiveRawUpload,
  UnsupportedUploadTypeError,
  UploadTooLargeError,
  type ReceivedFile,
} from './upload-receiver';

const RAW_TYPES = /^(image\/[a-z0-9.+-]+|application\/octet-stream)$/;
const MAX_ORIGINAL_NAME = 255;

/**
 * Uploads (docs/imgproxy.md): streams the body to a temporary file beside its final place, decides the type
 * by magic bytes, then moves it into `<uploads.root>/tenants/<tenantId>/` and inserts the row in
 * one transaction, so a refused, failed or abandoned upload leaves neither a file nor a row.
 *
 * Storage quota: checked before the write (QuotaService, also holding the declared size while the
 * body streams) and enforced on the real size inside the insert transaction under a per-tenant
 * lock, so concurrent uploads on any number of instances cannot overshoot it.
 */
@Injectable()
export class UploadsService {
  private readonly logger = new Logger('Uploads');
  private readonly root: string;
  private readonly urlOptions: string;

  constructor(
    private readonly images: ImagesRepository,
    private readonly urls: ImgproxyUrlService,
    private readonly keys: ApiKeyService,
    private readonly config: GatewayConfig,
    @Optional() private readonly quotas?: QuotaService,
    @Optional() private readonly cachePurge?: CachePurgeService,
  ) {
    this.root = resolve(config.uploads.root);
    this.urlOptions = config.uploads.signedUrlOptions ? `/${config.uploads.signedUrlOptions}` : '';
  }

  async upload(request: FastifyRequest, auth: AuthContext): Promise<ImageResponseDto> {
    const { maxBytes, maxPixels, allowSvg } = this.config.uploads;
    // The route masks `request.headers['content-type']` to stream the body; the client's is on the raw request.
    const headers = request.raw.headers;
    const mediaType = (headers['content-type'] ?? 'application/octet-stream').split(';', 1)[0].trim().toLowerCase();
    const multipart = mediaType === 'multipart/form-data';
    if (!multipart && !RAW_TYPES.test(mediaType)) {
      throw refusals.unsupportedMediaType(
        'Send the image as multipart/form-data (field "file") or as a raw body with an image/* or application/octet-stream type.',
      );
    }
    // The whole body counts, multipart framing and other parts included (docs/imgproxy.md, Uploads).
    const declared = headers['content-length'] === undefined ? undefined : Number(headers['content-length']);
    if (declared !== undefined && declared > maxBytes) throw tooLarge(maxBytes);

    const reservation = await this.reserve(auth, !multipart && declared !== undefined ? declared : 0);
    const folder = this.tenantFolder(auth.tenantId);
    const id = randomUUID();
    const tempPath = join(folder, `.${id}.upload`);
    let received: ReceivedFile | undefined;
    try {
      await fs.mkdir(folder, { recursive: true });
      const body = request.body instanceof Readable ? request.body : request.raw;
      // Bandwidth counts what was transferred, refused uploads included (docs/rate-limits-and-quotas.md).
      request.gw.bytesIn = 0;
      body.on('data', (chunk: Buffer) => (request.gw.bytesIn = (request.gw.bytesIn ?? 0) + chunk.length));
      const options = { tempPath, maxBytes, allowSvg };
      received = multipart ? await receiveMultipartUpload(body, headers, options) : await receiveRawUpload(body, options);
      const { width, height } = await this.dimensions(tempPath, maxPixels);
      const fileName = `${id}.${received.type.extension}`;
      const finalPath = join(folder, fileName);
      let moved = false;
      try {
        const stored = await this.images.insertWithinQuota(
          {
            id,
            tenantId: auth.tenantId,
            fileName,
            contentType: received.type.contentType,
            sizeBytes: received.bytes,
            sha256: received.sha256,
            width,
            height,
            originalName: cleanOriginalName(received.originalName),
          },
          auth.limits.storageBytes,
          async () => {
            // Inside the transaction: if the rename fails, the row is rolled back.
            await fs.rename(tempPath, finalPath);
            moved = true;
          },
        );
        return this.toResponse(stored, auth);
      } catch (error) {
        // The commit failed after the file moved: the file must go, there is no row for it.
        if (moved) await removeQuietly(finalPath);
        throw error;
      }
    } catch (error) {
      await removeQuietly(tempPath);
      throw this.refusal(error, maxBytes, auth);
    } finally {
      reservation?.release();
    }
  }

  async list(auth: AuthContext, limit: number, offset: number): Promise<ImagePageDto> {
    const page = await this.images.findPage(auth.tenantId, limit, offset);
    const items = await Promise.all(page.items.map((image) => this.toResponse(image, auth)));
    return { items, total: page.total, limit, offset };
  }

  async get(auth: AuthContext, id: string): Promise<ImageResponseDto> {
    const image = await this.images.getById(auth.tenantId, id);
    // Another tenant's image is as absent as a missing one.
    if (!image) throw refusals.notFound('No such image.');
    return this.toResponse(image, auth);
  }

  /**
   * Removes the row and the file, which frees its storage quota. The file is first moved aside
   * inside the delete transaction (and moved back if the commit fails), so a failure never
   * leaves a row without its file. Its cached variants are dropped on every instance.
   */
  async delete(auth: AuthContext, id: string): Promise<void> {
    const folder = this.tenantFolder(auth.tenantId);
    let aside: { from: string; to: string } | undefined;
    let fileName: string | undefined;
    try {
      const deleted = await this.images.deleteById(auth.tenantId, id, async (image) => {
        fileName = image.fileName;
        const from = join(folder, image.fileName);
        const to = join(folder, `.${image.id}.deleted`);
        try {
          await fs.rename(from, to);
          aside = { from, to };
        } catch (error) {
          // Already gone from the disk: deleting the row is all that is left to do.
          if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        }
      });
      if (!deleted) throw refusals.notFound('No such image.');
    } catch (error) {
      if (aside) await fs.rename(aside.to, aside.from).catch((e: Error) => this.logger.error(`could not restore ${aside?.from}: ${e.message}`));
      throw error;
    }
    if (aside) await removeQuietly(aside.to);
    if (fileName) await this.cachePurge?.purgeEventually({ tenantId: auth.tenantId, prefix: uploadSource(fileName) });
  }

  tenantFolder(tenantId: string): string {
    return tenantFolder(this.root, tenantId);
  }

  private async toResponse(image: StoredImage, auth: AuthContext): Promise<ImageResponseDto> {
    const source = uploadSource(image.fileName);
    return {
      id: image.id,
      bytes: image.sizeBytes,
      size: image.sizeBytes,
      type: image.contentType,
      sha256: image.sha256,
      width: image.width,
      height: image.height,
      source,
      url: auth.keyId ? this.urls.signedTenantUrl(auth.keyId, await this.keys.resolveSigningKey(auth.keyId), source, this.urlOptions) : null,
      originalName: image.originalName,
      createdAt: image.createdAt,
    };
  }

  /** Pre-write check (and hold of the declared size); the insert transaction has the last word. */
  private async reserve(auth: AuthContext, bytes: number): Promise<StorageReservation | undefined> {
    if (this.quotas) return this.quotas.reserveStorage(auth, bytes);
    const stored = await this.images.storedBytes(auth.tenantId);
    if (stored + bytes > auth.limits.storageBytes) throw storageExceeded(stored, auth.limits.storageBytes);
    return undefined;
  }

  /**
   * Width and height from the header, never decoding the pixels (sharp's metadata), and the
   * refusal of an image larger than `maxPixels` per frame: imgproxy would have to decode it
   * whole for every variant, and such sizes are how decompression bombs look. A file that does
   * not decode as what its magic says is refused.
   */
  private async dimensions(path: string, maxPixels: number): Promise<{ width: number | null; height: number | null }> {
    let metadata: Awaited<ReturnType<Sharp.Sharp['metadata']>>;
    try {
      // sharp's own pixel limit would refuse before we can say why; ours decides below.
      metadata = await loadSharp()(path, { limitInputPixels: false }).metadata();
    } catch {
      // sharp's message names the temporary path; the client only needs the verdict.
      throw new UnsupportedUploadTypeError(false);
    }
    const width = metadata.width ?? null;
    const height = metadata.height ?? null;
    const frameHeight = metadata.pageHeight ?? height;
    if (width !== null && frameHeight !== null && width * frameHeight > maxPixels) throw new ImageTooLargeError(width, frameHeight, maxPixels);
    return { width, height };
  }

  private refusal(error: unknown, maxBytes: number, auth: AuthContext): unknown {
    if (error instanceof UploadTooLargeError) return tooLarge(maxBytes);
    if (error instanceof ImageTooLargeError) {
      return refusals.payloadTooLarge(`Images are limited to ${error.maxPixels} pixels; this one has ${error.width} × ${error.height}.`, {
        limitPixels: error.maxPixels,
      });
    }
    if (error instanceof UnsupportedUploadTypeError) return refusals.unsupportedMediaType(error.message);
    if (error instanceof MalformedUploadError) return refusals.validationFailed([], error.message);
    if (error instanceof StorageQuotaExceededError) return storageExceeded(error.usedBytes, auth.limits.storageBytes);
    return error;
  }
}

/** The image header names more pixels per frame than `uploads.maxPixels`. */
class ImageTooLargeError extends Error {
  constructor(
    readonly width: number,
    readonly height: number,
    readonly maxPixels: number,
  ) {
    super('image too large');
  }
}

/** The source an upload is addressed by in image URLs, and what its cached variants are purged by. */
function uploadSource(fileName: string): string {
  return `local:///${fileName}`;
}

function tooLarge(maxBytes: number): GatewayException {
  return refusals.payloadTooLarge(`Uploads are limited to ${maxBytes} bytes.`, { limit: maxBytes });
}

function storageExceeded(used: number, limit: number): GatewayException {
  // No clock frees storage (images must be deleted): the quota carries no period to wait for.
  return refusals.quotaExceeded('storageBytes', { extras: { limit, used } });
}

/** Kept for display only: control characters dropped, length bounded. */
function cleanOriginalName(name: string | undefined): string | null {
  if (!name) return null;
  const cleaned = name.replace(/[\u0000-\u001f\u007f]/g, '').slice(0, MAX_ORIGINAL_NAME);
  return cleaned || null;
}

async function removeQuietly(path: string): Promise<void> {
  await fs.rm(path, { force: true });
}

let sharpModule: typeof Sharp | undefined;

/**
 * sharp (libvips) is loaded on the first upload, not at start: its native libraries add about
 * 20 MiB of resident memory to every gateway process, most of which never receives an upload.
 */
function loadSharp(): typeof Sharp {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  sharpModule ??= require('sharp') as typeof Sharp;
  return sharpModule;
}
