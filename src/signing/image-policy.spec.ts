import {
  applyImagePolicy,
  applyImagePolicyPatch,
  compileImagePolicy,
  EMPTY_IMAGE_POLICY,
  imagePolicyProblems,
  mergeImagePolicy,
  type ImagePolicy,
} from './image-policy';
import { ImgproxyOptionRules, parseOptionsText } from './imgproxy-options';
import { PolicyRefusedError, UrlRejectedError } from './signing.errors';

const NOW = 1_800_000_000;
const v3 = new ImgproxyOptionRules({ version: 3, pro: false });
const v4 = new ImgproxyOptionRules({ version: 4, pro: false });
const pro = new ImgproxyOptionRules({ version: 3, pro: true });

function compiled(policy: ImagePolicy, rules = v3, watermarkSource?: string) {
  return compileImagePolicy(policy, { rules, pro: rules.config.pro, watermarkSource });
}

/** The upstream options for `options` (text, as in a URL) under `policy`. */
function upstream(options: string, policy: ImagePolicy = {}, extra: { extension?: string; signedUrl?: boolean; rules?: ImgproxyOptionRules } = {}): string {
  const rules = extra.rules ?? v3;
  return applyImagePolicy(
    { options: parseOptionsText(options), extension: extra.extension, signedUrl: extra.signedUrl ?? true, nowSeconds: NOW },
    compiled(policy, rules),
    rules,
  ).optionsPath;
}

function refusal(run: () => unknown): { code: string; message: string } {
  try {
    run();
  } catch (error) {
    if (error instanceof UrlRejectedError || error instanceof PolicyRefusedError) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('merging and patching', () => {
  it('takes each tenant field over the plan, merges presets by name and replaces the watermark whole', () => {
    const plan: ImagePolicy = { presets: { thumb: 'w:100', card: 'w:400' }, maxWidth: 2000, watermark: { opacity: 0.5, position: 'soea' }, defaultQuality: 80 };
    const tenant: ImagePolicy = { presets: { thumb: 'w:150', hero: 'w:1200' }, maxWidth: 1000, watermark: { opacity: 1 } };
    expect(mergeImagePolicy(plan, tenant)).toEqual({
      presets: { thumb: 'w:150', card: 'w:400', hero: 'w:1200' },
      maxWidth: 1000,
      watermark: { opacity: 1 },
      defaultQuality: 80,
    });
    expect(mergeImagePolicy(undefined, undefined)).toEqual({});
  });

  it('sets fields, clears a field given as null, clears everything for a null object', () => {
    const current: ImagePolicy = { maxWidth: 10, presets: { a: 'w:1' }, requireExpiry: true };
    expect(applyImagePolicyPatch(current, undefined)).toBe(current);
    expect(applyImagePolicyPatch(current, { maxWidth: null, presets: { b: 'w:2' } })).toEqual({ presets: { b: 'w:2' }, requireExpiry: true });
    expect(applyImagePolicyPatch(current, null)).toEqual({});
  });
});

describe('imagePolicyProblems', () => {
  const context = { rules: v3, pro: false, owner: 'tenant' as const };

  it('accepts a policy whose presets imgproxy would take', () => {
    expect(imagePolicyProblems({ presets: { thumb: 'rs:fill:200:200/q:80', 'hero_2x': 'w:1200/dpr:2' }, defaultFormat: 'webp' }, context)).toEqual([]);
  });

  it('checks presets with the option parser and refuses what cannot be in a preset', () => {
    const problems = imagePolicyProblems(
      {
        presets: { bad: 'q:abc', unknown: 'W:10', nested: 'pr:other', expiring: 'exp:1', raising: 'msr:100', fetching: 'w:1/raw:1', empty: '', 'bad name': 'w:1' },
      },
      context,
    );
    expect(problems).toEqual([
      'presets.bad: Invalid quality: abc (processing option q)',
      'presets.unknown: Unknown processing option: W',
      'presets.nested: presets cannot use other presets (pr)',
      'presets.expiring: presets cannot expire (exp); put exp in the URL',
      'presets.raising: the option msr is set by the gateway (maxSrcResolution, maxSrcFileSize)',
      'presets.fetching: the option raw is set by the gateway (maxSrcResolution, maxSrcFileSize)',
      'presets.empty: a preset needs at least one option',
      'presets: "bad name" is not a preset name (1-64 of A-Z a-z 0-9 _ -)',
    ]);
  });

  it('checks formats, positions and Pro features against the configured backend', () => {
    expect(imagePolicyProblems({ defaultFormat: 'PNG' }, context)).toEqual([expect.stringMatching(/^defaultFormat: "PNG" is not an imgproxy format/)]);
    expect(imagePolicyProblems({ defaultQuality: 0 }, { ...context, rules: v4 })).toEqual(['defaultQuality: imgproxy 4 takes a quality from 1 to 100']);
    expect(imagePolicyProblems({ watermark: { opacity: 1, position: 'ch' } }, context)).toEqual([expect.stringMatching(/^watermark.position: "ch"/)]);
    expect(imagePolicyProblems({ watermark: { opacity: 1, position: 'ch' } }, { ...context, rules: pro, pro: true })).toEqual([]);
    const upload = { watermark: { opacity: 1, uploadId: '8b9f0c59-4a43-4f6c-9d34-5b0a8f6d2e11' } };
    expect(imagePolicyProblems(upload, context)).toEqual([expect.stringMatching(/needs imgproxy Pro/)]);
    expect(imagePolicyProblems(upload, { ...context, pro: true, owner: 'plan' })).toEqual([expect.stringMatching(/a plan cannot name an upload/)]);
    expect(imagePolicyProblems(upload, { ...context, pro: true })).toEqual([]);
  });
});

describe('applyImagePolicy', () => {
  it('reuses the received options path when no preset is expanded, and rebuilds it when one is', () => {
    const policy = compiled({ presets: { p: 'w:5' }, defaultQuality: 60 });
    const run = (options: string) =>
      applyImagePolicy({ options: parseOptionsText(options), optionsPath: options ? `/${options}` : '', extension: undefined, signedUrl: true, nowSeconds: NOW }, policy, v3).optionsPath;
    expect(run('w:10/g:sm')).toBe('/w:10/g:sm/q:60');
    expect(run('')).toBe('/q:60');
    expect(run('g:sm/pr:p')).toBe('/g:sm/w:5/q:60');
  });

  it('passes the options byte for byte when the tenant has no policy', () => {
    const options = 'rs:fill:300:400:0/g:sm/q:80';
    expect(applyImagePolicy({ options: parseOptionsText(options), extension: undefined, signedUrl: true, nowSeconds: NOW }, EMPTY_IMAGE_POLICY, v3).optionsPath).toBe(`/${options}`);
    expect(upstream('')).toBe('');
  });

  it('refuses options imgproxy would refuse, and the security and fetching ones, with bad_url', () => {
    expect(refusal(() => upstream('q:abc'))).toEqual({ code: 'bad_url', message: 'Invalid quality: abc (processing option q)' });
    expect(refusal(() => upstream('Rs:fit')).code).toBe('bad_url');
    expect(refusal(() => upstream('f:bmpx')).code).toBe('bad_url');
    expect(refusal(() => upstream('msr:500')).message).toMatch(/raises a backend limit/);
    expect(refusal(() => upstream('raw:1')).message).toMatch(/raises a backend limit/);
    expect(refusal(() => upstream('wmu:aHR0cA', {}, { rules: pro })).message).toMatch(/fetches another URL/);
  });

  describe('presets', () => {
    const policy: ImagePolicy = { presets: { thumb: 'rs:fill:200:200/q:80', sharp: 'sh:0.5' } };

    it('expands pr and preset into the preset options, in place, several at once', () => {
      expect(upstream('pr:thumb', policy)).toBe('/rs:fill:200:200/q:80');
      expect(upstream('g:sm/preset:thumb:sharp/f:webp', policy)).toBe('/g:sm/rs:fill:200:200/q:80/sh:0.5/f:webp');
    });

    it('answers bad_url for a preset the tenant does not have', () => {
      expect(refusal(() => upstream('pr:thumb:missing', policy))).toEqual({ code: 'bad_url', message: 'Unknown preset: missing' });
      expect(refusal(() => upstream('pr:', policy)).code).toBe('bad_url');
    });

    it('refuses every other option with 403 when presets only, except exp', () => {
      const only = { ...policy, presetsOnly: true };
      expect(upstream(`pr:thumb/exp:${NOW + 60}`, only)).toBe(`/rs:fill:200:200/q:80/exp:${NOW + 60}`);
      expect(refusal(() => upstream('pr:thumb/w:2000', only))).toEqual({ code: 'forbidden', message: 'This account accepts presets only (pr:<name>); "w" is not allowed' });
      expect(refusal(() => upstream('cb:1', only)).code).toBe('forbidden');
    });
  });

  describe('expiry', () => {
    it('refuses an expired URL with 403 saying when it expired; a future one passes', () => {
      expect(refusal(() => upstream(`exp:${NOW - 1}/w:10`))).toEqual({ code: 'forbidden', message: `This URL expired at ${new Date((NOW - 1) * 1000).toISOString()}` });
      expect(upstream(`exp:${NOW}/w:10`)).toBe(`/exp:${NOW}/w:10`);
      // 0 and negative timestamps mean "no expiry" to imgproxy.
      expect(upstream('exp:0')).toBe('/exp:0');
    });

    it('requires exp on signed URLs when the tenant asks for it, not on API-key requests', () => {
      expect(refusal(() => upstream('w:10', { requireExpiry: true }))).toEqual({ code: 'forbidden', message: 'This account requires expiring URLs: add exp:<unix seconds>' });
      expect(refusal(() => upstream('exp:0', { requireExpiry: true })).code).toBe('forbidden');
      expect(upstream('w:10', { requireExpiry: true }, { signedUrl: false })).toBe('/w:10');
      expect(upstream(`exp:${NOW + 5}`, { requireExpiry: true })).toBe(`/exp:${NOW + 5}`);
    });

    it('caps how far ahead a signed URL may expire', () => {
      expect(upstream(`exp:${NOW + 3600}`, { maxExpirySeconds: 3600 })).toBe(`/exp:${NOW + 3600}`);
      expect(refusal(() => upstream(`exp:${NOW + 3601}`, { maxExpirySeconds: 3600 }))).toEqual({
        code: 'forbidden',
        message: 'This URL expires too far ahead: at most 3600 seconds from now',
      });
    });

    it('reports the expiry it honoured', () => {
      const result = applyImagePolicy({ options: parseOptionsText(`exp:${NOW + 9}`), extension: undefined, signedUrl: true, nowSeconds: NOW }, EMPTY_IMAGE_POLICY, v3);
      expect(result.expiresAt).toBe(NOW + 9);
    });
  });

  describe('size caps', () => {
    const box: ImagePolicy = { maxWidth: 1000, maxHeight: 1000 };

    it('scales an explicit size over the cap down, keeping its aspect ratio, after the tenant options', () => {
      expect(upstream('rs:fill:5000:2500', box)).toBe('/rs:fill:5000:2500/w:1000/h:500/mrd:1000');
      expect(upstream('w:400/h:3000', box)).toBe('/w:400/h:3000/w:133/h:1000/mrd:1000');
      expect(upstream('rs:fit:800:600', box)).toBe('/rs:fit:800:600/mrd:1000');
    });

    it('counts dpr and zoom, which multiply the size', () => {
      expect(upstream('w:800/h:800/dpr:2', box)).toBe('/w:800/h:800/dpr:2/w:500/h:500/mrd:1000');
      expect(upstream('s:600:600/z:2:1', box)).toBe('/s:600:600/z:2:1/w:500/h:500/mrd:1000');
    });

    it('fills auto dimensions with the cap and fit, which only shrinks', () => {
      expect(upstream('', box)).toBe('/w:1000/h:1000/mrd:1000');
      expect(upstream('rs:fill:600', box)).toBe('/rs:fill:600/rt:fit/h:1000/mrd:1000');
      expect(upstream('h:5000', { maxHeight: 2000 })).toBe('/h:5000/h:2000/mrd:2000');
      expect(upstream('w:300', { maxHeight: 2000 })).toBe('/w:300/h:2000/mrd:2000');
    });

    it('leaves no room to padding beyond the cap, and clamps min sizes', () => {
      expect(upstream('w:1000/h:1000/pd:100', box)).toBe('/w:1000/h:1000/pd:100/w:800/h:800/mrd:1000');
      expect(refusal(() => upstream('pd:600', box)).code).toBe('forbidden');
      expect(upstream('w:100/h:100/mw:5000', box)).toBe('/w:100/h:100/mw:5000/mw:1000/mrd:1000');
    });

    it('sees sizes set in presets', () => {
      expect(upstream('pr:big', { ...box, presets: { big: 'rs:fit:4000:4000' } })).toBe('/rs:fit:4000:4000/w:1000/h:1000/mrd:1000');
    });

    it('never lets skip_processing around the caps', () => {
      expect(refusal(() => upstream('skp:jpg', box)).code).toBe('forbidden');
      expect(upstream('skp:jpg')).toBe('/skp:jpg');
    });
  });

  describe('source limits, defaults and the watermark', () => {
    it('writes the source limits as imgproxy security options', () => {
      expect(upstream('w:10', { maxSrcResolution: 12.5, maxSrcFileSize: 5_000_000 })).toBe('/w:10/msr:12.5/msfs:5000000');
    });

    it('adds the default format and quality only when the URL sets none', () => {
      const defaults: ImagePolicy = { defaultFormat: 'webp', defaultQuality: 75 };
      expect(upstream('w:10', defaults)).toBe('/w:10/f:webp/q:75');
      expect(upstream('w:10/f:png/q:90', defaults)).toBe('/w:10/f:png/q:90');
      expect(upstream('w:10/fq:webp:50', defaults)).toBe('/w:10/fq:webp:50/f:webp');
      expect(upstream('w:10', defaults, { extension: 'png' })).toBe('/w:10/q:75');
      expect(upstream('pr:p', { ...defaults, presets: { p: 'ext:avif/quality:60' } })).toBe('/ext:avif/quality:60');
    });

    it('forces the watermark last with every argument, replacing the tenant own wm', () => {
      const marked: ImagePolicy = { watermark: { opacity: 0.4, position: 'soea', xOffset: 10, yOffset: 12, scale: 0.2 } };
      expect(upstream('w:10', marked)).toBe('/w:10/wm:0.4:soea:10:12:0.2');
      expect(upstream('wm:0:ce:0:0:0.01', marked)).toBe('/wm:0:ce:0:0:0.01/wm:0.4:soea:10:12:0.2');
      expect(upstream('', { watermark: { opacity: 1 } })).toBe('/wm:1:ce:0:0:0');
      expect(upstream('', { watermark: { opacity: 1 } }, { rules: v4 })).toBe('/wm:1:ce:0:0:');
    });

    it('refuses the tenant Pro watermark options and skip_processing while a watermark is forced', () => {
      const marked: ImagePolicy = { watermark: { opacity: 1 } };
      expect(refusal(() => upstream('wms:1:1', marked, { rules: pro }))).toEqual({
        code: 'forbidden',
        message: 'The watermark of this account is set by the operator; "wms" is not allowed',
      });
      expect(refusal(() => upstream('skp:png', marked)).code).toBe('forbidden');
      expect(upstream('wms:1:1', {}, { rules: pro })).toBe('/wms:1:1');
    });

    it('names the tenant watermark upload with watermark_url on Pro', () => {
      const policy = compiled({ watermark: { opacity: 1, uploadId: 'u' } }, pro, 'local:///tenants/t1/mark.png');
      expect(policy.watermarkSegments).toEqual(['wm:1:ce:0:0:0', `wmu:${Buffer.from('local:///tenants/t1/mark.png').toString('base64url')}`]);
      const missing = compiled({ watermark: { opacity: 1, uploadId: 'u' } }, pro);
      expect(missing.watermarkSegments).toEqual(['wm:1:ce:0:0:0']);
      expect(missing.problems).toEqual([expect.stringMatching(/watermark upload not found/)]);
    });

    it('puts the gateway segments in one documented order', () => {
      const policy: ImagePolicy = { maxWidth: 500, maxSrcResolution: 10, maxSrcFileSize: 100, defaultFormat: 'webp', defaultQuality: 70, watermark: { opacity: 1 } };
      expect(upstream('w:900/h:900', policy)).toBe('/w:900/h:900/w:500/h:500/f:webp/q:70/msr:10/msfs:100/mrd:500/wm:1:ce:0:0:0');
    });
  });

  it('leaves out stored presets the configured parser no longer accepts, and says so', () => {
    const policy = compiled({ presets: { flipped: 'fl:1', ok: 'w:1' } }, v3);
    expect([...policy.presets.keys()]).toEqual(['ok']);
    expect(policy.problems).toEqual(['preset "flipped": Unknown processing option: fl']);
  });
});
