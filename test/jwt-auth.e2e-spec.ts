import { randomUUID } from 'node:crypto';
import { Controller, Get, Module, Req, UseGuards } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { SignJWT, type JWTPayload } from 'jose';
import { RequireScope } from '../src/plugins/key-auth/require-scope.decorator';
import { parseJwtAuthConfig } from '../src/config/jwt-auth.config';
import { JwtAuthGuard } from '../src/plugins/jwt-auth/jwt-auth.guard';
import { JwtAuthService, type JwtCheck } from '../src/plugins/jwt-auth/jwt-auth.service';
import { JwksServer, signingKey, type SigningKey } from './support/jwks-server';
import { createTenantWithKey } from './support/tenants';
import { TestApp, createTestApp } from './support/test-app';

jest.setTimeout(60_000);

const SECRET = 'e2e-hs256-secret-of-at-least-32-bytes!!';
const ISSUER = 'https://idp.e2e.example';
const AUDIENCE = 'imgproxy-gateway';

@Controller('jwt-probe')
@UseGuards(JwtAuthGuard)
class JwtProbeController {
  @Get()
  whoami(@Req() request: FastifyRequest): unknown {
    return request.gw.auth;
  }

  @Get('write')
  @RequireScope('images:write')
  write(): unknown {
    return { ok: true };
  }
}

function jwtPlain(jwksUrl: string) {
  return { algorithms: ['HS256', 'RS256'], secret: SECRET, jwksUrl, issuer: ISSUER, audience: AUDIENCE };
}

function jwtConfig(jwksUrl: string) {
  return parseJwtAuthConfig(jwtPlain(jwksUrl));
}

/** A Nest route behind JwtAuthGuard; the gateway's own JwtAuthModule (auth.jwt) provides the guard. */
@Module({ controllers: [JwtProbeController] })
class JwtProbeModule {}

/**
 * JWT callers against the real gateway, PostgreSQL and Redis: tenants made through the admin API
 * and resolved through JwtAuthService (and its guard), on two instances sharing one database, so
 * a suspension made on one reaches the other's tenant cache through the invalidation channel.
 */
describe('JWT authentication (e2e)', () => {
  let jwks: JwksServer;
  let rsa: SigningKey;
  let a: TestApp;
  let b: TestApp;
  let jwtA: JwtAuthService;
  let jwtB: JwtAuthService;

  /** Issued by ISSUER for AUDIENCE, expiring in 5 minutes unless the claims say otherwise. */
  function claimsOf(claims: JWTPayload): JWTPayload {
    return { iss: ISSUER, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 300, ...claims };
  }

  function hs256(claims: JWTPayload): Promise<string> {
    return new SignJWT(claimsOf(claims)).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET));
  }

  function rs256(claims: JWTPayload): Promise<string> {
    return new SignJWT(claimsOf(claims)).setProtectedHeader({ alg: 'RS256', kid: rsa.kid }).sign(rsa.privateKey);
  }

  async function reasonOn(service: JwtAuthService, token: string): Promise<string> {
    const outcome: JwtCheck = await service.check(`Bearer ${token}`);
    return outcome.ok ? 'ok' : outcome.reason;
  }

  async function eventually(probe: () => Promise<string>, expected: string): Promise<string> {
    const deadline = Date.now() + 2_000;
    let seen = await probe();
    while (seen !== expected && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      seen = await probe();
    }
    return seen;
  }

  beforeAll(async () => {
    rsa = await signingKey('RS256', 'e2e-1');
    jwks = await JwksServer.start();
    jwks.keys = [rsa.jwk];
    const config = { auth: { jwt: jwtPlain(jwks.url) } };
    a = await createTestApp({ config, imports: [JwtProbeModule] });
    b = await createTestApp({ config, database: a.database, redisPrefix: a.redisPrefix, imports: [JwtProbeModule] });
    jwtA = a.app.get(JwtAuthService);
    jwtB = b.app.get(JwtAuthService);
  });

  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await jwks?.close();
  });

  it('resolves the tenant of a valid token to the AuthContext an API key would give', async () => {
    const tenant = await createTenantWithKey(a, {
      rateLimits: { perMinute: 77 },
      quotas: { monthlyRequests: 12345 },
      allowedSources: ['https://cdn.e2e.example/'],
      allowUnsignedUrls: true,
    });
    const shown = (await (await a.admin(`/admin/v1/tenants/${tenant.tenantId}`)).json()) as { name: string; limits: unknown };

    const { auth, token } = await jwtA.authenticate(`Bearer ${await hs256({ tenant: tenant.tenantId, sub: 'alice' })}`);
    expect(auth).toEqual({
      tenantId: tenant.tenantId,
      tenantName: shown.name,
      scopes: ['images:read'],
      via: 'jwt',
      limits: shown.limits,
      allowedSources: ['https://cdn.e2e.example/'],
      allowUnsignedUrls: true,
    });
    expect(auth.limits).toMatchObject({ perMinute: 77, monthlyRequests: 12345 });
    expect(token.subject).toBe('alice');

    // The same context (one object) for the next token of that tenant: no second lookup.
    const lookups = jwtA.stats().tenants.databaseLookups;
    const again = await jwtA.authenticate(`Bearer ${await rs256({ tenant: tenant.tenantId, sub: 'bob' })}`);
    expect(again.auth).toBe(auth);
    expect(jwtA.stats().tenants.databaseLookups).toBe(lookups);
  });

  it('answers HTTP callers through the guard: one 401 with the Bearer challenge for every refusal', async () => {
    const tenant = await createTenantWithKey(a);
    const ok = await a.fetch('/jwt-probe', { headers: { authorization: `Bearer ${await rs256({ tenant: tenant.tenantId })}` } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ tenantId: tenant.tenantId, via: 'jwt', scopes: ['images:read'] });

    const refusals: Record<string, string | undefined> = {
      missing: undefined,
      malformed: 'Bearer not-a-jwt',
      apiKey: `Bearer ${tenant.key}`,
      expired: `Bearer ${await hs256({ tenant: tenant.tenantId, exp: Math.floor(Date.now() / 1000) - 120 })}`,
      badIssuer: `Bearer ${await hs256({ tenant: tenant.tenantId, iss: 'https://other.example' })}`,
      unknownTenant: `Bearer ${await hs256({ tenant: randomUUID() })}`,
    };
    const bodies = new Set<string>();
    for (const [name, authorization] of Object.entries(refusals)) {
      const response = await a.fetch('/jwt-probe', { headers: authorization ? { authorization } : {} });
      expect([name, response.status, response.headers.get('www-authenticate')]).toEqual([name, 401, 'Bearer realm="imgproxy-gateway"']);
      const { error } = (await response.json()) as { error: { code: string; message: string; requestId: string } };
      bodies.add(JSON.stringify({ ...error, requestId: undefined }));
    }
    expect([...bodies]).toEqual([JSON.stringify({ code: 'unauthorized', message: 'A valid bearer token is required.' })]);

    const metrics = await (await a.fetch('/metrics')).text();
    for (const reason of ['jwt_missing', 'jwt_malformed', 'jwt_expired', 'jwt_bad_issuer', 'jwt_unknown_tenant']) {
      expect(metrics).toMatch(new RegExp(`gateway_auth_failures_total\\{reason="${reason}"\\} [1-9]`));
    }
  });

  it('takes scopes from the token: a route needing images:write refuses the default grant with 403', async () => {
    const tenant = await createTenantWithKey(a);
    const plain = await a.fetch('/jwt-probe/write', { headers: { authorization: `Bearer ${await hs256({ tenant: tenant.tenantId })}` } });
    expect(plain.status).toBe(403);
    expect(((await plain.json()) as { error: { code: string } }).error.code).toBe('forbidden');
    const writer = await hs256({ tenant: tenant.tenantId, scope: 'images:read images:write' });
    expect((await a.fetch('/jwt-probe/write', { headers: { authorization: `Bearer ${writer}` } })).status).toBe(200);
  });

  it('refuses an unknown tenant with 401, remembering it without asking PostgreSQL again', async () => {
    const token = await hs256({ tenant: randomUUID() });
    expect(await reasonOn(jwtA, token)).toBe('jwt_unknown_tenant');
    const lookups = jwtA.stats().tenants.databaseLookups;
    expect(await reasonOn(jwtA, token)).toBe('jwt_unknown_tenant');
    expect(jwtA.stats().tenants.databaseLookups).toBe(lookups);
  });

  it('looks a tenant up once for a burst of concurrent first requests', async () => {
    const tenant = await createTenantWithKey(a);
    const tokens = await Promise.all(Array.from({ length: 8 }, (_, i) => hs256({ tenant: tenant.tenantId, sub: `u${i}` })));
    const lookups = jwtA.stats().tenants.databaseLookups;
    const outcomes = await Promise.all(tokens.map((token) => reasonOn(jwtA, token)));
    expect(outcomes).toEqual(tokens.map(() => 'ok'));
    expect(jwtA.stats().tenants.databaseLookups).toBe(lookups + 1);
  });

  it('refuses a suspended tenant with 403 forbidden "suspended"', async () => {
    const tenant = await createTenantWithKey(a);
    expect((await a.admin(`/admin/v1/tenants/${tenant.tenantId}/suspend`, { method: 'POST' })).status).toBe(200);
    const token = await hs256({ tenant: tenant.tenantId });
    expect(await reasonOn(jwtA, token)).toBe('jwt_suspended');
    const response = await a.fetch('/jwt-probe', { headers: { authorization: `Bearer ${token}` } });
    expect(response.status).toBe(403);
    expect(((await response.json()) as { error: unknown }).error).toMatchObject({ code: 'forbidden', message: 'This account is suspended.' });
  });

  it('drops a cached tenant on every instance when it is suspended, changed or reactivated', async () => {
    const tenant = await createTenantWithKey(a, { rateLimits: { perMinute: 50 } });
    const token = await hs256({ tenant: tenant.tenantId });
    const authOnB = async () => {
      const outcome = await jwtB.check(`Bearer ${token}`);
      return outcome.ok ? `ok:${outcome.auth.limits.perMinute}` : outcome.reason;
    };
    expect(await authOnB()).toBe('ok:50');
    const lookups = jwtB.stats().tenants.databaseLookups;
    expect(await authOnB()).toBe('ok:50');
    expect(jwtB.stats().tenants.databaseLookups).toBe(lookups);

    // Changed through instance A: B's cache entry is dropped over Redis, well before its TTL (60 s).
    expect((await a.admin(`/admin/v1/tenants/${tenant.tenantId}/suspend`, { method: 'POST' })).status).toBe(200);
    expect(await eventually(authOnB, 'jwt_suspended')).toBe('jwt_suspended');
    expect((await a.admin(`/admin/v1/tenants/${tenant.tenantId}/reactivate`, { method: 'POST' })).status).toBe(200);
    expect(await eventually(authOnB, 'ok:50')).toBe('ok:50');
    expect((await a.admin(`/admin/v1/tenants/${tenant.tenantId}`, { method: 'PATCH', json: { rateLimits: { perMinute: 99 } } })).status).toBe(200);
    expect(await eventually(authOnB, 'ok:99')).toBe('ok:99');
  });

  it('takes a new auth.jwt without a restart', async () => {
    const tenant = await createTenantWithKey(b);
    const before = await hs256({ tenant: tenant.tenantId });
    expect(await reasonOn(jwtB, before)).toBe('ok');
    const rotated = 'a-rotated-hs256-secret-of-at-least-32-bytes';
    jwtB.reconfigure(parseJwtAuthConfig({ algorithms: ['HS256'], secret: rotated, issuer: ISSUER, audience: AUDIENCE }));
    try {
      // The verdict cached under the old configuration went with it.
      expect(await reasonOn(jwtB, before)).toBe('jwt_bad_signature');
      const after = await new SignJWT(claimsOf({ tenant: tenant.tenantId })).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(rotated));
      expect(await reasonOn(jwtB, after)).toBe('ok');
      expect(await reasonOn(jwtB, await rs256({ tenant: tenant.tenantId }))).toBe('jwt_bad_algorithm');
    } finally {
      jwtB.reconfigure(jwtConfig(jwks.url));
    }
  });
});
