import sharp from 'sharp';
import type { ImgproxyOption } from '../../signing/imgproxy-url';

/**
 * The subset of imgproxy's processing options the development worker implements, with imgproxy's
 * argument rules (empty arguments keep the default, Go-style booleans) so URLs that work here
 * behave the same on a real imgproxy.
 */

export type OutputFormat = 'jpeg' | 'png' | 'webp' | 'avif' | 'gif';
export type ResizingType = 'fit' | 'fill' | 'fill-down' | 'force' | 'auto';
export type GravityType = 'ce' | 'no' | 'so' | 'ea' | 'we' | 'noea' | 'nowe' | 'soea' | 'sowe' | 'sm';

export interface ProcessingPlan {
  readonly resizingType: ResizingType;
  /** 0 keeps the aspect ratio from the other dimension, as in imgproxy. */
  readonly width: number;
  readonly height: number;
  readonly enlarge: boolean;
  readonly gravity: GravityType;
  /** Undefined keeps the source format when it can be written. */
  readonly format: OutputFormat | undefined;
  /** Undefined (or `q:0`) means the default quality. */
  readonly quality: number | undefined;
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

/** Applies the URL's options in order (later ones win, as in imgproxy) plus the `@ext`/`.ext` format. */
export function planProcessing(options: readonly ImgproxyOption[], extension: string | undefined): ProcessingPlan {
  const plan: MutablePlan = {
    resizingType: 'fit',
    width: 0,
    height: 0,
    enlarge: false,
    gravity: 'ce',
    format: undefined,
    quality: undefined,
  };
  for (const { name, args } of options) applyOption(plan, name, args);
  // imgproxy applies the extension after the options, so it overrides `format`.
  if (extension !== undefined) plan.format = parseFormat(extension);
  return plan;
}

function applyOption(plan: MutablePlan, name: string, args: readonly string[]): void {
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

/** Decodes, auto-rotates, resizes and encodes one source image. */
export async function processImage(source: Buffer, plan: ProcessingPlan): Promise<ProcessedImage> {
  const image = sharp(source, { limitInputPixels: MAX_SOURCE_PIXELS, autoOrient: true, animated: false });
  const metadata = await image.metadata();
  const sourceWidth = metadata.autoOrient?.width ?? metadata.width;
  const sourceHeight = metadata.autoOrient?.height ?? metadata.height;
  const format = plan.format ?? defaultFormat(metadata.format, metadata.hasAlpha);

  const resize = resizeOptions(plan, sourceWidth, sourceHeight);
  if (resize) image.resize(resize);

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

function defaultFormat(sourceFormat: string | undefined, hasAlpha: boolean | undefined): OutputFormat {
  const same = sourceFormat === undefined ? undefined : FORMATS[sourceFormat];
  if (same) return same;
  // imgproxy's fallback when the source format cannot be written.
  return hasAlpha ? 'png' : 'jpeg';
}

function resizeOptions(plan: ProcessingPlan, sourceWidth: number, sourceHeight: number): sharp.ResizeOptions | undefined {
  let { width, height } = plan;
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
