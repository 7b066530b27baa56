/**
 * Decides an upload's type from its first bytes (docs/imgproxy.md): the Content-Type header and the file
 * name are the client's claims, the magic bytes are what imgproxy will actually decode. Pure and
 * small on purpose: five binary signatures and an SVG sniff.
 */

export type ImageKind = 'jpeg' | 'png' | 'gif' | 'webp' | 'avif' | 'svg';

export interface ImageType {
  readonly kind: ImageKind;
  readonly contentType: string;
  /** The extension of the stored file name. */
  readonly extension: string;
}

export const IMAGE_TYPES: Readonly<Record<ImageKind, ImageType>> = {
  jpeg: { kind: 'jpeg', contentType: 'image/jpeg', extension: 'jpg' },
  png: { kind: 'png', contentType: 'image/png', extension: 'png' },
  gif: { kind: 'gif', contentType: 'image/gif', extension: 'gif' },
  webp: { kind: 'webp', contentType: 'image/webp', extension: 'webp' },
  avif: { kind: 'avif', contentType: 'image/avif', extension: 'avif' },
  svg: { kind: 'svg', contentType: 'image/svg+xml', extension: 'svg' },
};

/**
 * How many leading bytes the sniffer wants before it decides. Binary signatures need 12 (AVIF's
 * brand list a few more); an SVG may open with an XML declaration, comments and a DOCTYPE before
 * its root element, so give the text sniff room.
 */
export const SNIFF_BYTES = 4096;

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const AVIF_BRANDS = new Set(['avif', 'avis']);
/** ISO-BMFF `ftyp` boxes are small; a huge declared size is not one we trust. */
const MAX_FTYP_BOX = 256;

/**
 * The type of a file from its first bytes, or undefined when it is none of the accepted image
 * formats. Give it `SNIFF_BYTES` bytes, or the whole file when it is shorter.
 */
export function sniffImageType(head: Buffer): ImageType | undefined {
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return IMAGE_TYPES.jpeg;
  if (head.length >= 8 && head.subarray(0, 8).equals(PNG_SIGNATURE)) return IMAGE_TYPES.png;
  if (head.length >= 6) {
    const gif = head.toString('latin1', 0, 6);
    if (gif === 'GIF87a' || gif === 'GIF89a') return IMAGE_TYPES.gif;
  }
  if (head.length >= 12 && head.toString('latin1', 0, 4) === 'RIFF' && head.toString('latin1', 8, 12) === 'WEBP') {
    return IMAGE_TYPES.webp;
  }
  if (isAvif(head)) return IMAGE_TYPES.avif;
  if (looksLikeSvg(head)) return IMAGE_TYPES.svg;
  return undefined;
}

/** `ftyp` box whose major brand, or one of whose compatible brands, is `avif` (still) or `avis` (sequence). */
function isAvif(head: Buffer): boolean {
  if (head.length < 12 || head.toString('latin1', 4, 8) !== 'ftyp') return false;
  const boxSize = head.readUInt32BE(0);
  if (boxSize < 16 || boxSize > MAX_FTYP_BOX) {
    return AVIF_BRANDS.has(head.toString('latin1', 8, 12));
  }
  if (AVIF_BRANDS.has(head.toString('latin1', 8, 12))) return true;
  // Bytes 12..16 hold the minor version; compatible brands follow, four bytes each.
  const end = Math.min(boxSize, head.length);
  for (let offset = 16; offset + 4 <= end; offset += 4) {
    if (AVIF_BRANDS.has(head.toString('latin1', offset, offset + 4))) return true;
  }
  return false;
}

/**
 * An XML document whose root element is `<svg`: skips a BOM, whitespace, the XML declaration,
 * processing instructions, comments and a DOCTYPE, then requires `<svg` followed by a name end.
 * Anything else (HTML with an inline SVG, plain text mentioning `<svg`) is not an SVG file.
 */
function looksLikeSvg(head: Buffer): boolean {
  let text = head.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let i = 0;
  for (;;) {
    while (i < text.length && /\s/.test(text[i])) i++;
    if (text.startsWith('<?', i)) {
      const end = text.indexOf('?>', i + 2);
      if (end < 0) return false;
      i = end + 2;
    } else if (text.startsWith('<!--', i)) {
      const end = text.indexOf('-->', i + 4);
      if (end < 0) return false;
      i = end + 3;
    } else if (text.startsWith('<!DOCTYPE', i) || text.startsWith('<!doctype', i)) {
      const end = skipDoctype(text, i);
      if (end < 0) return false;
      i = end;
    } else {
      return /^<svg[\s>/]/.test(text.slice(i, i + 5));
    }
  }
}

/** The index after a DOCTYPE declaration, which may hold an internal subset in brackets. */
function skipDoctype(text: string, start: number): number {
  let depth = 0;
  for (let i = start; i < text.length; i++) {
    const char = text[i];
    if (char === '[') depth++;
    else if (char === ']') depth--;
    else if (char === '>' && depth <= 0) return i + 1;
  }
  return -1;
}
