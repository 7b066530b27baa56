import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';

type Operation = Record<string, unknown>;
type PathItem = Record<string, unknown>;

/**
 * Tags in the order a new operator works through them: create a tenant, give it a key, point the
 * gateway at backends, upload and fetch images, read usage; then the logs and the audit trail,
 * then everything else. Swagger UI lists tags in this order.
 */
export const TAG_ORDER: ReadonlyArray<{ name: string; description: string }> = [
  { name: 'admin: tenants', description: 'Customers: create, change limits and quotas, suspend, delete.' },
  { name: 'admin: API keys', description: "A tenant's keys: the secret and URL-signing key are shown once, at creation." },
  { name: 'admin: backends', description: 'The imgproxy servers images are rendered by: weight, pool, enable, drain.' },
  { name: 'images', description: 'Uploads (API key) and the image routes /i (API key) and /t (signed URL).' },
  { name: 'admin: usage', description: "A tenant's usage in the current period, and resets." },
  { name: 'tenant', description: 'What a tenant sees with its own API key: its usage and itself.' },
  { name: 'admin: request logs', description: 'One row per proxied request, by tenant, time and status.' },
  { name: 'admin: audit log', description: 'Every admin write: who, what, when, before and after.' },
  { name: 'admin: plans', description: 'Limits and quotas tenants inherit unless overridden.' },
  { name: 'admin: IP allowlists', description: 'Per tenant: the client addresses its keys may be used from.' },
  { name: 'admin: cache', description: 'Purging cached images of a tenant on every instance.' },
  { name: 'admin: routes', description: 'The live route table (image routes and configured routes) and a reload on demand.' },
  { name: 'health', description: 'Probes for load balancers and Kubernetes; unauthenticated.' },
];

/** Mounts Swagger UI at /docs and the document at /docs-json and /docs-yaml. */
export function setupSwagger(app: INestApplication): OpenAPIObject {
  const document = buildOpenApiDocument(app);
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json', yamlDocumentUrl: 'docs-yaml' });
  return document;
}

export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const builder = new DocumentBuilder()
    .setTitle('imgproxy-gateway')
    .setDescription(
      'Multi-tenant gateway in front of imgproxy. Admin endpoints take `Authorization: Bearer <ADMIN_TOKEN>`; ' +
        'tenant endpoints take an API key (`X-API-Key` or `Authorization: Bearer igw_...`). ' +
        'Every error is `{"error":{"code","message","requestId",...}}`.',
    )
    .setVersion('1')
    // The admin token is an opaque shared secret compared in constant time, not a JWT.
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'opaque admin token', description: 'ADMIN_TOKEN' }, 'admin')
    .addApiKey({ type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'Tenant API key igw_<keyId>_<secret>' }, 'apiKey');
  for (const tag of TAG_ORDER) builder.addTag(tag.name, tag.description);
  const document = SwaggerModule.createDocument(app, builder.build());

  documentRawBodies(document);
  document.paths['/i/{path}'] = imageRoute('header');
  document.paths['/t/{keyId}/{path}'] = imageRoute('signed');
  document.paths = orderPaths(document);
  return document;
}

/**
 * An upload takes multipart or the image bytes themselves. Nest's @ApiBody gives every listed
 * media type the multipart schema; a raw type's body is the binary itself.
 */
function documentRawBodies(document: OpenAPIObject): void {
  for (const item of Object.values(document.paths)) {
    for (const operation of Object.values(item) as Operation[]) {
      const content = (operation?.requestBody as { content?: Record<string, unknown> } | undefined)?.content;
      if (!content?.['multipart/form-data']) continue;
      for (const type of Object.keys(content)) {
        if (type === 'multipart/form-data' || type === 'application/json') continue;
        content[type] = { schema: { type: 'string', format: 'binary', description: 'The image bytes, as the request body.' } };
      }
    }
  }
}

/** Paths grouped by the position of their first operation's tag in TAG_ORDER, keeping Nest's order inside a tag. */
function orderPaths(document: OpenAPIObject): OpenAPIObject['paths'] {
  const rank = (item: PathItem): number => {
    const tags = Object.values(item).flatMap((operation) => ((operation as Operation)?.tags as string[] | undefined) ?? []);
    const positions = tags.map((tag) => TAG_ORDER.findIndex((t) => t.name === tag)).filter((i) => i >= 0);
    return positions.length ? Math.min(...positions) : TAG_ORDER.length;
  };
  const entries = Object.entries(document.paths).map(([path, item], index) => ({ path, item, index, rank: rank(item as PathItem) }));
  entries.sort((a, b) => a.rank - b.rank || a.index - b.index);
  return Object.fromEntries(entries.map(({ path, item }) => [path, item]));
}

const ERROR_RESPONSES: Record<string, string> = {
  '400': 'bad_url (not a usable imgproxy URL, or an option that is refused) or bad_source (outside the tenant sandbox).',
  '401': 'unauthorized: missing, unknown, revoked or expired key, or a bad URL signature.',
  '403': 'forbidden (scope, suspended tenant) or ip_not_allowed.',
  '429': 'rate_limited (with scope and Retry-After) or quota_exceeded (with quota).',
  '502': 'bad_gateway: the backends could not be reached.',
  '503': 'no_healthy_backend (none configured or none healthy), or unavailable when every backend is saturated.',
  '504': 'gateway_timeout: no backend answered in time.',
};

/**
 * `/i/*` and `/t/*` by hand: they are catch-all routes whose rest is an imgproxy path with raw
 * slashes, which a path parameter cannot express, so each is one entry with GET and HEAD and a
 * description of how to call it.
 */
function imageRoute(mode: 'header' | 'signed'): PathItem {
  const header = mode === 'header';
  const pathParam = {
    name: 'path',
    in: 'path',
    required: true,
    schema: { type: 'string' },
    description: header
      ? 'The imgproxy path `<signature-or-insecure>/<processing options>/<source>`, slashes kept as they are.'
      : 'The signed imgproxy path `<signature>/<processing options>/<source>`, slashes kept as they are.',
    example: header ? 'insecure/rs:fit:300:200/plain/local:///photo.jpg' : '<signature>/rs:fit:300:200/<base64 source>',
  };
  const parameters = header
    ? [pathParam]
    : [{ name: 'keyId', in: 'path', required: true, schema: { type: 'string' }, description: 'The key id (the part after igw_).', example: 'AbC123xyz789' }, pathParam];
  const description = header
    ? 'Header mode: any imgproxy path, authenticated by the API key (`X-API-Key` or `Authorization: Bearer igw_...`); the ' +
      'signature segment is not checked, so `insecure` will do. The source is sandboxed to the tenant (`local:///` is its ' +
      'upload folder, remote sources only from its allowed list) and the URL is re-signed for the backends. Needs ' +
      '`images:read`.\n\n' +
      'Swagger UI cannot send raw slashes inside a path parameter (it encodes them), so call it with curl:\n\n' +
      "```\ncurl -H 'X-API-Key: igw_<keyId>_<secret>' -o out.jpg 'https://<gateway>/i/insecure/rs:fit:300:200/plain/local:///<image id>.jpg'\n```"
    : 'Browser mode: an imgproxy URL signed with the key\'s signing key and salt, no header needed (works in `<img src>`). ' +
      'Build it with any official imgproxy URL builder, base URL `https://<gateway>/t/<keyId>`; the `url` of an upload ' +
      'answer is one, ready to fetch. `insecure` is refused unless the tenant allows unsigned URLs.\n\n' +
      'Swagger UI cannot send raw slashes inside a path parameter (it encodes them), so call it with curl:\n\n' +
      "```\ncurl -o out.jpg 'https://<gateway>/t/<keyId>/<signature>/rs:fit:300:200/<base64 source>'\n```";
  const errors = Object.fromEntries(
    Object.entries(ERROR_RESPONSES).map(([status, text]) => [
      status,
      { description: text, content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorResponseDto' } } } },
    ]),
  );
  const operation = (method: 'get' | 'head'): Operation => ({
    operationId: `${header ? 'imageByApiKey' : 'imageBySignedUrl'}_${method}`,
    tags: ['images'],
    summary: header
      ? `A processed image for an API-key caller (${method.toUpperCase()}).`
      : `A processed image by signed URL (${method.toUpperCase()}).`,
    description,
    parameters,
    // Signed URLs carry their credential in the path: an empty list says "no header scheme".
    security: header ? [{ apiKey: [] }] : [],
    responses: {
      '200': {
        description: method === 'head' ? 'The headers the image would have.' : "The backend's image, streamed (status, body and cache headers preserved).",
        ...(method === 'get' ? { content: { 'image/*': { schema: { type: 'string', format: 'binary' } } } } : {}),
      },
      '304': { description: 'Not modified (If-None-Match matched the ETag).' },
      ...errors,
    },
  });
  return { get: operation('get'), head: operation('head') };
}
