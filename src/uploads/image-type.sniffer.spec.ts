import sharp from 'sharp';
import { IMAGE_TYPES, sniffImageType } from './image-type.sniffer';

const pixel = () => sharp({ create: { width: 4, height: 3, channels: 3, background: '#c04020' } });

describe('sniffImageType', () => {
  it.each([
    ['jpeg', () => pixel().jpeg().toBuffer()],
    ['png', () => pixel().png().toBuffer()],
    ['gif', () => pixel().gif().toBuffer()],
    ['webp', () => pixel().webp().toBuffer()],
    ['avif', () => pixel().avif().toBuffer()],
  ] as const)('recognises a real %s file made by sharp', async (kind, make) => {
    expect(sniffImageType(await make())).toBe(IMAGE_TYPES[kind]);
  });

  it('recognises AVIF by a compatible brand when the major brand is generic', () => {
    const box = Buffer.alloc(24);
    box.writeUInt32BE(24, 0);
    box.write('ftypmif1', 4, 'latin1');
    box.write('\0\0\0\0mif1avif', 12, 'latin1');
    expect(sniffImageType(box)).toBe(IMAGE_TYPES.avif);
  });

  it('refuses other ISO-BMFF files such as HEIC and MP4', () => {
    const heic = Buffer.alloc(24);
    heic.writeUInt32BE(24, 0);
    heic.write('ftypheic\0\0\0\0mif1heic', 4, 'latin1');
    expect(sniffImageType(heic)).toBeUndefined();
    const mp4 = Buffer.alloc(24);
    mp4.writeUInt32BE(24, 0);
    mp4.write('ftypisom\0\0\0\0isomiso2', 4, 'latin1');
    expect(sniffImageType(mp4)).toBeUndefined();
  });

  it.each([
    ['a bare root element', '<svg xmlns="http://www.w3.org/2000/svg"/>'],
    ['a BOM, declaration, comment and doctype', '\ufeff<?xml version="1.0"?>\n<!-- x -->\n<!DOCTYPE svg [ <!ENTITY a "b"> ]>\n<svg>'],
    ['leading whitespace', '  \n<svg\twidth="1">'],
  ])('recognises SVG with %s', (_name, text) => {
    expect(sniffImageType(Buffer.from(text))).toBe(IMAGE_TYPES.svg);
  });

  it.each([
    ['HTML with inline SVG', '<!DOCTYPE html><html><svg></svg></html>'],
    ['text mentioning svg', 'hello <svg>'],
    ['another root element', '<?xml version="1.0"?><svgfoo/>'],
    ['an unterminated comment', '<!-- <svg>'],
    ['empty input', ''],
    ['garbage', '\x00\x01\x02 not an image at all'],
    ['a truncated PNG signature', '\x89PNG'],
    ['RIFF that is not WebP', 'RIFF\x00\x00\x00\x00WAVEfmt '],
  ])('refuses %s', (_name, text) => {
    expect(sniffImageType(Buffer.from(text, 'latin1'))).toBeUndefined();
  });
});
