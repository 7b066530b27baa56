/**
 * The raw request path after the route prefix (never decoded or normalised: imgproxy signatures
 * cover the exact bytes), minus an `api_key` query parameter, which must not travel upstream
 * when the query-string key source is enabled.
 */
export function upstreamPathOf(rawUrl: string, prefix: string): string {
  const path = rawUrl.slice(prefix.length) || '/';
  const q = path.indexOf('?');
  if (q < 0 || !/(^|[?&])api_key=/.test(path.slice(q))) return path;
  const query = path
    .slice(q + 1)
    .split('&')
    .filter((pair) => !pair.startsWith('api_key='))
    .join('&');
  return query ? `${path.slice(0, q)}?${query}` : path.slice(0, q);
}
