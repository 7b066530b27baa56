/**
 * Deepest nesting of objects and arrays an admin or tenant JSON body may have. The deepest
 * payload of the API is three levels (`{"entries":[{"cidr":…}]}`); validation and transformation
 * walk a body recursively, so thousands of levels would exhaust the stack and answer 500.
 */
export const MAX_JSON_DEPTH = 32;

/**
 * Whether `text` nests objects and arrays deeper than `max`. One pass over the characters,
 * skipping strings (escapes honoured), before anything parses it; malformed JSON is left for
 * the parser to refuse.
 */
export function jsonNestingExceeds(text: string, max: number = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: the next character is escaped
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}
