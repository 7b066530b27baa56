import { goParseFloat, goParseInt } from './go-strconv';
import { IMAGE_FORMATS, ImgproxyOptionRules, parseOptionsText, WATERMARK_POSITIONS, type ResolvedOption } from './imgproxy-options';
import type { ImgproxyOption } from './imgproxy-url';
import { PolicyRefusedError, UrlRejectedError } from './signing.errors';

/**
 * Per-tenant image policy (docs/imgproxy.md, "Image policy"): what imgproxy keeps process-wide,
 * decided per tenant at the gateway and written into the upstream URL as imgproxy's own options.
 *
 *   parse (imgproxy-url.ts) → validate (imgproxy-options.ts) → expand presets → check expiry →
 *   apply caps, defaults and the watermark → upstream options
 *
 * Plain functions and data: the stored policy is merged (plan, then tenant) and compiled once
 * per key-cache fill; `applyImagePolicy` runs per request and allocates only the strings it
 * builds.
 */

export interface WatermarkPolicy {
  /** imgproxy's opacity modifier, above 0 and at most 1. */
  opacity: number;
  /** A watermark position (`ce`, `soea`, `re`, ...); `ce` when absent. */
  position?: string;
  xOffset?: number;
  yOffset?: number;
  /** Size relative to the image; absent or 0 keeps the watermark's own size. */
  scale?: number;
  /** An upload of the tenant used as its watermark image (imgproxy Pro's `watermark_url`). */
  uploadId?: string;
}

/** The stored form, on a plan or a tenant: every field optional (absent = not set here). */
export interface ImagePolicy {
  /** name → imgproxy options, e.g. `{"thumb": "rs:fill:200:200/q:80"}`. */
  presets?: Record<string, string>;
  /** Only `preset` (and `expires`) may appear in the tenant's URLs. */
  presetsOnly?: boolean;
  maxWidth?: number;
  maxHeight?: number;
  /** Megapixels, as imgproxy's `max_src_resolution`. */
  maxSrcResolution?: number;
  /** Bytes, as imgproxy's `max_src_file_size`. */
  maxSrcFileSize?: number;
  defaultFormat?: string;
  defaultQuality?: number;
  /** Signed URLs must carry `exp:<unix seconds>`. */
  requireExpiry?: boolean;
  /** How far ahead a signed URL's `exp` may be. */
  maxExpirySeconds?: number;
  watermark?: WatermarkPolicy;
}

export const IMAGE_POLICY_FIELDS = [
  'presets',
  'presetsOnly',
  'maxWidth',
  'maxHeight',
  'maxSrcResolution',
  'maxSrcFileSize',
  'defaultFormat',
  'defaultQuality',
  'requireExpiry',
  'maxExpirySeconds',
  'watermark',
] as const satisfies readonly (keyof ImagePolicy)[];

export const PRESET_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
export const MAX_PRESETS = 100;
export const MAX_PRESET_LENGTH = 2048;

/** A patch of the stored policy: a value sets a field, `null` clears it, absent keeps it. */
export type ImagePolicyPatch = { [K in keyof ImagePolicy]?: ImagePolicy[K] | null };

/**
 * Applies an admin PATCH: `null` for the whole object clears every field, `null` for one field
 * clears that field; `presets` and `watermark` are replaced whole.
 */
export function applyImagePolicyPatch(current: ImagePolicy, patch: ImagePolicyPatch | null | undefined): ImagePolicy {
  if (patch === undefined) return current;
  if (patch === null) return {};
  const next: Record<string, unknown> = { ...current };
  for (const field of IMAGE_POLICY_FIELDS) {
    if (!(field in patch)) continue;
    const value = patch[field];
    if (value === null || value === undefined) delete next[field];
    else next[field] = value;
  }
  return next as ImagePolicy;
}

/** A clean stored copy: known fields only, nothing null or undefined, the watermark as a plain object. */
export function cleanImagePolicy(input: ImagePolicyPatch | ImagePolicy): ImagePolicy {
  const out: Record<string, unknown> = {};
  for (const field of IMAGE_POLICY_FIELDS) {
    const value = input[field];
    if (value === null || value === undefined) continue;
    if (field === 'presets') out.presets = { ...(value as Record<string, string>) };
    else if (field === 'watermark') {
      const watermark = value as WatermarkPolicy;
      const copy: Record<string, unknown> = {};
      for (const key of ['opacity', 'position', 'xOffset', 'yOffset', 'scale', 'uploadId'] as const) {
        if (watermark[key] !== undefined && watermark[key] !== null) copy[key] = watermark[key];
      }
      out.watermark = copy;
    } else out[field] = value;
  }
  return out as ImagePolicy;
}

/**
 * The policy a tenant runs under: each tenant field replaces the plan's; presets are merged by
 * name (the tenant's win), so a plan can offer standard presets a tenant adds to.
 */
export function mergeImagePolicy(plan: ImagePolicy = {}, tenant: ImagePolicy = {}): ImagePolicy {
  const merged: ImagePolicy = { ...plan, ...tenant };
  if (plan.presets || tenant.presets) merged.presets = { ...plan.presets, ...tenant.presets };
  for (const field of IMAGE_POLICY_FIELDS) {
    if (merged[field] === undefined) delete merged[field];
  }
  return merged;
}

export interface PolicyValidationContext {
  readonly rules: ImgproxyOptionRules;
  /** imgproxy Pro runs the backends (a watermark upload needs its `watermark_url`). */
  readonly pro: boolean;
  /** A plan's policy cannot name an upload: uploads belong to one tenant. */
  readonly owner: 'plan' | 'tenant';
}

/**
 * What is wrong with a stored policy beyond its JSON shape (which the DTO checks): presets
 * parsed with imgproxy's rules, formats and positions of the configured backend version, Pro
 * features. One line per problem, prefixed with the field.
 */
export function imagePolicyProblems(policy: ImagePolicy, context: PolicyValidationContext): string[] {
  const problems: string[] = [];
  for (const [name, text] of Object.entries(policy.presets ?? {})) {
    if (!PRESET_NAME_PATTERN.test(name)) problems.push(`presets: "${name}" is not a preset name (1-64 of A-Z a-z 0-9 _ -)`);
    try {
      compilePreset(text, context.rules);
    } catch (error) {
      problems.push(`presets.${name}: ${(error as Error).message}`);
    }
  }
  if (policy.presets && Object.keys(policy.presets).length > MAX_PRESETS) problems.push(`presets: at most ${MAX_PRESETS} presets`);
  if (policy.defaultFormat !== undefined && !IMAGE_FORMATS.has(policy.defaultFormat)) {
    problems.push(`defaultFormat: "${policy.defaultFormat}" is not an imgproxy format (${[...IMAGE_FORMATS].join(', ')})`);
  }
  if (policy.defaultQuality !== undefined && context.rules.config.version === 4 && policy.defaultQuality < 1) {
    problems.push('defaultQuality: imgproxy 4 takes a quality from 1 to 100');
  }
  const watermark = policy.watermark;
  if (watermark) {
    const positions = context.pro ? [...WATERMARK_POSITIONS, 'ch'] : [...WATERMARK_POSITIONS];
    if (watermark.position !== undefined && !positions.includes(watermark.position)) {
      problems.push(`watermark.position: "${watermark.position}" is not a watermark position (${positions.join(', ')})`);
    }
    if (watermark.uploadId !== undefined) {
      if (context.owner === 'plan') problems.push('watermark.uploadId: a plan cannot name an upload; set it on the tenant');
      else if (!context.pro) problems.push('watermark.uploadId: a watermark image per tenant needs imgproxy Pro (imgproxy.pro: true)');
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------

export interface CompiledPreset {
  /** The preset's option segments as the operator wrote them: what replaces `pr:<name>` upstream. */
  readonly segments: readonly string[];
  readonly options: readonly ResolvedOption[];
}

/** A merged policy, ready for the request path. Frozen; shared by every request of the key. */
export interface CompiledImagePolicy {
  readonly presets: ReadonlyMap<string, CompiledPreset>;
  readonly presetsOnly: boolean;
  readonly maxWidth?: number;
  readonly maxHeight?: number;
  readonly requireExpiry: boolean;
  readonly maxExpirySeconds?: number;
  readonly defaultFormat?: string;
  readonly defaultQuality?: number;
  /** `msr:`, `msfs:` and `mrd:` segments, in that order, for every URL of the tenant. */
  readonly limitSegments: readonly string[];
  /** `wm:` (and `wmu:`) segments forced onto every URL of the tenant. */
  readonly watermarkSegments: readonly string[];
  /** Whether anything makes `skip_processing` a way around the policy (sizes, watermark). */
  readonly processingRequired: boolean;
  /** Stored values the current configuration no longer accepts (logged when compiled). */
  readonly problems: readonly string[];
}

export const EMPTY_IMAGE_POLICY: CompiledImagePolicy = Object.freeze({
  presets: new Map(),
  presetsOnly: false,
  requireExpiry: false,
  limitSegments: [],
  watermarkSegments: [],
  processingRequired: false,
  problems: [],
});

export interface CompileContext {
  readonly rules: ImgproxyOptionRules;
  readonly pro: boolean;
  /**
   * `local:///tenants/<tenantId>/<file>` of the watermark upload, when the tenant names one and
   * it exists; the gateway passes it to imgproxy Pro as `watermark_url`.
   */
  readonly watermarkSource?: string;
}

/**
 * Compiles a merged policy once. Values that no longer validate (the configured imgproxy version
 * or Pro changed since they were stored) are left out and reported in `problems`: a preset that
 * does not compile is unknown (400 when used), a watermark upload without Pro is dropped while
 * the watermark itself stays.
 */
export function compileImagePolicy(policy: ImagePolicy, context: CompileContext): CompiledImagePolicy {
  const problems: string[] = [];
  const presets = new Map<string, CompiledPreset>();
  for (const [name, text] of Object.entries(policy.presets ?? {})) {
    try {
      presets.set(name, compilePreset(text, context.rules));
    } catch (error) {
      problems.push(`preset "${name}": ${(error as Error).message}`);
    }
  }

  const limitSegments: string[] = [];
  if (policy.maxSrcResolution !== undefined) limitSegments.push(`msr:${formatNumber(policy.maxSrcResolution)}`);
  if (policy.maxSrcFileSize !== undefined) limitSegments.push(`msfs:${policy.maxSrcFileSize}`);
  const largestSide = Math.max(policy.maxWidth ?? 0, policy.maxHeight ?? 0);
  // imgproxy's own backstop: scales the result down to fit, whatever options produced it.
  if (largestSide > 0) limitSegments.push(`mrd:${largestSide}`);

  const watermarkSegments: string[] = [];
  if (policy.watermark) {
    watermarkSegments.push(watermarkSegment(policy.watermark, context.rules.config.version));
    if (policy.watermark.uploadId !== undefined) {
      if (!context.pro) problems.push('watermark upload needs imgproxy Pro: the configured watermark image is used');
      else if (!context.watermarkSource) problems.push('watermark upload not found: the configured watermark image is used');
      else watermarkSegments.push(`wmu:${Buffer.from(context.watermarkSource, 'utf8').toString('base64url')}`);
    }
  }

  let defaultFormat = policy.defaultFormat;
  if (defaultFormat !== undefined && !IMAGE_FORMATS.has(defaultFormat)) {
    problems.push(`default format "${defaultFormat}" is not known: left out`);
    defaultFormat = undefined;
  }

  return Object.freeze({
    presets,
    presetsOnly: policy.presetsOnly === true,
    maxWidth: policy.maxWidth,
    maxHeight: policy.maxHeight,
    requireExpiry: policy.requireExpiry === true,
    maxExpirySeconds: policy.maxExpirySeconds,
    defaultFormat,
    defaultQuality: policy.defaultQuality,
    limitSegments: Object.freeze(limitSegments),
    watermarkSegments: Object.freeze(watermarkSegments),
    processingRequired: policy.watermark !== undefined || policy.maxWidth !== undefined || policy.maxHeight !== undefined,
    problems: Object.freeze(problems),
  });
}

/**
 * A preset's options, checked with the URL rules plus: no nested presets (imgproxy would skip a
 * recursion silently), no `expires` (it belongs to one URL), no security or URL-fetching options.
 */
function compilePreset(text: string, rules: ImgproxyOptionRules): CompiledPreset {
  if (text.length === 0) throw new UrlRejectedError('a preset needs at least one option');
  if (text.length > MAX_PRESET_LENGTH) throw new UrlRejectedError(`a preset is at most ${MAX_PRESET_LENGTH} characters`);
  const segments = text.split('/');
  const options = parseOptionsText(text).map((option) => rules.resolve(option));
  for (const { option, role } of options) {
    if (role === 'preset') throw new UrlRejectedError(`presets cannot use other presets (${option.name})`);
    if (role === 'expires') throw new UrlRejectedError(`presets cannot expire (${option.name}); put exp in the URL`);
    if (role === 'security') throw new UrlRejectedError(`the option ${option.name} is set by the gateway (maxSrcResolution, maxSrcFileSize)`);
    if (role === 'fetches') throw new UrlRejectedError(`the option ${option.name} fetches another URL`);
  }
  return Object.freeze({ segments: Object.freeze(segments), options: Object.freeze(options) });
}

/** Every argument written, so an earlier `wm` of the tenant keeps nothing of its own. */
function watermarkSegment(watermark: WatermarkPolicy, version: number): string {
  const scale = watermark.scale ?? 0;
  // imgproxy 4 refuses a scale of 0; an empty argument means the same there (keep the size).
  const scaleArg = scale === 0 && version === 4 ? '' : formatNumber(scale);
  return `wm:${formatNumber(watermark.opacity)}:${watermark.position ?? 'ce'}:${formatNumber(watermark.xOffset ?? 0)}:${formatNumber(watermark.yOffset ?? 0)}:${scaleArg}`;
}

function formatNumber(value: number): string {
  // Plain decimal (no exponent), which every imgproxy version parses.
  return Number.isInteger(value) ? String(value) : String(Number(value.toFixed(6)));
}

// ---------------------------------------------------------------------------------------------

export interface PolicyRequest {
  /** The URL's options, in order, as parsed (imgproxy-url.ts). */
  readonly options: readonly ImgproxyOption[];
  /** The same options as received (`''` or `/opt:a/...`), reused as is when no preset is expanded. */
  readonly optionsPath?: string;
  /** `@ext` / `.ext` of the source: imgproxy applies it after the options, as the format. */
  readonly extension: string | undefined;
  /** Signed (browser) mode: the tenant's expiry requirements apply. */
  readonly signedUrl: boolean;
  readonly nowSeconds: number;
}

export interface PolicyResult {
  /** `''` or `/opt:a/...`: the tenant's options with presets expanded, then the gateway's. */
  readonly optionsPath: string;
  /** The URL's `exp`, when it has one in the future. */
  readonly expiresAt?: number;
}

/**
 * Applies the tenant's policy to one URL. Throws UrlRejectedError (400 `bad_url`) for options
 * imgproxy would refuse or an unknown preset, PolicyRefusedError (403 `forbidden`) for what the
 * policy does not allow. The tenant's own option segments are kept byte for byte; the gateway's
 * segments come last, so imgproxy (which applies options in order, later ones winning) honours
 * them over anything the tenant wrote.
 */
export function applyImagePolicy(
  request: PolicyRequest,
  policy: CompiledImagePolicy,
  rules: ImgproxyOptionRules,
): PolicyResult {
  const resolved = request.options.map((option) => rules.resolve(option));
  const segments: string[] = [];
  const effective: ResolvedOption[] = [];
  let expires: bigint | undefined;
  let expanded = false;

  for (const item of resolved) {
    const { option, role } = item;
    if (role === 'security') {
      throw new UrlRejectedError(`The processing option "${option.name}" raises a backend limit and is not allowed`);
    }
    if (role === 'fetches') {
      throw new UrlRejectedError(`The processing option "${option.name}" fetches another URL and is not allowed`);
    }
    if (policy.presetsOnly && role !== 'preset' && role !== 'expires') {
      throw new PolicyRefusedError(`This account accepts presets only (pr:<name>); "${option.name}" is not allowed`);
    }
    if (role === 'watermark' && policy.watermarkSegments.length > 0 && item.canonical !== 'watermark') {
      throw new PolicyRefusedError(`The watermark of this account is set by the operator; "${option.name}" is not allowed`);
    }
    if (item.canonical === 'skip_processing' && policy.processingRequired) {
      throw new PolicyRefusedError(`"${option.name}" is not allowed: this account's images are always processed (size limits or watermark)`);
    }
    if (role === 'preset') {
      for (const name of option.args) {
        const preset = policy.presets.get(name);
        if (!preset) throw new UrlRejectedError(`Unknown preset: ${name}`);
        segments.push(...preset.segments);
        effective.push(...preset.options);
      }
      expanded = true;
      continue;
    }
    if (role === 'expires') expires = goParseInt(option.args[0]);
    segments.push(segmentOf(option));
    effective.push(item);
  }

  const expiresAt = checkExpiry(expires, policy, request);
  const own = gatewaySegments(effective, request.extension, policy);
  // Most URLs use no preset: their options go out as received, plus the gateway's.
  const tenantPath = !expanded && request.optionsPath !== undefined ? request.optionsPath : segments.length ? `/${segments.join('/')}` : '';
  return { optionsPath: own.length ? `${tenantPath}/${own.join('/')}` : tenantPath, expiresAt };
}

/** The option as it appeared in the URL (the parser split it on `:` only). */
function segmentOf(option: ImgproxyOption): string {
  return [option.name, ...option.args].join(':');
}

function checkExpiry(expires: bigint | undefined, policy: CompiledImagePolicy, request: PolicyRequest): number | undefined {
  const now = BigInt(Math.floor(request.nowSeconds));
  // imgproxy treats 0 and negative timestamps as "no expiry".
  const at = expires !== undefined && expires > 0n ? expires : undefined;
  if (at !== undefined && at < now) {
    throw new PolicyRefusedError(`This URL expired at ${new Date(Number(at) * 1000).toISOString()}`);
  }
  if (request.signedUrl) {
    if (policy.requireExpiry && at === undefined) {
      throw new PolicyRefusedError('This account requires expiring URLs: add exp:<unix seconds>');
    }
    if (at !== undefined && policy.maxExpirySeconds !== undefined && at - now > BigInt(policy.maxExpirySeconds)) {
      throw new PolicyRefusedError(`This URL expires too far ahead: at most ${policy.maxExpirySeconds} seconds from now`);
    }
  }
  return at === undefined ? undefined : Number(at);
}

/** What imgproxy would end up with for the size-related options, in order (later ones win). */
interface SizeState {
  resizingType: string;
  width: number;
  height: number;
  minWidth: number;
  minHeight: number;
  dpr: number;
  zoomX: number;
  zoomY: number;
  padding: [top: number, right: number, bottom: number, left: number];
  format: boolean;
  quality: boolean;
}

function sizeStateOf(options: readonly ResolvedOption[]): SizeState {
  const state: SizeState = {
    resizingType: 'fit',
    width: 0,
    height: 0,
    minWidth: 0,
    minHeight: 0,
    dpr: 1,
    zoomX: 1,
    zoomY: 1,
    padding: [0, 0, 0, 0],
    format: false,
    quality: false,
  };
  const int = (value: string) => Number(goParseInt(value) ?? 0n);
  const float = (value: string) => goParseFloat(value) ?? 1;
  const applySize = (args: readonly string[]) => {
    if (args[0]) state.width = int(args[0]);
    if (args[1]) state.height = int(args[1]);
  };
  for (const { option, canonical } of options) {
    const { args } = option;
    switch (canonical) {
      case 'resize':
        if (args[0]) state.resizingType = args[0];
        applySize(args.slice(1));
        break;
      case 'size':
        applySize(args);
        break;
      case 'resizing_type':
        state.resizingType = args[0];
        break;
      case 'width':
        state.width = int(args[0]);
        break;
      case 'height':
        state.height = int(args[0]);
        break;
      case 'min-width':
        state.minWidth = int(args[0]);
        break;
      case 'min-height':
        state.minHeight = int(args[0]);
        break;
      case 'dpr':
        state.dpr = float(args[0]);
        break;
      case 'zoom':
        state.zoomX = float(args[0]);
        state.zoomY = args.length > 1 ? float(args[1]) : state.zoomX;
        break;
      case 'padding': {
        // CSS order: top sets all four, right sets right and left, then bottom, then left.
        const [top, right, bottom, left] = args;
        if (top) state.padding = [int(top), int(top), int(top), int(top)];
        if (right) state.padding[1] = state.padding[3] = int(right);
        if (bottom) state.padding[2] = int(bottom);
        if (left) state.padding[3] = int(left);
        break;
      }
      case 'format':
        state.format = true;
        break;
      case 'quality':
      case 'format_quality':
        state.quality = true;
        break;
    }
  }
  return state;
}

/**
 * The segments the gateway appends, in this order: size clamps (`rt`, `w`, `h`, `mw`, `mh`),
 * default format and quality, source limits and the result backstop (`msr`, `msfs`, `mrd`),
 * the watermark (`wm`, `wmu`).
 */
function gatewaySegments(options: readonly ResolvedOption[], extension: string | undefined, policy: CompiledImagePolicy): string[] {
  const capped = policy.maxWidth !== undefined || policy.maxHeight !== undefined;
  if (!capped && policy.defaultFormat === undefined && policy.defaultQuality === undefined) {
    return policy.limitSegments.length || policy.watermarkSegments.length ? [...policy.limitSegments, ...policy.watermarkSegments] : [];
  }
  const out: string[] = [];
  const state = sizeStateOf(options);
  if (capped) out.push(...sizeClamps(state, policy));
  if (policy.defaultFormat !== undefined && !state.format && extension === undefined) out.push(`f:${policy.defaultFormat}`);
  if (policy.defaultQuality !== undefined && !state.quality) out.push(`q:${policy.defaultQuality}`);
  out.push(...policy.limitSegments, ...policy.watermarkSegments);
  return out;
}

/**
 * Keeps the result within maxWidth × maxHeight, counting `dpr`, `zoom` and `padding` (imgproxy
 * multiplies sizes by dpr and zoom and adds padding after resizing):
 *  - an explicit size over the budget is scaled down on both axes (the aspect ratio it asked
 *    for is kept);
 *  - an auto dimension (0 or absent) is set to the budget with `rt:fit`, which only shrinks:
 *    with one dimension given, fill, fill-down and auto resize exactly like fit anyway;
 *  - min-width and min-height cannot ask for more than the budget.
 * Padding or dpr that leaves no room at all is refused (403).
 */
function sizeClamps(state: SizeState, policy: CompiledImagePolicy): string[] {
  const budgetOf = (max: number | undefined, scale: number, padding: number, axis: string) => {
    if (max === undefined) return Infinity;
    const budget = Math.floor((max - padding * state.dpr) / scale);
    if (!(budget >= 1)) {
      throw new PolicyRefusedError(`The requested padding, dpr or zoom leave no room within this account's maximum ${axis} of ${max} pixels`);
    }
    return budget;
  };
  const budgetW = budgetOf(policy.maxWidth, state.dpr * state.zoomX, state.padding[1] + state.padding[3], 'width');
  const budgetH = budgetOf(policy.maxHeight, state.dpr * state.zoomY, state.padding[0] + state.padding[2], 'height');

  let width = state.width;
  let height = state.height;
  let fitNeeded = false;
  if (width > 0 && height > 0) {
    const fw = budgetW / width;
    const fh = budgetH / height;
    if (fw < 1 || fh < 1) {
      if (fw <= fh) {
        height = Math.max(1, Math.floor(height * fw));
        width = budgetW;
      } else {
        width = Math.max(1, Math.floor(width * fh));
        height = budgetH;
      }
    }
  } else {
    if (width > budgetW) width = budgetW;
    if (height > budgetH) height = budgetH;
    if (width === 0 && Number.isFinite(budgetW)) {
      width = budgetW;
      fitNeeded = true;
    }
    if (height === 0 && Number.isFinite(budgetH)) {
      height = budgetH;
      fitNeeded = true;
    }
  }

  const out: string[] = [];
  if (fitNeeded && state.resizingType !== 'fit') out.push('rt:fit');
  if (width !== state.width) out.push(`w:${width}`);
  if (height !== state.height) out.push(`h:${height}`);
  if (state.minWidth > budgetW) out.push(`mw:${budgetW}`);
  if (state.minHeight > budgetH) out.push(`mh:${budgetH}`);
  return out;
}
