/**
 * `base` (a backend URL, possibly with a path prefix such as `http://host/imgproxy/`) joined
 * with `path` (starting with `/`) without doubling or losing the slash between them.
 */
export function joinUrl(base: string, path: string): string {
  return base.replace(/\/+$/, '') + path;
}
