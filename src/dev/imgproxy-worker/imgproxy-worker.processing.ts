import sharp from 'sharp';
import type { ImgproxyOption } from '../../signing/imgproxy-url';
import { UrlRejectedError } from '../../signing/signing.errors';

/**
 * The subset of imgproxy's processing options the development worker implements, with imgproxy's
 * argument rules (empty arguments keep the default, Go-style booleans) so URLs that work here
 * behave the same on a real imgproxy.
 */

export type OutputFormat = 'jpeg' | 'png' | 'webp' | 'avif' | 'gif';
export type ResizingType = 'fit' | 'fill' | 'fill-down' | 'force' | 'auto';
export type GravityType = 'ce' | 'no' | 'so' | 'ea' | 'we' | 'noea' | 'nowe' | 'soea' | 'sowe' | 'sm';
export type WatermarkPosition = Exclude<GravityType, 'sm'> | 're';

export interface WatermarkPlan {
  readonly opacity: number;
  readonly position: WatermarkPosition;
  readonly xOffset: number;
  readonly yOffset: number;
  /** Relative to the result; 0 keeps the watermark's own size. */
  readonly scale: number;
}

export interface ProcessingPlan {
  readonly resizingType: ResizingType;
  /** 0 keeps the aspect ratio from the other dimension, as in imgproxy. */
  readonly width: number;
  readonly height: number;
  readonly enlarge: boolean;
  /** Multiplies the requested size (HiDPI), as imgproxy's dpr. */
  readonly dpr: number;
  readonly gravity: GravityType;
  /** Undefined keeps the source format when it can be written. */
  readonly format: OutputFormat | undefined;
  /** Undefined (or `q:0`) means the default quality. */
  readonly quality: number | undefined;
  /** imgproxy's security options, in pixels and bytes; undefined keeps the worker's defaults. */
  readonly maxSrcResolution: number | undefined;
  readonly maxSrcFileSize: number | undefined;
  /** Scales the result down to fit this many pixels on its longer side. */
  readonly maxResultDimension: number | undefined;
  /** Drawn with the worker's built-in watermark image (imgproxy's IMGPROXY_WATERMARK_*). */
  readonly watermark: WatermarkPlan | undefined;
}

export interface ProcessedImage {
  readonly body: Buffer;
  readonly format: OutputFormat;
  readonly width: number;
  readonly height: number;
}

/** imgproxy answers invalid or unsupported options with 422. */
export class ProcessingOptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProcessingOptionError';
  }
}

export const CONTENT_TYPES: Readonly<Record<OutputFormat, string>> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  avif: 'image/avif',
  gif: 'image/gif',
};

/** imgproxy's default IMGPROXY_QUALITY. */
const DEFAULT_QUALITY = 80;
/** A development server still should not be talked into allocating gigapixel canvases. */
const MAX_RESULT_DIMENSION = 8192;
const MAX_SOURCE_PIXELS = 50_000_000;

const FORMATS: Readonly<Record<string, OutputFormat>> = {
  jpg: 'jpeg',
  jpeg: 'jpeg',
  png: 'png',
  webp: 'webp',
  avif: 'avif',
  gif: 'gif',
};
const RESIZING_TYPES: ReadonlySet<string> = new Set<ResizingType>(['fit', 'fill', 'fill-down', 'force', 'auto']);
const GRAVITY_POSITIONS: Readonly<Record<Exclude<GravityType, 'sm'>, string>> = {
  ce: 'centre',
  no: 'north',
  so: 'south',
  ea: 'east',
  we: 'west',
  noea: 'northeast',
  nowe: 'northwest',
  soea: 'southeast',
  sowe: 'southwest',
};

type MutablePlan = { -readonly [K in keyof ProcessingPlan]: ProcessingPlan[K] };

/** The built-in watermark: a white square with a dark frame, like a logo on any photo. */
const WATERMARK_SIZE = 64;

/**
 * Applies the URL's options in order (later ones win, as in imgproxy) plus the `@ext`/`.ext`
 * format. An expired `exp` is refused like imgproxy refuses it (404).
 */
export function planProcessing(options: readonly ImgproxyOption[], extension: string | undefined, nowMs = Date.now()): ProcessingPlan {
  const plan: MutablePlan = {
    resizingType: 'fit',
    width: 0,
    height: 0,
    enlarge: false,
    dpr: 1,
    gravity: 'ce',
    format: undefined,
    quality: undefined,
    maxSrcResolution: undefined,
    maxSrcFileSize: undefined,
    maxResultDimension: undefined,
    watermark: undefined,
  };
  for (const { name, args } of options) applyOption(plan, name, args, nowMs);
  // imgproxy applies the extension after the options, so it overrides `format`.
  if (extension !== undefined) plan.format = parseFormat(extension);
  return plan;
}

function applyOption(plan: MutablePlan, name: string, args: readonly string[], nowMs: number): void {
  switch (name) {
    case 'resize':
    case 'rs':
      expectArgs(name, args, 5);
      if (args[0]) plan.resizingType = parseResizingType(args[0]);
      applySize(plan, name, args.slice(1));
      return;
    case 'size':
    case 's':
      expectArgs(name, args, 4);
      applySize(plan, name, args);
      return;
    case 'resizing_type':
    case 'rt':
      expectArgs(name, args, 1);
      plan.resizingType = parseResizingType(args[0]);
      return;
    case 'width':
    case 'w':
      expectArgs(name, args, 1);
      plan.width = parseDimension(name, args[0]);
      return;
    case 'height':
    case 'h':
      expectArgs(name, args, 1);
      plan.height = parseDimension(name, args[0]);
      return;
    case 'enlarge':
    case 'el':
      expectArgs(name, args, 1);
      plan.enlarge = parseBool(args[0]);
      return;
    case 'dpr':
      expectArgs(name, args, 1);
      plan.dpr = parsePositiveNumber(name, args[0]);
      return;
    case 'gravity':
    case 'g':
      plan.gravity = parseGravity(args);
      return;
    case 'format':
    case 'f':
    case 'ext':
      expectArgs(name, args, 1);
      plan.format = parseFormat(args[0]);
      return;
    case 'quality':
    case 'q':
      expectArgs(name, args, 1);
      plan.quality = parseQuality(args[0]);
      return;
    case 'cachebuster':
    case 'cb':
      // Only changes the URL (and so caches); nothing to do here.
      return;
    case 'max_src_resolution':
    case 'msr':
      expectArgs(name, args, 1);
      plan.maxSrcResolution = Math.floor(parsePositiveNumber(name, args[0]) * 1_000_000);
      return;
    case 'max_src_file_size':
    case 'msfs':
      expectArgs(name, args, 1);
      plan.maxSrcFileSize = parseInteger(name, args[0]);
      return;
    case 'max_result_dimension':
    case 'mrd':
      expectArgs(name, args, 1);
      plan.maxResultDimension = parseInteger(name, args[0]);
      return;
    case 'expires':
    case 'exp': {
      expectArgs(name, args, 1);
      const timestamp = parseInteger(name, args[0]);
      if (timestamp > 0 && timestamp * 1000 < nowMs) throw new UrlRejectedError('Expired URL');
      return;
    }
    case 'watermark':
    case 'wm':
      plan.watermark = parseWatermark(args, plan.watermark);
      return;
    default:
      throw new ProcessingOptionError(`Unknown processing option: ${name}`);
  }
}

/** `width:height:enlarge:extend`, each optional. */
function applySize(plan: MutablePlan, name: string, args: readonly string[]): void {
  if (args[0]) plan.width = parseDimension(name, args[0]);
  if (args[1]) plan.height = parseDimension(name, args[1]);
  if (args[2]) plan.enlarge = parseBool(args[2]);
  if (args[3] && parseBool(args[3])) throw new ProcessingOptionError('The extend argument is not supported by this worker');
}

function expectArgs(name: string, args: readonly string[], max: number): void {
  if (args.length === 0 || args.length > max) throw new ProcessingOptionError(`Invalid ${name} arguments: ${args.join(':')}`);
}

function parseResizingType(value: string): ResizingType {
  if (!RESIZING_TYPES.has(value)) throw new ProcessingOptionError(`Invalid resizing type: ${value}`);
  return value as ResizingType;
}

function parseDimension(name: string, value: string): number {
  const parsed = /^\+?\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(parsed)) throw new ProcessingOptionError(`Invalid ${name}: ${value}`);
  if (parsed > MAX_RESULT_DIMENSION) throw new ProcessingOptionError(`The ${name} is larger than ${MAX_RESULT_DIMENSION}`);
  return parsed;
}

/** Go's strconv.ParseBool; imgproxy treats anything else as false. */
function parseBool(value: string): boolean {
  return ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value);
}

function parseGravity(args: readonly string[]): GravityType {
  const [type, ...offsets] = args;
  if (type === 'sm' && offsets.length === 0) return 'sm';
  if (type in GRAVITY_POSITIONS && offsets.length <= 2 && offsets.every((offset) => offset === '' || Number(offset) === 0)) {
    return type as GravityType;
  }
  throw new ProcessingOptionError(`Unsupported gravity: ${args.join(':')}`);
}

function parseInteger(name: string, value: string): number {
  const parsed = /^[+-]?\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(parsed)) throw new ProcessingOptionError(`Invalid ${name}: ${value}`);
  return parsed;
}

function parsePositiveNumber(name: string, value: string): number {
  const parsed = /^\d*\.?\d+$/.test(value) ? Number(value) : NaN;
  if (!(parsed > 0)) throw new ProcessingOptionError(`Invalid ${name}: ${value}`);
  return parsed;
}

function parseNumber(name: string, value: string): number {
  const parsed = /^[+-]?\d*\.?\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isFinite(parsed)) throw new ProcessingOptionError(`Invalid ${name}: ${value}`);
  return parsed;
}

/** `opacity:position:x:y:scale`; empty arguments keep what an earlier watermark option set, as in imgproxy. */
function parseWatermark(args: readonly string[], previous: WatermarkPlan | undefined): WatermarkPlan | undefined {
  if (args.length === 0 || args.length > 7) throw new ProcessingOptionError(`Invalid watermark arguments: ${args.join(':')}`);
  const opacity = parseNumber('watermark opacity', args[0]);
  if (opacity < 0 || opacity > 1) throw new ProcessingOptionError(`Invalid watermark opacity: ${args[0]}`);
  let position = previous?.position ?? 'ce';
  if (args[1]) {
    if (!(args[1] in GRAVITY_POSITIONS) && args[1] !== 're') throw new ProcessingOptionError(`Invalid watermark position: ${args[1]}`);
    position = args[1] as WatermarkPosition;
  }
  const xOffset = args[2] ? parseNumber('watermark X offset', args[2]) : (previous?.xOffset ?? 0);
  const yOffset = args[3] ? parseNumber('watermark Y offset', args[3]) : (previous?.yOffset ?? 0);
  const scale = args[4] ? parseNumber('watermark scale', args[4]) : (previous?.scale ?? 0);
  if (scale < 0) throw new ProcessingOptionError(`Invalid watermark scale: ${args[4]}`);
  // imgproxy: an opacity of 0 turns the watermark off.
  return opacity > 0 ? { opacity, position, xOffset, yOffset, scale } : undefined;
}

function parseFormat(value: string): OutputFormat {
  const format = FORMATS[value.toLowerCase()];
  if (!format) throw new ProcessingOptionError(`Unsupported output format: ${value}`);
  return format;
}

function parseQuality(value: string): number | undefined {
  const quality = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(quality >= 0 && quality <= 100)) throw new ProcessingOptionError(`Invalid quality: ${value}`);
  return quality === 0 ? undefined : quality;
}

/**
 * Decodes, auto-rotates, resizes and encodes one source image. The source limits refuse like
 * imgproxy's (422); the result dimension limit and the watermark apply after resizing, as in
 * imgproxy, in a second pass over the raw pixels.
 */
export async function processImage(source: Buffer, plan: ProcessingPlan): Promise<ProcessedImage> {
  if (plan.maxSrcFileSize !== undefined && plan.maxSrcFileSize > 0 && source.length > plan.maxSrcFileSize) {
    throw new ProcessingOptionError('Source image file is too big');
  }
  let image = sharp(source, { limitInputPixels: MAX_SOURCE_PIXELS, autoOrient: true, animated: false });
  const metadata = await image.metadata();
  const sourceWidth = metadata.autoOrient?.width ?? metadata.width;
  const sourceHeight = metadata.autoOrient?.height ?? metadata.height;
  if (plan.maxSrcResolution !== undefined && sourceWidth * sourceHeight > plan.maxSrcResolution) {
    throw new ProcessingOptionError('Source image resolution is too big');
  }
  const format = plan.format ?? defaultFormat(metadata.format, metadata.hasAlpha);

  const resize = resizeOptions(plan, sourceWidth, sourceHeight);
  if (resize) image.resize(resize);
  if (plan.maxResultDimension || plan.watermark) image = await finishPass(image, plan);

  const quality = plan.quality ?? DEFAULT_QUALITY;
  switch (format) {
    case 'jpeg':
      image.jpeg({ quality });
      break;
    case 'webp':
      image.webp({ quality });
      break;
    case 'avif':
      image.avif({ quality });
      break;
    case 'png':
      image.png();
      break;
    case 'gif':
      image.gif();
      break;
  }
  const { data, info } = await image.toBuffer({ resolveWithObject: true });
  return { body: data, format, width: info.width, height: info.height };
}

/** The result dimension limit and the watermark, on the resized pixels. */
async function finishPass(image: sharp.Sharp, plan: ProcessingPlan): Promise<sharp.Sharp> {
  const { data, info } = await image.ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  let width = info.width;
  let height = info.height;
  let next = sharp(data, { raw: { width, height, channels: info.channels } });
  const limit = plan.maxResultDimension;
  if (limit && (width > limit || height > limit)) {
    const factor = Math.min(limit / width, limit / height);
    width = Math.max(1, Math.round(width * factor));
    height = Math.max(1, Math.round(height * factor));
    next = sharp(await next.resize({ width, height, fit: 'fill' }).raw().toBuffer(), { raw: { width, height, channels: info.channels } });
  }
  if (plan.watermark) next = next.composite(await watermarkLayers(plan.watermark, width, height));
  return next;
}

async function watermarkLayers(watermark: WatermarkPlan, width: number, height: number): Promise<sharp.OverlayOptions[]> {
  let size = WATERMARK_SIZE;
  if (watermark.scale > 0) size = Math.max(1, Math.round(Math.min(width, height) * watermark.scale));
  size = Math.min(size, width, height);
  const frame = Math.max(1, Math.round(size / 8));
  const alpha = Math.round(255 * watermark.opacity);
  const pixels = Buffer.alloc(size * size * 4);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const edge = x < frame || y < frame || x >= size - frame || y >= size - frame;
      pixels.set(edge ? [20, 20, 20, alpha] : [255, 255, 255, alpha], (y * size + x) * 4);
    }
  }
  const input = await sharp(pixels, { raw: { width: size, height: size, channels: 4 } }).png().toBuffer();
  if (watermark.position === 're') return [{ input, tile: true, gravity: 'northwest' }];
  // Offsets of 1 or more (in either direction) are pixels, smaller ones a share of the image.
  const offset = (value: number, extent: number) => Math.round(Math.abs(value) >= 1 ? value : value * extent);
  const [horizontal, vertical] = WATERMARK_ANCHORS[watermark.position];
  const left = clamp(anchor(horizontal, width, size) + offset(watermark.xOffset, width) * (horizontal === 'end' ? -1 : 1), 0, width - size);
  const top = clamp(anchor(vertical, height, size) + offset(watermark.yOffset, height) * (vertical === 'end' ? -1 : 1), 0, height - size);
  return [{ input, left, top }];
}

type Anchor = 'start' | 'middle' | 'end';
const WATERMARK_ANCHORS: Readonly<Record<Exclude<WatermarkPosition, 're'>, [Anchor, Anchor]>> = {
  ce: ['middle', 'middle'],
  no: ['middle', 'start'],
  so: ['middle', 'end'],
  ea: ['end', 'middle'],
  we: ['start', 'middle'],
  noea: ['end', 'start'],
  nowe: ['start', 'start'],
  soea: ['end', 'end'],
  sowe: ['start', 'end'],
};

function anchor(where: Anchor, extent: number, size: number): number {
  return where === 'start' ? 0 : where === 'end' ? extent - size : Math.round((extent - size) / 2);
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(Math.max(value, min), max);
}

function defaultFormat(sourceFormat: string | undefined, hasAlpha: boolean | undefined): OutputFormat {
  const same = sourceFormat === undefined ? undefined : FORMATS[sourceFormat];
  if (same) return same;
  // imgproxy's fallback when the source format cannot be written.
  return hasAlpha ? 'png' : 'jpeg';
}

function resizeOptions(plan: ProcessingPlan, sourceWidth: number, sourceHeight: number): sharp.ResizeOptions | undefined {
  let width = Math.round(plan.width * plan.dpr);
  let height = Math.round(plan.height * plan.dpr);
  if (width === 0 && height === 0) return undefined;
  const both = width > 0 && height > 0;
  let type = plan.resizingType;
  if (type === 'auto') type = both && sourceWidth >= sourceHeight === width >= height ? 'fill' : 'fit';

  if (type === 'fill-down' && both && !plan.enlarge && (width > sourceWidth || height > sourceHeight)) {
    // Keep the requested aspect ratio at the largest size the source covers, as imgproxy does.
    const ratio = Math.min(sourceWidth / width, sourceHeight / height);
    width = Math.max(1, Math.round(width * ratio));
    height = Math.max(1, Math.round(height * ratio));
  }

  const fit: keyof sharp.FitEnum =
    !both || type === 'fit' ? 'inside' : type === 'force' ? 'fill' : 'cover';
  const position = plan.gravity === 'sm' ? sharp.strategy.attention : GRAVITY_POSITIONS[plan.gravity];
  return {
    width: width || undefined,
    height: height || undefined,
    fit,
    position: fit === 'cover' ? position : undefined,
    withoutEnlargement: !plan.enlarge,
  };
}
