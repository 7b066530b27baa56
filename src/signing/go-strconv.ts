/**
 * The parts of Go's strconv that imgproxy's option parser relies on, so the gateway accepts and
 * refuses exactly the argument spellings imgproxy does (`w:+10` passes, `w:1.5` and `q:abc` do
 * not, `bl:1_0.5` passes). Pure functions over strings; no locale, no JavaScript coercion
 * (`Number('')` is 0, `Number('0x10')` is 16: neither is what Go says).
 */

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const FLOAT32_MAX = 3.4028234663852886e38;

/** strconv.Atoi on a 64-bit platform (ParseInt base 10): optional sign, decimal digits, int64 range. */
export function goAtoi(text: string): bigint | undefined {
  return goParseInt(text);
}

/** strconv.ParseInt(s, 10, 64). */
export function goParseInt(text: string): bigint | undefined {
  let digits = text;
  let negative = false;
  if (digits.startsWith('+') || digits.startsWith('-')) {
    negative = digits[0] === '-';
    digits = digits.slice(1);
  }
  if (!/^[0-9]+$/.test(digits)) return undefined;
  const value = negative ? -BigInt(digits) : BigInt(digits);
  return value < INT64_MIN || value > INT64_MAX ? undefined : value;
}

/** strconv.ParseUint(s, 10, bits): no sign at all, decimal digits, within the bit size. */
export function goParseUint(text: string, bits: number): bigint | undefined {
  if (!/^[0-9]+$/.test(text)) return undefined;
  const value = BigInt(text);
  return value > 2n ** BigInt(bits) - 1n ? undefined : value;
}

/**
 * strconv.ParseBool. imgproxy never refuses a boolean argument (it logs and takes false), so
 * callers only need this to know whether a flag is on.
 */
export function goParseBool(text: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  return undefined;
}

/**
 * strconv.ParseFloat(s, bits): decimal and hexadecimal (`0x1p-2`) forms, `_` between digits,
 * `inf`/`infinity` with an optional sign and `nan` without one (any case). An out-of-range value
 * is an error (Go answers ErrRange). NaN is a valid result: callers compare it like Go does.
 */
export function goParseFloat(text: string, bits: 32 | 64 = 64): number | undefined {
  const special = parseSpecial(text);
  if (special !== undefined) return special;
  const value = parseFiniteFloat(text);
  if (value === undefined) return undefined;
  if (!Number.isFinite(value)) return undefined;
  if (bits === 32 && Math.abs(value) > FLOAT32_MAX) return undefined;
  return value;
}

function parseSpecial(text: string): number | undefined {
  const lower = text.toLowerCase();
  if (lower === 'nan') return NaN;
  const unsigned = lower.startsWith('+') || lower.startsWith('-') ? lower.slice(1) : lower;
  if (unsigned === 'inf' || unsigned === 'infinity') return lower.startsWith('-') ? -Infinity : Infinity;
  return undefined;
}

/** Go's readFloat followed by the "whole string consumed" check. */
function parseFiniteFloat(text: string): number | undefined {
  let i = 0;
  let negative = false;
  if (text[i] === '+' || text[i] === '-') {
    negative = text[i] === '-';
    i++;
  }
  const hex = text.length > i + 2 && text[i] === '0' && (text[i + 1] === 'x' || text[i + 1] === 'X');
  if (hex) i += 2;

  let mantissa = '';
  let fractionDigits = 0;
  let sawDot = false;
  let sawDigits = false;
  for (; i < text.length; i++) {
    const c = text[i];
    if (c === '_') continue;
    if (c === '.') {
      if (sawDot) break;
      sawDot = true;
      continue;
    }
    if (isDigit(c) || (hex && isHexLetter(c))) {
      sawDigits = true;
      mantissa += c;
      if (sawDot) fractionDigits++;
      continue;
    }
    break;
  }
  if (!sawDigits) return undefined;

  let exponent = 0;
  const expChar = hex ? 'p' : 'e';
  if (i < text.length && text[i].toLowerCase() === expChar) {
    i++;
    let sign = 1;
    if (text[i] === '+') i++;
    else if (text[i] === '-') {
      sign = -1;
      i++;
    }
    if (i >= text.length || !isDigit(text[i])) return undefined;
    let digits = '';
    for (; i < text.length && (isDigit(text[i]) || text[i] === '_'); i++) {
      if (text[i] !== '_') digits += text[i];
    }
    // Far beyond any finite double either way; clamping keeps the arithmetic exact enough.
    exponent = sign * Math.min(Number(digits), 100_000);
  } else if (hex) {
    // A hexadecimal float needs its p exponent.
    return undefined;
  }
  if (i !== text.length) return undefined;
  if (text.includes('_') && !underscoresOk(text)) return undefined;

  let magnitude: number;
  if (hex) {
    magnitude = Number(BigInt(`0x${mantissa}`)) * 2 ** (exponent - 4 * fractionDigits);
  } else {
    const integer = mantissa.slice(0, mantissa.length - fractionDigits) || '0';
    const fraction = mantissa.slice(mantissa.length - fractionDigits);
    magnitude = Number(`${integer}.${fraction || '0'}e${exponent}`);
  }
  return negative ? -magnitude : magnitude;
}

/** Go's underscoreOK: `_` only between digits, or between a base prefix and a digit. */
function underscoresOk(text: string): boolean {
  let s = text.startsWith('+') || text.startsWith('-') ? text.slice(1) : text;
  let saw = '^';
  let hex = false;
  if (s.length >= 2 && s[0] === '0' && 'bBoOxX'.includes(s[1])) {
    hex = s[1] === 'x' || s[1] === 'X';
    saw = '0';
    s = s.slice(2);
  }
  for (const c of s) {
    if (isDigit(c) || (hex && isHexLetter(c))) {
      saw = '0';
      continue;
    }
    if (c === '_') {
      if (saw !== '0') return false;
      saw = '_';
      continue;
    }
    if (saw === '_') return false;
    saw = '!';
  }
  return saw !== '_';
}

function isDigit(c: string): boolean {
  return c >= '0' && c <= '9';
}

function isHexLetter(c: string): boolean {
  const lower = c.toLowerCase();
  return lower >= 'a' && lower <= 'f';
}

/**
 * Go's base64.RawURLEncoding.DecodeString acceptance: the URL-safe alphabet, no padding, and a
 * length that is not 1 more than a multiple of 4. Non-zero trailing bits are accepted (Go's
 * decoder is not strict by default).
 */
export function isGoRawUrlBase64(text: string): boolean {
  return /^[A-Za-z0-9_-]*$/.test(text) && text.length % 4 !== 1;
}
