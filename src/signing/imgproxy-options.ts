import { goAtoi, goParseBool, goParseFloat, goParseInt, goParseUint, isGoRawUrlBase64 } from './go-strconv';
import type { ImgproxyOption } from './imgproxy-url';
import { UrlRejectedError } from './signing.errors';

/**
 * The processing options imgproxy accepts, as data: names and aliases, and for each the argument
 * rules of imgproxy's own parser (options/processing_options.go in imgproxy v3.31, the refactored
 * options parser for v4). The gateway refuses anything imgproxy would refuse, itself, so a bad
 * URL costs no backend call and gets the gateway's 400 instead of imgproxy's text/plain 404.
 *
 * Names are case-sensitive and never percent-decoded, exactly as in imgproxy (`W:10` and
 * `w%3A10` are not `w:10`). Arguments are checked for shape only; what they mean (sizes,
 * watermark, expiry) is the image policy's business (image-policy.ts).
 */

export type ImgproxyVersion = 3 | 4;

/** What the gateway does with an option beyond checking its arguments. */
export type OptionRole =
  /** An ordinary processing option: passed through byte for byte. */
  | 'processing'
  /** Raises a limit the operator set on the backends: never accepted from a tenant. */
  | 'security'
  /** Makes the backend fetch another URL: never accepted from a tenant (the sandbox cannot see it). */
  | 'fetches'
  /** `preset`: expanded by the gateway into the tenant's preset options. */
  | 'preset'
  /** `expires`: checked by the gateway against the clock and the tenant's expiry rules. */
  | 'expires'
  /** Changes the watermark: see the tenant's forced watermark in image-policy.ts. */
  | 'watermark';

/** A refusal reason in imgproxy's wording, or undefined when imgproxy accepts the arguments. */
export type ArgumentCheck = (args: readonly string[], context: CheckContext) => string | undefined;

export interface CheckContext {
  readonly version: ImgproxyVersion;
  /** imgproxy Pro runs the backends: Pro-only argument values (gravity `obj`, position `ch`) pass. */
  readonly pro: boolean;
}

export interface ImgproxyOptionSpec {
  readonly name: string;
  readonly aliases: readonly string[];
  readonly role: OptionRole;
  /** Versions whose parser knows the option (open source build). */
  readonly versions: readonly ImgproxyVersion[];
  /** Only imgproxy Pro knows it; its arguments are not checked here (their parser is not public). */
  readonly pro?: true;
  /** The argument rules; absent for Pro options. */
  readonly check?: ArgumentCheck;
}

// ---------------------------------------------------------------------------------------------
// Argument rules, named after what imgproxy's parser does with the value.

/** imgproxy's resize types (fit, fill, fill-down, force, auto). */
export const RESIZING_TYPES: ReadonlySet<string> = new Set(['fit', 'fill', 'fill-down', 'force', 'auto']);
/** imagetype.Types: the names `format`, `format_quality`, `skip_processing` and the extension take. */
export const IMAGE_FORMATS: ReadonlySet<string> = new Set(['jpeg', 'jpg', 'png', 'webp', 'gif', 'ico', 'svg', 'heic', 'avif', 'jxl', 'bmp', 'tiff']);
const COMMON_GRAVITIES = ['ce', 'no', 'ea', 'so', 'we', 'nowe', 'noea', 'sowe', 'soea'];
/** cropGravityTypes: what `gravity` and `crop` take. */
const CROP_GRAVITIES = new Set([...COMMON_GRAVITIES, 'sm', 'fp']);
/** extendGravityTypes: what `extend` and `extend_aspect_ratio` take. */
const EXTEND_GRAVITIES = new Set([...COMMON_GRAVITIES, 'fp']);
/** watermarkGravityTypes: the positions of `watermark`. */
export const WATERMARK_POSITIONS: ReadonlySet<string> = new Set([...COMMON_GRAVITIES, 're']);
/** Pro adds object-oriented gravities and the chessboard watermark position. */
const PRO_GRAVITIES = new Set(['obj', 'objw']);
const PRO_WATERMARK_POSITIONS = new Set(['ch']);
const HEX_COLOR = /^(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/;

function invalid(name: string, args: readonly string[]): string {
  return `Invalid ${name} arguments: ${args.join(':')}`;
}

function maxArgs(name: string, args: readonly string[], max: number): string | undefined {
  return args.length > max ? invalid(name, args) : undefined;
}

/** Atoi with a predicate (`v >= 0` for sizes, `0..100` for quality, ...). */
function intArg(name: string, value: string, accept: (v: bigint) => boolean = () => true): string | undefined {
  const parsed = goAtoi(value);
  return parsed !== undefined && accept(parsed) ? undefined : `Invalid ${name}: ${value}`;
}

/** ParseFloat with a predicate; NaN fails every comparison, as in Go. */
function floatArg(name: string, value: string, accept: (v: number) => boolean = () => true, bits: 32 | 64 = 64): string | undefined {
  const parsed = goParseFloat(value, bits);
  return parsed !== undefined && accept(parsed) ? undefined : `Invalid ${name}: ${value}`;
}

const nonNegative = (v: bigint | number) => v >= 0;
const positive = (v: bigint | number) => v > 0;

/** One argument, Atoi, predicate. */
function singleInt(name: string, accept?: (v: bigint) => boolean): ArgumentCheck {
  return (args) => maxArgs(name, args, 1) ?? intArg(name, args[0], accept);
}

/** One argument, ParseFloat, predicate. */
function singleFloat(name: string, accept?: (v: number) => boolean, bits: 32 | 64 = 64): ArgumentCheck {
  return (args) => maxArgs(name, args, 1) ?? floatArg(name, args[0], accept, bits);
}

/** One boolean: imgproxy treats an unparsable one as false, so only the count can be wrong. */
function singleBool(name: string): ArgumentCheck {
  return (args) => maxArgs(name, args, 1);
}

function formatArg(name: string, value: string): string | undefined {
  return IMAGE_FORMATS.has(value) ? undefined : `Invalid ${name}: ${value}`;
}

/** parseGravity: a type from the allowed set, then offsets by type (sm: none, fp: two in 0..1, others: up to two). */
function gravityArgs(name: string, args: readonly string[], allowed: ReadonlySet<string>, context: CheckContext): string | undefined {
  const [type] = args;
  const proType = context.pro && PRO_GRAVITIES.has(type) && allowed === CROP_GRAVITIES;
  if (proType) return undefined;
  if (!allowed.has(type)) return `Invalid ${name}: ${type}`;
  if (type === 'sm') return args.length > 1 ? invalid(name, args) : undefined;
  if (type === 'fp' && args.length !== 3) return invalid(name, args);
  if (args.length > 3) return invalid(name, args);
  const inRange = (v: number) => type !== 'fp' || (v >= 0 && v <= 1);
  for (const offset of args.slice(1)) {
    const problem = floatArg(`${name} offset`, offset, inRange);
    if (problem) return problem;
  }
  return undefined;
}

/** parseExtend: a boolean, then an optional extend gravity. */
function extendArgs(name: string, args: readonly string[], context: CheckContext): string | undefined {
  if (args.length > 4) return invalid(name, args);
  return args.length > 1 ? gravityArgs(`${name} gravity`, args.slice(1), EXTEND_GRAVITIES, context) : undefined;
}

/** size: width, height, enlarge, then extend arguments; empty ones keep the default. */
function sizeArgs(name: string, args: readonly string[], context: CheckContext): string | undefined {
  if (args.length > 7) return invalid(name, args);
  if (args[0]) {
    const problem = intArg('width', args[0], nonNegative);
    if (problem) return problem;
  }
  if (args[1]) {
    const problem = intArg('height', args[1], nonNegative);
    if (problem) return problem;
  }
  if (args.length >= 4 && args[3]) return extendArgs('extend', args.slice(3), context);
  return undefined;
}

function resizeArgs(args: readonly string[], context: CheckContext): string | undefined {
  if (args.length > 8) return invalid('resize', args);
  if (args[0] && !RESIZING_TYPES.has(args[0])) return `Invalid resize type: ${args[0]}`;
  return args.length > 1 ? sizeArgs('size', args.slice(1), context) : undefined;
}

function zoomArgs(args: readonly string[]): string | undefined {
  return maxArgs('zoom', args, 2) ?? args.map((arg) => floatArg('zoom', arg, positive)).find(Boolean);
}

function cropArgs(args: readonly string[], context: CheckContext): string | undefined {
  const problem = floatArg('crop width', args[0], nonNegative) ?? (args.length > 1 ? floatArg('crop height', args[1], nonNegative) : undefined);
  if (problem) return problem;
  return args.length > 2 ? gravityArgs('crop gravity', args.slice(2), CROP_GRAVITIES, context) : undefined;
}

function trimArgs(args: readonly string[], context: CheckContext): string | undefined {
  if (args.length > 4) return invalid('trim', args);
  // v4 lets the threshold be empty (its default) and any number; v3 needs a number >= 0.
  const threshold = context.version === 4 ? (args[0] === '' ? undefined : floatArg('trim threshold', args[0])) : floatArg('trim threshold', args[0], nonNegative);
  if (threshold) return threshold;
  if (args.length > 1 && args[1] && !HEX_COLOR.test(args[1])) return `Invalid trim color: ${args[1]}`;
  return undefined;
}

function paddingArgs(args: readonly string[]): string | undefined {
  if (args.length > 4) return invalid('padding', args);
  return args.filter((arg) => arg !== '').map((arg) => intArg('padding', arg, nonNegative)).find(Boolean);
}

function backgroundArgs(args: readonly string[]): string | undefined {
  if (args.length === 1) return args[0] === '' || HEX_COLOR.test(args[0]) ? undefined : `Invalid background argument: ${args[0]}`;
  if (args.length === 3) {
    const bad = args.find((arg) => goParseUint(arg, 8) === undefined);
    return bad === undefined ? undefined : `Invalid background channel: ${bad}`;
  }
  return invalid('background', args);
}

function rotateArgs(args: readonly string[]): string | undefined {
  return maxArgs('rotate', args, 1) ?? intArg('rotation angle', args[0], (v) => v % 90n === 0n);
}

function watermarkArgs(args: readonly string[], context: CheckContext): string | undefined {
  if (args.length > 7) return invalid('watermark', args);
  const opacity = floatArg('watermark opacity', args[0], (v) => v >= 0 && v <= 1);
  if (opacity) return opacity;
  if (args.length > 1 && args[1]) {
    const known = WATERMARK_POSITIONS.has(args[1]) || (context.pro && PRO_WATERMARK_POSITIONS.has(args[1]));
    if (!known) return `Invalid watermark position: ${args[1]}`;
  }
  for (const index of [2, 3]) {
    if (args.length > index && args[index]) {
      const problem = floatArg('watermark offset', args[index]);
      if (problem) return problem;
    }
  }
  if (args.length > 4 && args[4]) {
    // v4 wants a positive scale; v3 also takes 0 (no scaling).
    return floatArg('watermark scale', args[4], context.version === 4 ? positive : nonNegative);
  }
  return undefined;
}

function qualityArg(name: string, value: string, context: CheckContext): string | undefined {
  // v4 refuses 0 ("use the default"): leave the option out instead.
  const min = context.version === 4 ? 1n : 0n;
  return intArg(name, value, (v) => v >= min && v <= 100n);
}

function formatQualityArgs(args: readonly string[], context: CheckContext): string | undefined {
  if (args.length % 2 !== 0) return `Missing quality for: ${args[args.length - 1]}`;
  for (let i = 0; i < args.length; i += 2) {
    const problem = formatArg('image format', args[i]) ?? qualityArg(`quality for ${args[i]}`, args[i + 1], context);
    if (problem) return problem;
  }
  return undefined;
}

function filenameArgs(args: readonly string[], context: CheckContext): string | undefined {
  if (args.length > 2) return invalid('filename', args);
  if (args.length > 1 && goParseBool(args[1]) === true) {
    // v4 trims `=` padding first; v3 takes unpadded URL-safe base64 only.
    const encoded = context.version === 4 ? args[0].replace(/=+$/, '') : args[0];
    if (!isGoRawUrlBase64(encoded)) return `Invalid filename encoding: ${args[0]}`;
  }
  return undefined;
}

function expiresArgs(args: readonly string[]): string | undefined {
  return maxArgs('expires', args, 1) ?? (goParseInt(args[0]) === undefined ? `Invalid expires argument: ${args[0]}` : undefined);
}

const byVersion = (v3: ArgumentCheck, v4: ArgumentCheck): ArgumentCheck => (args, context) => (context.version === 4 ? v4 : v3)(args, context);

// ---------------------------------------------------------------------------------------------
// The table. Order follows imgproxy's applyURLOption switch.

const BOTH: readonly ImgproxyVersion[] = [3, 4];
const V4: readonly ImgproxyVersion[] = [4];

function oss(name: string, aliases: string[], check: ArgumentCheck, role: OptionRole = 'processing', versions = BOTH): ImgproxyOptionSpec {
  return { name, aliases, role, versions, check };
}

function pro(name: string, aliases: string[], role: OptionRole = 'processing', versions = BOTH): ImgproxyOptionSpec {
  return { name, aliases, role, versions, pro: true };
}

export const IMGPROXY_OPTIONS: readonly ImgproxyOptionSpec[] = [
  oss('resize', ['rs'], resizeArgs),
  oss('size', ['s'], (args, context) => sizeArgs('size', args, context)),
  oss('resizing_type', ['rt'], (args) => maxArgs('resizing type', args, 1) ?? (RESIZING_TYPES.has(args[0]) ? undefined : `Invalid resize type: ${args[0]}`)),
  oss('width', ['w'], singleInt('width', nonNegative)),
  oss('height', ['h'], singleInt('height', nonNegative)),
  oss('min-width', ['mw'], singleInt('min width', nonNegative)),
  oss('min-height', ['mh'], singleInt('min height', nonNegative)),
  oss('zoom', ['z'], zoomArgs),
  oss('dpr', [], singleFloat('dpr', positive)),
  oss('enlarge', ['el'], singleBool('enlarge')),
  oss('extend', ['ex'], (args, context) => extendArgs('extend', args, context)),
  oss('extend_aspect_ratio', ['extend_ar', 'exar'], (args, context) => extendArgs('extend_aspect_ratio', args, context)),
  oss('gravity', ['g'], (args, context) => gravityArgs('gravity', args, CROP_GRAVITIES, context)),
  oss('crop', ['c'], cropArgs),
  oss('trim', ['t'], trimArgs),
  oss('padding', ['pd'], paddingArgs),
  oss('auto_rotate', ['ar'], singleBool('auto rotate')),
  oss('rotate', ['rot'], rotateArgs),
  oss('flip', ['fl'], (args) => maxArgs('flip', args, 2), 'processing', V4),
  oss('background', ['bg'], backgroundArgs),
  // v4 wants a sigma above 0; v3 also takes 0 (off). v3 parses these as float32.
  oss('blur', ['bl'], byVersion(singleFloat('blur', nonNegative, 32), singleFloat('blur', positive))),
  oss('sharpen', ['sh'], byVersion(singleFloat('sharpen', nonNegative, 32), singleFloat('sharpen', positive))),
  oss('pixelate', ['pix'], singleInt('pixelate', nonNegative)),
  oss('watermark', ['wm'], watermarkArgs, 'watermark'),
  oss('strip_metadata', ['sm'], singleBool('strip metadata')),
  oss('keep_copyright', ['kcr'], singleBool('keep copyright')),
  oss('strip_color_profile', ['scp'], singleBool('strip color profile')),
  oss('preserve_hdr', ['ph'], singleBool('preserve hdr'), 'processing', V4),
  oss('enforce_thumbnail', ['eth'], singleBool('enforce thumbnail')),
  oss('quality', ['q'], (args, context) => maxArgs('quality', args, 1) ?? qualityArg('quality', args[0], context)),
  oss('format_quality', ['fq'], formatQualityArgs),
  oss('max_bytes', ['mb'], singleInt('max_bytes', nonNegative)),
  oss('format', ['f', 'ext'], (args) => maxArgs('format', args, 1) ?? formatArg('image format', args[0])),
  oss('skip_processing', ['skp'], (args) => args.map((arg) => formatArg('image format in skip processing', arg)).find(Boolean)),
  // Streams the source unprocessed and unchecked: no size, resolution or watermark applies.
  oss('raw', [], singleBool('raw'), 'security'),
  oss('cachebuster', ['cb'], (args) => maxArgs('cache buster', args, 1)),
  oss('expires', ['exp'], expiresArgs, 'expires'),
  oss('filename', ['fn'], filenameArgs),
  oss('return_attachment', ['att'], singleBool('return_attachment')),
  oss('preset', ['pr'], () => undefined, 'preset'),
  oss('max_src_resolution', ['msr'], byVersion(singleFloat('max_src_resolution', positive), singleFloat('max_src_resolution', nonNegative)), 'security'),
  oss('max_src_file_size', ['msfs'], singleInt('max_src_file_size'), 'security'),
  oss('max_animation_frames', ['maf'], singleInt('max_animation_frames', positive), 'security'),
  oss('max_animation_frame_resolution', ['mafr'], byVersion(singleFloat('max_animation_frame_resolution'), singleFloat('max_animation_frame_resolution', nonNegative)), 'security'),
  oss('max_result_dimension', ['mrd'], singleInt('max_result_dimension'), 'security'),

  // imgproxy Pro (docs.imgproxy.net, processing options marked "pro"). Accepted by name only, and
  // only when `imgproxy.pro` is on.
  pro('resizing_algorithm', ['ra']),
  pro('objects_position', ['obj_pos', 'op']),
  pro('crop_aspect_ratio', ['crop_ar', 'car']),
  pro('background_alpha', ['bga']),
  pro('adjust', ['a']),
  pro('brightness', ['br']),
  pro('contrast', ['co']),
  pro('saturation', ['sa']),
  pro('monochrome', ['mc']),
  pro('duotone', ['dt']),
  pro('unsharp_masking', ['ush']),
  pro('blur_detections', ['bd']),
  pro('draw_detections', ['dd']),
  pro('colorize', ['col']),
  pro('gradient', ['gr']),
  pro('watermark_url', ['wmu'], 'fetches'),
  pro('watermark_text', ['wmt'], 'watermark'),
  pro('watermark_size', ['wms'], 'watermark'),
  pro('watermark_rotate', ['wm_rot', 'wmr'], 'watermark'),
  pro('watermark_shadow', ['wmsh'], 'watermark'),
  pro('style', ['st']),
  pro('dpi', []),
  pro('color_profile', ['cp', 'icc']),
  pro('autoquality', ['aq']),
  pro('jpeg_options', ['jpgo']),
  pro('png_options', ['pngo']),
  pro('webp_options', ['webpo']),
  pro('avif_options', ['avifo'], 'processing', V4),
  pro('page', ['pg']),
  pro('pages', ['pgs']),
  pro('disable_animation', ['da']),
  pro('video_thumbnail_second', ['vts']),
  pro('video_thumbnail_keyframes', ['vtk']),
  pro('video_thumbnail_tile', ['vtt']),
  pro('video_thumbnail_animation', ['vta']),
  pro('fallback_image_url', ['fiu'], 'fetches'),
  pro('hashsum', ['hs']),
  pro('blur_areas', ['ba'], 'processing', V4),
  // imgproxy's docs also list `co`, which contrast already has; the official builders write c_obj.
  pro('crop_objects', ['c_obj'], 'processing', V4),
];

// ---------------------------------------------------------------------------------------------

export interface OptionRulesConfig {
  readonly version: ImgproxyVersion;
  /** The backends run imgproxy Pro: its option names are accepted (arguments unchecked). */
  readonly pro: boolean;
  /** More option names to accept as they are (a newer release, a Pro option missing above). */
  readonly extraOptions?: readonly string[];
}

/** One option of a URL, resolved against the table. */
export interface ResolvedOption {
  readonly option: ImgproxyOption;
  /** The canonical name (`rs` → `resize`), or the name itself for an extra option. */
  readonly canonical: string;
  readonly role: OptionRole;
}

/**
 * The accepted option set for one configured backend (version, Pro, extra names), compiled once
 * into a name lookup. `resolve` checks one option and says what it is.
 */
export class ImgproxyOptionRules {
  private readonly byName = new Map<string, ImgproxyOptionSpec>();
  private readonly extra: ReadonlySet<string>;
  private readonly context: CheckContext;

  constructor(readonly config: OptionRulesConfig) {
    this.context = { version: config.version, pro: config.pro };
    for (const spec of IMGPROXY_OPTIONS) {
      if (!spec.versions.includes(config.version) || (spec.pro && !config.pro)) continue;
      for (const name of [spec.name, ...spec.aliases]) this.byName.set(name, spec);
    }
    this.extra = new Set((config.extraOptions ?? []).filter((name) => !this.byName.has(name)));
  }

  /** Every accepted name, for documentation and diagnostics. */
  get names(): string[] {
    return [...this.byName.keys(), ...this.extra];
  }

  /** Throws UrlRejectedError (400 `bad_url`) when imgproxy would refuse the option. */
  resolve(option: ImgproxyOption): ResolvedOption {
    const spec = this.byName.get(option.name);
    if (!spec) {
      if (this.extra.has(option.name)) return { option, canonical: option.name, role: 'processing' };
      throw new UrlRejectedError(`Unknown processing option: ${option.name}`);
    }
    const problem = spec.check?.(option.args, this.context);
    if (problem) throw new UrlRejectedError(`${problem} (processing option ${option.name})`);
    return { option, canonical: spec.name, role: spec.role };
  }

  /** The spec behind a name (canonical or alias), when this configuration accepts it. */
  specOf(name: string): ImgproxyOptionSpec | undefined {
    return this.byName.get(name);
  }
}

/** Splits `opt:a:b/opt2:c` the way imgproxy splits URL options; each segment needs a `:`. */
export function parseOptionsText(text: string): ImgproxyOption[] {
  if (text === '') return [];
  return text.split('/').map((segment) => {
    if (!segment.includes(':')) throw new UrlRejectedError(`"${segment}" is not a processing option (name:arguments)`);
    const [name, ...args] = segment.split(':');
    return { name, args };
  });
}
