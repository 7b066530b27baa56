import { createTenantWithKey, HIGH_RATE_LIMIT_CONFIG } from './support/tenants';
import { TestApp, createTestApp } from './support/test-app';

/**
 * What a newcomer meets in the API of a gateway with nothing configured: the OpenAPI document,
 * the messages of the first mistakes, the answer of an image request with no backend, the
 * readiness probe, and the scopes of a key created without any.
 */
describe('first contact with the API', () => {
  let gw: TestApp;
  let doc: any; // eslint-disable-line @typescript-eslint/no-explicit-any

  beforeAll(async () => {
    gw = await createTestApp({ config: HIGH_RATE_LIMIT_CONFIG });
    doc = await (await gw.fetch('/docs-json')).json();
  });
  afterAll(async () => {
    await gw.close();
  });

  describe('/docs-json', () => {
    it('lists each image route once, with GET and HEAD, its path parameters, security and error answers', () => {
      const imagePaths = Object.keys(doc.paths).filter((p) => /^\/(i|t)\//.test(p));
      expect(imagePaths).toEqual(['/i/{path}', '/t/{keyId}/{path}']);
      const header = doc.paths['/i/{path}'];
      const signed = doc.paths['/t/{keyId}/{path}'];
      for (const [item, params, security] of [
        [header, ['path'], [{ apiKey: [] }]],
        [signed, ['keyId', 'path'], []],
      ] as const) {
        expect(Object.keys(item).sort()).toEqual(['get', 'head']);
        for (const operation of [item.get, item.head]) {
          expect(operation.tags).toEqual(['images']);
          expect(operation.parameters.map((p: { name: string; in: string }) => `${p.in}:${p.name}`)).toEqual(params.map((p) => `path:${p}`));
          expect(operation.security).toEqual(security);
          for (const status of ['400', '401', '403', '429', '502', '503', '504']) {
            expect(operation.responses[status].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/ErrorResponseDto' });
          }
          expect(operation.responses['400'].description).toMatch(/bad_url.*bad_source/);
          expect(operation.description).toMatch(/curl /);
        }
      }
      expect(signed.get.description).toContain('https://<gateway>/t/<keyId>');
      expect(doc.components.schemas.ErrorResponseDto).toBeDefined();
      // Operation ids are unique across the document (Swagger UI links by them).
      const ids = Object.values(doc.paths).flatMap((item) => Object.values(item as object).map((op) => (op as { operationId: string }).operationId));
      expect(new Set(ids).size).toBe(ids.length);
    });

    it('describes the admin bearer token as opaque, not a JWT', () => {
      expect(doc.components.securitySchemes.admin).toMatchObject({ type: 'http', scheme: 'bearer', bearerFormat: 'opaque admin token' });
    });

    it('documents a raw upload body as binary beside multipart', () => {
      const content = doc.paths['/api/v1/images'].post.requestBody.content;
      expect(content['multipart/form-data'].schema).toMatchObject({ type: 'object', properties: { file: { type: 'string', format: 'binary' } } });
      for (const type of ['image/jpeg', 'image/png', 'image/webp', 'application/octet-stream']) {
        expect(content[type].schema).toMatchObject({ type: 'string', format: 'binary' });
      }
    });

    it('types expiresAt as a nullable date-time', () => {
      for (const schema of ['ApiKeyCreateDto', 'ApiKeyCreatedDto', 'ApiKeyResponseDto']) {
        expect(doc.components.schemas[schema].properties.expiresAt).toMatchObject({ type: 'string', format: 'date-time', nullable: true });
      }
    });

    it('orders tags by the workflow, and every tag in use is declared', () => {
      const declared: string[] = doc.tags.map((t: { name: string }) => t.name);
      expect(declared.slice(0, 8)).toEqual([
        'admin: tenants',
        'admin: API keys',
        'admin: backends',
        'images',
        'admin: usage',
        'tenant',
        'admin: request logs',
        'admin: audit log',
      ]);
      const used = new Set(Object.values(doc.paths).flatMap((item) => Object.values(item as object).flatMap((op) => (op as { tags?: string[] }).tags ?? [])));
      for (const tag of used) expect(declared).toContain(tag);
      // Paths follow the same order, so /docs-json reads like the UI.
      const firstTagOf = (path: string) => declared.indexOf((Object.values(doc.paths[path])[0] as { tags: string[] }).tags[0]);
      const ranks = Object.keys(doc.paths).map(firstTagOf);
      expect(ranks).toEqual([...ranks].sort((a, b) => a - b));
    });
  });

  it('says a missing required field is required, for every DTO', async () => {
    const tenant = await gw.admin('/admin/v1/tenants', { method: 'POST', json: { name: 'No email' } });
    expect(tenant.status).toBe(400);
    expect((await tenant.json()).error).toMatchObject({ code: 'validation_failed', details: ['email is required'] });
    const backend = await gw.admin('/admin/v1/backends', { method: 'POST', json: { name: 'b' } });
    expect((await backend.json()).error.details).toEqual(['url is required', 'weight is required']);
    const { tenantId } = await createTenantWithKey(gw);
    const allowlist = await gw.admin(`/admin/v1/tenants/${tenantId}/ip-allowlist`, { method: 'PUT', json: { entries: [{ description: 'office' }] } });
    expect((await allowlist.json()).error.details).toEqual(['entries.0.cidr is required']);
  });

  it('gives a key created without scopes everything a first integration needs', async () => {
    const { tenantId } = await createTenantWithKey(gw);
    const res = await gw.admin(`/admin/v1/tenants/${tenantId}/keys`, { method: 'POST', json: {} });
    expect((await res.json()).scopes).toEqual(['images:read', 'images:write', 'usage:read']);
  });

  it('answers an image request with no backend by naming how to add one, and is not ready', async () => {
    const tenant = await createTenantWithKey(gw);
    const res = await gw.fetch('/i/insecure/rs:fit:10:10/plain/local:///a.jpg', { headers: { 'x-api-key': tenant.key } });
    expect(res.status).toBe(503);
    const { error } = await res.json();
    expect(error.code).toBe('no_healthy_backend');
    expect(error.message).toContain('POST /admin/v1/backends');
    expect(error.message).toContain('BACKENDS');

    const ready = await gw.fetch('/health/ready');
    expect(ready.status).toBe(503);
    expect((await ready.json()).error.details.backends).toMatchObject({ status: 'down', pools: 0, noBackendConfigured: true });
  });
});
