import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IMGPROXY_OPTIONS, ImgproxyOptionRules, parseOptionsText, type ImgproxyVersion } from './imgproxy-options';
import { UrlRejectedError } from './signing.errors';

/**
 * Each case is one rule of imgproxy's option parser (options/processing_options.go, v3.31; the
 * refactored options parser for v4): the same segment either passes both imgproxy and the
 * gateway, or neither.
 */
function rules(version: ImgproxyVersion = 3, pro = false, extraOptions: string[] = []): ImgproxyOptionRules {
  return new ImgproxyOptionRules({ version, pro, extraOptions });
}

function accepts(segment: string, r = rules()): boolean {
  const [option] = parseOptionsText(segment);
  try {
    r.resolve(option);
    return true;
  } catch (error) {
    if (error instanceof UrlRejectedError) return false;
    throw error;
  }
}

const V3_ACCEPTED = [
  // resize / size: every argument optional, empty keeps the default
  'rs:fill:300:400:0', 'rs:fill:300:400:1:1:ce:0:0', 'rs::300', 'rs:', 'rs:fit', 'resize:auto:0:0', 'rs:fill-down:1:1',
  's:300:400', 's::400', 's:', 'size:1:2:t:1:sowe',
  'rt:fit', 'rt:force', 'resizing_type:fill',
  'w:300', 'w:0', 'w:+10', 'w:-0', 'width:007', 'h:1', 'height:99999999999',
  'mw:10', 'min-width:10', 'mh:0', 'min-height:5',
  'z:2', 'z:0.5:1.5', 'zoom:1e1', 'dpr:2', 'dpr:1.5', 'dpr:inf',
  'el:1', 'el:maybe', 'enlarge:', 'ex:1', 'ex:1:fp:0.5:0.5', 'ex:t:no:10:20', 'extend:0:ce', 'exar:1:so', 'extend_ar:1', 'extend_aspect_ratio:0',
  'g:sm', 'g:ce', 'g:nowe:10:20', 'g:fp:0.5:0.25', 'g:no:-5', 'g:ce:NaN', 'gravity:soea:1:1',
  'c:100:100', 'c:0.5:0.5:ce', 'c:10', 'c:10:20:fp:0:1', 'crop:0:0:sm',
  't:10', 't:0:FF00FF', 't:5:fff:1:0', 't:1::t', 'trim:0.5',
  'pd:10', 'pd:1:2:3:4', 'pd::5', 'pd:', 'padding:0',
  'ar:1', 'auto_rotate:false', 'rot:90', 'rot:-90', 'rot:0', 'rotate:450',
  'bg:fff', 'bg:FFAA00', 'bg:', 'bg:255:0:10', 'background:0:0:0',
  'bl:0', 'bl:1.5', 'blur:10', 'sh:0.5', 'sharpen:0', 'pix:5', 'pixelate:0',
  'wm:0.5', 'wm:1:soea:10:10:0.2', 'wm:0:re', 'wm:0.3::::', 'wm:1:ce:-10:-0.5:0', 'watermark:0.5:no:1:2:0.1:x:y',
  'sm:1', 'strip_metadata:0', 'kcr:1', 'keep_copyright:t', 'scp:1', 'strip_color_profile:0', 'eth:1', 'enforce_thumbnail:0',
  'q:80', 'q:0', 'q:100', 'quality:50',
  'fq:webp:80', 'fq:jpg:70:png:0', 'format_quality:avif:50',
  'mb:0', 'mb:1000', 'max_bytes:5',
  'f:webp', 'f:jpg', 'f:jpeg', 'f:jxl', 'f:avif', 'format:png', 'ext:tiff',
  'skp:svg', 'skp:jpg:png', 'skip_processing:gif',
  'raw:1', 'cb:abc', 'cb:', 'cachebuster:v2',
  'exp:1700000000', 'exp:0', 'exp:-1', 'expires:+99',
  'fn:photo', 'fn:cGhvdG8:1', 'fn:a:0', 'fn:YQ:t', 'filename:x',
  'att:1', 'return_attachment:0',
  'pr:thumb', 'pr:a:b', 'preset:x',
  'msr:10', 'msr:0.5', 'msfs:1024', 'msfs:-1', 'maf:5', 'mafr:1.5', 'mafr:-1', 'mrd:1000',
];

const V3_REFUSED = [
  // unknown and mis-cased names: imgproxy matches names exactly
  'W:300', 'Width:300', 'RS:fit', 'foo:1', 'w%3A:1', 'sp:jpg', 'flip:1', 'fl:1', 'ph:1', 'page:1', 'min_width:10', 'resize_type:fit',
  // Pro names without Pro
  'ra:lanczos3', 'wmu:aHR0cA', 'fiu:aHR0cA', 'br:10', 'pg:1',
  // resize / size
  'rs:crop:100', 'rs:fill:abc', 'rs:fill:-1', 'rs:fill:1.5', 'rs:fill:1:2:3:4:5:6:7:8', 's:1:2:3:4:5:6:7:8', 's:x', 's:1:2:1:1:sm',
  'rt:', 'rt:FIT', 'rt:fit:fill', 'rt:crop',
  'w:', 'w:abc', 'w:-1', 'w:1.5', 'w:1e3', 'w:0x10', 'w:1_000', 'w:1:2', 'w: 1', 'h:-5', 'mw:-1', 'mh:x',
  'z:0', 'z:-1', 'z:', 'z:1:2:3', 'z:NaN', 'dpr:0', 'dpr:-1', 'dpr:x', 'dpr:1:2',
  'el:1:2', 'ex:1:sm', 'ex:1:xx', 'ex:1:fp:0.5', 'ex:1:ce:1:2:3', 'exar:1:fp:2:0',
  'g:', 'g:center', 'g:sm:1', 'g:fp:0.5', 'g:fp:1.5:0', 'g:fp:-0.1:0', 'g:ce:x', 'g:ce:1:2:3', 'g:re', 'g:obj:face',
  'c:', 'c:-1', 'c:x', 'c:10:-1', 'c:10:10:', 'c:10:10:xx', 'c:10:10:ce:1:2:3',
  't:', 't:-1', 't:x', 't:1:ggg', 't:1:ffff', 't:1:2:3:4:5',
  'pd:-1', 'pd:x', 'pd:1:2:3:4:5', 'pd:1.5',
  'ar:1:2', 'rot:45', 'rot:x', 'rot:', 'rot:90:1',
  'bg:ff', 'bg:gggggg', 'bg:1:2', 'bg:256:0:0', 'bg:-1:0:0', 'bg:+1:0:0', 'bg:1:2:3:4',
  'bl:-1', 'bl:x', 'bl:1e39', 'sh:-0.5', 'sh:', 'pix:-1', 'pix:1.5',
  'wm:', 'wm:2', 'wm:-0.1', 'wm:x', 'wm:1:ch', 'wm:1:sm', 'wm:1:ce:x', 'wm:1:ce:1:y', 'wm:1:ce:1:1:-1', 'wm:1:2:3:4:5:6:7:8',
  'sm:1:2', 'kcr:1:2', 'scp:0:0', 'eth:1:1',
  'q:abc', 'q:', 'q:101', 'q:-1', 'q:80:1', 'q:8.5', 'quality:x',
  'fq:webp', 'fq:webp:80:jpg', 'fq:wepb:80', 'fq:webp:101', 'fq:WEBP:80',
  'mb:-1', 'mb:x',
  'f:', 'f:PNG', 'f:jpe', 'f:mp4', 'f:best', 'f:png:1', 'ext:xyz',
  'skp:', 'skp:jpg:xxx',
  'raw:1:1', 'cb:a:b',
  'exp:', 'exp:abc', 'exp:1.5', 'exp:1:2', 'exp:99999999999999999999',
  'fn:a:b:c', 'fn:YQ==:1', 'fn:a+b:1', 'fn:Y:1',
  'att:1:1',
  'msr:0', 'msr:x', 'msfs:1.5', 'maf:0', 'maf:x', 'mafr:x', 'mrd:1.5',
];

describe('ImgproxyOptionRules (imgproxy 3.31)', () => {
  it.each(V3_ACCEPTED)('accepts %s', (segment) => {
    expect(accepts(segment)).toBe(true);
  });

  it.each(V3_REFUSED)('refuses %s', (segment) => {
    expect(accepts(segment)).toBe(false);
  });

  it('names the option and the argument in the refusal', () => {
    expect(() => rules().resolve({ name: 'q', args: ['abc'] })).toThrow('Invalid quality: abc (processing option q)');
    expect(() => rules().resolve({ name: 'W', args: ['1'] })).toThrow('Unknown processing option: W');
  });

  it('resolves aliases to the canonical name and role', () => {
    expect(rules().resolve({ name: 'rs', args: ['fit'] })).toMatchObject({ canonical: 'resize', role: 'processing' });
    expect(rules().resolve({ name: 'pr', args: ['x'] })).toMatchObject({ canonical: 'preset', role: 'preset' });
    expect(rules().resolve({ name: 'exp', args: ['1'] })).toMatchObject({ canonical: 'expires', role: 'expires' });
    expect(rules().resolve({ name: 'msr', args: ['1'] })).toMatchObject({ canonical: 'max_src_resolution', role: 'security' });
    expect(rules().resolve({ name: 'raw', args: ['1'] })).toMatchObject({ role: 'security' });
    expect(rules().resolve({ name: 'wm', args: ['1'] })).toMatchObject({ canonical: 'watermark', role: 'watermark' });
  });
});

describe('ImgproxyOptionRules (imgproxy 4)', () => {
  const v4 = rules(4);

  it.each(['fl:1', 'flip:1:0', 'fl:', 'ph:1', 'preserve_hdr:0', 't::fff', 't:-5', 'cb:', 'q:1', 'wm:1:ce:0:0:', 'msr:0', 'fn:YQ==:1', 'bl:0.1'])(
    'accepts %s',
    (segment) => {
      expect(accepts(segment, v4)).toBe(true);
    },
  );

  it.each(['q:0', 'fq:webp:0', 'bl:0', 'sh:0', 'wm:1:ce:0:0:0', 'fl:1:1:1', 'ph:1:1', 'msr:-1', 'mafr:-1', 'page:1'])('refuses %s', (segment) => {
    expect(accepts(segment, v4)).toBe(false);
  });

  it('keeps the v3 rules for everything else', () => {
    for (const segment of V3_ACCEPTED.filter((s) => !/^(q:0|fq:jpg:70:png:0|bl:0|sharpen:0|wm:1:ce:-10:-0.5:0|mafr:-1)$/.test(s))) {
      expect([segment, accepts(segment, v4)]).toEqual([segment, true]);
    }
  });
});

describe('Pro and extra option names', () => {
  it('accepts Pro names, and Pro gravity and position values, only with imgproxy.pro', () => {
    const proRules = rules(3, true);
    for (const segment of ['ra:lanczos3', 'br:10', 'wms:10:10', 'pg:2', 'g:obj:face', 'wm:1:ch', 'vtt:1:2:3:4:5']) {
      expect([segment, accepts(segment, proRules)]).toEqual([segment, true]);
      expect([segment, accepts(segment)]).toEqual([segment, false]);
    }
    expect(proRules.resolve({ name: 'wmu', args: ['x'] }).role).toBe('fetches');
    expect(proRules.resolve({ name: 'wmt', args: ['x'] }).role).toBe('watermark');
  });

  it('accepts extra names as they are, with their arguments unchecked', () => {
    const extra = rules(3, false, ['newopt', 'no']);
    expect(extra.resolve({ name: 'newopt', args: ['anything', ''] })).toMatchObject({ canonical: 'newopt', role: 'processing' });
    // A name the table knows keeps its rules.
    expect(accepts('w:abc', rules(3, false, ['w']))).toBe(false);
  });
});

describe('the table', () => {
  it('has every name once', () => {
    const names = IMGPROXY_OPTIONS.flatMap((spec) => [spec.name, ...spec.aliases]);
    expect(names.filter((name, i) => names.indexOf(name) !== i)).toEqual([]);
  });

  it('is the one documented in docs/imgproxy.md', () => {
    const doc = readFileSync(join(__dirname, '..', '..', 'docs', 'imgproxy.md'), 'utf8');
    for (const spec of IMGPROXY_OPTIONS) {
      for (const name of [spec.name, ...spec.aliases]) expect([name, doc.includes(`\`${name}\``)]).toEqual([name, true]);
    }
  });
});

describe('parseOptionsText', () => {
  it('splits segments and arguments like the URL parser', () => {
    expect(parseOptionsText('rs:fill:200:200/q:80')).toEqual([
      { name: 'rs', args: ['fill', '200', '200'] },
      { name: 'q', args: ['80'] },
    ]);
    expect(parseOptionsText('')).toEqual([]);
    expect(() => parseOptionsText('rs:fit/oops')).toThrow(UrlRejectedError);
  });
});
