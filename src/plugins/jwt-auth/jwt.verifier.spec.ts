import { createHmac, randomUUID } from 'node:crypto';
import { exportSPKI, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { JwksServer, signingKey, type SigningKey } from '../../../test/support/jwks-server';
import { parseJwtAuthConfig } from '../../config/jwt-auth.config';
import { JwtVerifier, MAX_TOKEN_LENGTH, type JwtVerification } from './jwt.verifier';

const SECRET = 'an-hs256-secret-of-at-least-32-bytes!';
const TENANT = randomUUID();
const silent = { warn: () => undefined, log: () => undefined };

let clock = Date.now();
const now = () => clock;
const seconds = () => Math.floor(clock / 1000);

interface SignOptions {
  alg?: string;
  key?: CryptoKey | Uint8Array;
  kid?: string;
  header?: Record<string, unknown>;
}

/** A token with a tenant, `exp` an hour ahead and the given claims (undefined removes one). */
function sign(claims: JWTPayload = {}, options: SignOptions = {}): Promise<string> {
  const payload: JWTPayload = { tenant: TENANT, sub: 'user-1', exp: seconds() + 3600, ...claims };
  for (const [name, value] of Object.entries(payload)) if (value === undefined) delete payload[name];
  const alg = options.alg ?? 'HS256';
  return new SignJWT(payload)
    .setProtectedHeader({ alg, ...(options.kid ? { kid: options.kid } : {}), ...options.header })
    .sign(options.key ?? new TextEncoder().encode(SECRET));
}

/** A correctly signed token around any payload segment (jose only signs JSON). */
function hmacSigned(header: string, payload: string): string {
  return `${header}.${payload}.${createHmac('sha256', SECRET).update(`${header}.${payload}`).digest('base64url')}`;
}

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

async function reasonOf(verifier: JwtVerifier, token: string): Promise<string> {
  const verdict = await verifier.verify(token);
  return verdict.ok ? 'ok' : verdict.reason;
}

function hmacVerifier(extra: Record<string, unknown> = {}): JwtVerifier {
  return new JwtVerifier(parseJwtAuthConfig({ algorithms: ['HS256'], secret: SECRET, tokenCacheSeconds: 0, ...extra }), { now, logger: silent });
}

beforeEach(() => {
  clock = Date.now();
});

describe('JwtVerifier with HS256', () => {
  it('accepts a valid token and says who the caller is', async () => {
    const verdict = await hmacVerifier().verify(await sign({ scope: 'images:read images:write other:thing' }));
    expect(verdict).toEqual({
      ok: true,
      token: { tenantId: TENANT, subject: 'user-1', claims: expect.objectContaining({ tenant: TENANT }), scopes: ['images:read', 'images:write'] },
    });
  });

  it('refuses a bad or tampered signature', async () => {
    const verifier = hmacVerifier();
    expect(await reasonOf(verifier, await sign({}, { key: new TextEncoder().encode('another-secret-of-at-least-32-bytes!!') }))).toBe('jwt_bad_signature');
    const [header, , signature] = (await sign()).split('.');
    const forged = `${header}.${b64({ tenant: randomUUID(), exp: seconds() + 3600 })}.${signature}`;
    expect(await reasonOf(verifier, forged)).toBe('jwt_bad_signature');
  });

  it('refuses alg none, signed or not', async () => {
    const verifier = hmacVerifier();
    const claims = b64({ tenant: TENANT, exp: seconds() + 3600 });
    expect(await reasonOf(verifier, `${b64({ alg: 'none', typ: 'JWT' })}.${claims}.`)).toBe('jwt_bad_algorithm');
    expect(await reasonOf(verifier, `${b64({ alg: 'none' })}.${claims}.c2lnbmF0dXJl`)).toBe('jwt_bad_algorithm');
    expect(await reasonOf(verifier, `${b64({ alg: 'NONE' })}.${claims}.`)).toBe('jwt_bad_algorithm');
  });

  it('refuses algorithms that are not configured', async () => {
    const rsa = await signingKey('RS256', 'k1');
    expect(await reasonOf(hmacVerifier(), await sign({}, { alg: 'RS256', key: rsa.privateKey, kid: 'k1' }))).toBe('jwt_bad_algorithm');
    expect(await reasonOf(hmacVerifier(), await sign({}, { alg: 'HS512', key: new TextEncoder().encode(SECRET.repeat(2)) }))).toBe('jwt_bad_algorithm');
  });

  it('checks exp and nbf with the configured skew', async () => {
    const verifier = hmacVerifier();
    expect(await reasonOf(verifier, await sign({ exp: seconds() - 31 }))).toBe('jwt_expired');
    expect(await reasonOf(verifier, await sign({ exp: seconds() - 10 }))).toBe('ok');
    expect(await reasonOf(verifier, await sign({ nbf: seconds() + 31 }))).toBe('jwt_not_yet_valid');
    expect(await reasonOf(verifier, await sign({ nbf: seconds() + 10 }))).toBe('ok');
    const strict = hmacVerifier({ clockSkewSeconds: 0 });
    expect(await reasonOf(strict, await sign({ exp: seconds() - 1 }))).toBe('jwt_expired');
  });

  it('requires exp: a token that never expires is refused', async () => {
    expect(await reasonOf(hmacVerifier(), await sign({ exp: undefined }))).toBe('jwt_malformed');
    expect(await reasonOf(hmacVerifier(), await sign({ exp: 'tomorrow' as unknown as number }))).toBe('jwt_malformed');
  });

  it('checks issuer and audience when configured', async () => {
    const verifier = hmacVerifier({ issuer: 'https://idp.example', audience: 'imgproxy-gateway' });
    const good = { iss: 'https://idp.example', aud: 'imgproxy-gateway' };
    expect(await reasonOf(verifier, await sign(good))).toBe('ok');
    expect(await reasonOf(verifier, await sign({ ...good, aud: ['other', 'imgproxy-gateway'] }))).toBe('ok');
    expect(await reasonOf(verifier, await sign({ ...good, iss: 'https://evil.example' }))).toBe('jwt_bad_issuer');
    expect(await reasonOf(verifier, await sign({ ...good, iss: undefined }))).toBe('jwt_bad_issuer');
    expect(await reasonOf(verifier, await sign({ ...good, aud: 'other' }))).toBe('jwt_bad_audience');
    expect(await reasonOf(verifier, await sign({ ...good, aud: undefined }))).toBe('jwt_bad_audience');
    // Not configured: not checked.
    expect(await reasonOf(hmacVerifier(), await sign({ iss: 'anyone', aud: 'anything' }))).toBe('ok');
  });

  it('takes the tenant from tenantClaim, which must hold a uuid', async () => {
    const verifier = hmacVerifier();
    expect(await reasonOf(verifier, await sign({ tenant: undefined }))).toBe('jwt_no_tenant');
    expect(await reasonOf(verifier, await sign({ tenant: 'acme' }))).toBe('jwt_no_tenant');
    expect(await reasonOf(verifier, await sign({ tenant: 42 }))).toBe('jwt_no_tenant');
    const namespaced = hmacVerifier({ tenantClaim: 'https://gw.example/tenant' });
    const verdict = await namespaced.verify(await sign({ tenant: undefined, 'https://gw.example/tenant': TENANT.toUpperCase() }));
    expect(verdict.ok && verdict.token.tenantId).toBe(TENANT);
  });

  it('refuses what is not a compact JWT', async () => {
    const verifier = hmacVerifier();
    for (const token of ['', 'abc', 'a.b', 'a.b.c.d', '.b.c', 'a..c', `bm90LWpzb24.${b64({})}.c2ln`, hmacSigned(b64({ alg: 'HS256' }), 'bm90LWpzb24')]) {
      expect([token, await reasonOf(verifier, token)]).toEqual([token, 'jwt_malformed']);
    }
    expect(await reasonOf(verifier, `${b64({ alg: 'HS256' })}.${'a'.repeat(MAX_TOKEN_LENGTH)}.c2ln`)).toBe('jwt_malformed');
    // A critical extension the gateway does not understand must not be ignored (RFC 7515 §4.1.11).
    const crit = hmacSigned(b64({ alg: 'HS256', crit: ['x-unknown'], 'x-unknown': 1 }), b64({ tenant: TENANT, exp: seconds() + 60 }));
    expect(await reasonOf(verifier, crit)).toBe('jwt_malformed');
  });
});

describe('JwtVerifier with a key set', () => {
  let jwks: JwksServer;
  let rsa: SigningKey;
  let ec: SigningKey;
  const verifiers: JwtVerifier[] = [];

  function keySetVerifier(extra: Record<string, unknown> = {}): JwtVerifier {
    const verifier = new JwtVerifier(parseJwtAuthConfig({ algorithms: ['RS256', 'ES256'], jwksUrl: jwks.url, ...extra }), { now, logger: silent });
    verifiers.push(verifier);
    verifier.start();
    return verifier;
  }

  beforeAll(async () => {
    rsa = await signingKey('RS256', 'rsa-1');
    ec = await signingKey('ES256', 'ec-1');
  });

  beforeEach(async () => {
    jwks = await JwksServer.start();
    jwks.keys = [rsa.jwk, ec.jwk];
  });

  afterEach(async () => {
    for (const verifier of verifiers.splice(0)) verifier.stop();
    await jwks.close();
  });

  it('verifies RS256 and ES256 with the published keys', async () => {
    const verifier = keySetVerifier();
    expect(await reasonOf(verifier, await sign({}, { alg: 'RS256', key: rsa.privateKey, kid: 'rsa-1' }))).toBe('ok');
    expect(await reasonOf(verifier, await sign({}, { alg: 'ES256', key: ec.privateKey, kid: 'ec-1' }))).toBe('ok');
    expect(jwks.requests).toBe(1);
  });

  it('refuses an HS256 token signed with the public key as HMAC secret (algorithm confusion)', async () => {
    const pem = new TextEncoder().encode(await exportSPKI(rsa.publicKey));
    const jwkBytes = new TextEncoder().encode(JSON.stringify(rsa.jwk));
    const rsOnly = keySetVerifier();
    expect(await reasonOf(rsOnly, await sign({}, { alg: 'HS256', key: pem, kid: 'rsa-1' }))).toBe('jwt_bad_algorithm');
    // With HS256 enabled too, an HS256 token is checked against the configured secret only.
    const both = keySetVerifier({ algorithms: ['HS256', 'RS256'], secret: SECRET });
    expect(await reasonOf(both, await sign({}, { alg: 'HS256', key: pem, kid: 'rsa-1' }))).toBe('jwt_bad_signature');
    expect(await reasonOf(both, await sign({}, { alg: 'HS256', key: jwkBytes, kid: 'rsa-1' }))).toBe('jwt_bad_signature');
    expect(await reasonOf(both, await sign({}, { alg: 'HS256' }))).toBe('ok');
  });

  it('never uses a symmetric key of the key set, nor a key for another family', async () => {
    const attackerSecret = 'attacker-chosen-secret-of-32-bytes!!';
    jwks.keys = [rsa.jwk, { kty: 'oct', kid: 'sym', k: Buffer.from(attackerSecret).toString('base64url') }];
    const verifier = keySetVerifier({ algorithms: ['HS256', 'RS256', 'ES256'], secret: SECRET });
    expect(await reasonOf(verifier, await sign({}, { alg: 'HS256', key: new TextEncoder().encode(attackerSecret), kid: 'sym' }))).toBe('jwt_bad_signature');
    // An ES256 token naming the RSA key's kid finds no EC key under it.
    expect(await reasonOf(verifier, await sign({}, { alg: 'ES256', key: ec.privateKey, kid: 'rsa-1' }))).toBe('jwt_unknown_kid');
  });

  it('refuses a token signed by a key the set does not publish', async () => {
    const verifier = keySetVerifier();
    const stranger = await signingKey('RS256', 'rsa-1');
    expect(await reasonOf(verifier, await sign({}, { alg: 'RS256', key: stranger.privateKey, kid: 'rsa-1' }))).toBe('jwt_bad_signature');
  });

  it('tries every matching key for a token without kid', async () => {
    const second = await signingKey('RS256', 'rsa-2');
    jwks.keys = [{ ...rsa.jwk, kid: undefined }, { ...second.jwk, kid: undefined }];
    const verifier = keySetVerifier();
    expect(await reasonOf(verifier, await sign({}, { alg: 'RS256', key: second.privateKey }))).toBe('ok');
    const stranger = await signingKey('RS256', 'x');
    expect(await reasonOf(verifier, await sign({}, { alg: 'RS256', key: stranger.privateKey }))).toBe('jwt_bad_signature');
  });

  it('fetches again on an unknown kid, once, and picks up a rotated key', async () => {
    const verifier = keySetVerifier();
    expect(await reasonOf(verifier, await sign({}, { alg: 'RS256', key: rsa.privateKey, kid: 'rsa-1' }))).toBe('ok');
    expect(jwks.requests).toBe(1);

    const next = await signingKey('RS256', 'rsa-2');
    const rotated = await sign({}, { alg: 'RS256', key: next.privateKey, kid: 'rsa-2' });
    clock += 31_000;
    jwks.keys = [rsa.jwk, next.jwk];
    expect(await reasonOf(verifier, rotated)).toBe('ok');
    expect(jwks.requests).toBe(2);

    clock += 31_000;
    expect(await reasonOf(verifier, await sign({}, { alg: 'RS256', key: next.privateKey, kid: 'nobody' }))).toBe('jwt_unknown_kid');
    expect(jwks.requests).toBe(3);
  });

  it('rate-limits refetches: a flood of unknown kids costs one fetch per interval', async () => {
    const verifier = keySetVerifier();
    await verifier.verify(await sign({}, { alg: 'RS256', key: rsa.privateKey, kid: 'rsa-1' }));
    clock += 31_000;
    const made = await Promise.all(Array.from({ length: 20 }, (_, i) => sign({}, { alg: 'RS256', key: rsa.privateKey, kid: `made-up-${i}` })));
    jwks.delayMs = 50;
    const verdicts = await Promise.all(made.map((token) => verifier.verify(token)));
    expect(verdicts.every((v) => !v.ok && v.reason === 'jwt_unknown_kid')).toBe(true);
    expect(jwks.requests).toBe(2);
    clock += 10_000;
    expect(await reasonOf(verifier, made[0])).toBe('jwt_unknown_kid');
    expect(jwks.requests).toBe(2);
    clock += 21_000;
    expect(await reasonOf(verifier, made[0])).toBe('jwt_unknown_kid');
    expect(jwks.requests).toBe(3);
  });

  it('concurrent tokens with a new kid share one fetch and all pass', async () => {
    const verifier = keySetVerifier();
    await verifier.verify(await sign({}, { alg: 'RS256', key: rsa.privateKey, kid: 'rsa-1' }));
    const next = await signingKey('ES256', 'ec-2');
    const tokens = await Promise.all(Array.from({ length: 10 }, (_, i) => sign({ sub: `u${i}` }, { alg: 'ES256', key: next.privateKey, kid: 'ec-2' })));
    clock += 31_000;
    jwks.keys = [rsa.jwk, next.jwk];
    jwks.delayMs = 50;
    const verdicts = await Promise.all(tokens.map((token) => verifier.verify(token)));
    expect(verdicts.map((v) => v.ok)).toEqual(tokens.map(() => true));
    expect(jwks.requests).toBe(2);
  });

  it('keeps the last good keys through an outage of the key set', async () => {
    const verifier = keySetVerifier({ jwksTimeoutMs: 200 });
    const token = await sign({}, { alg: 'RS256', key: rsa.privateKey, kid: 'rsa-1' });
    expect(await reasonOf(verifier, token)).toBe('ok');
    for (const mode of ['error', 'hang', 'huge'] as const) {
      jwks.mode = mode;
      clock += 31_000;
      expect([mode, await reasonOf(verifier, await sign({}, { alg: 'RS256', key: rsa.privateKey, kid: 'unknown' }))]).toEqual([mode, 'jwt_unknown_kid']);
      expect([mode, await reasonOf(verifier, await sign({ sub: mode }, { alg: 'RS256', key: rsa.privateKey, kid: 'rsa-1' }))]).toEqual([mode, 'ok']);
    }
    expect(verifier.stats().jwks).toMatchObject({ fetches: 4, failures: 3, keys: 2 });
  });

  it('refuses as jwks_unavailable while the set has never been fetched, and recovers', async () => {
    jwks.mode = 'error';
    const verifier = keySetVerifier();
    const token = await sign({}, { alg: 'RS256', key: rsa.privateKey, kid: 'rsa-1' });
    expect(await reasonOf(verifier, token)).toBe('jwt_jwks_unavailable');
    jwks.mode = 'ok';
    expect(await reasonOf(verifier, token)).toBe('jwt_jwks_unavailable');
    clock += 31_000;
    expect(await reasonOf(verifier, token)).toBe('ok');
  });

  it('ignores private and symmetric members of the set, and refuses a set without a public key', async () => {
    const { jwk: privateJwk } = await signingKey('RS256', 'leaked');
    jwks.keys = [{ ...privateJwk, d: 'AQAB' }, { kty: 'oct', k: 'c2VjcmV0', kid: 'oct' }];
    const verifier = keySetVerifier();
    expect(await reasonOf(verifier, await sign({}, { alg: 'RS256', key: rsa.privateKey, kid: 'rsa-1' }))).toBe('jwt_jwks_unavailable');
    expect(verifier.stats().jwks).toMatchObject({ failures: 1, keys: 0 });
  });
});

describe('JwtVerifier token cache', () => {
  function cachingVerifier(extra: Record<string, unknown> = {}): JwtVerifier {
    return new JwtVerifier(parseJwtAuthConfig({ algorithms: ['HS256'], secret: SECRET, tokenCacheSeconds: 30, ...extra }), { now, logger: silent });
  }

  it('answers a token seen before without verifying it again (synchronously)', async () => {
    const verifier = cachingVerifier();
    const token = await sign();
    const first = verifier.verify(token);
    expect(first).toBeInstanceOf(Promise);
    const verdict = await first;
    const again = verifier.verify(token) as JwtVerification;
    expect(again).not.toBeInstanceOf(Promise);
    expect(again).toEqual(verdict);
    expect(verifier.stats().cachedTokens).toBe(1);
  });

  it('verifies a token sent on many parallel requests once', async () => {
    const verifier = cachingVerifier();
    const token = await sign();
    const verdicts = await Promise.all(Array.from({ length: 10 }, () => verifier.verify(token)));
    const first = verdicts[0];
    expect(first.ok).toBe(true);
    // One verification made one frozen object; ten would have made ten.
    for (const verdict of verdicts) expect(verdict.ok && first.ok && verdict.token === first.token).toBe(true);
  });

  it('never caches a refusal, nor serves a cached token past exp + skew', async () => {
    const verifier = cachingVerifier({ tokenCacheSeconds: 300 });
    const expiring = await sign({ exp: seconds() + 5 });
    expect((await verifier.verify(expiring)).ok).toBe(true);
    clock += 5_000 + 29_000;
    expect((verifier.verify(expiring) as JwtVerification).ok).toBe(true);
    clock += 2_000;
    expect(await reasonOf(verifier, expiring)).toBe('jwt_expired');
    expect(await reasonOf(verifier, expiring)).toBe('jwt_expired');
  });

  it('forgets a token after tokenCacheSeconds, and is keyed by the whole token', async () => {
    const verifier = cachingVerifier({ tokenCacheSeconds: 10 });
    const token = await sign();
    await verifier.verify(token);
    clock += 11_000;
    expect(verifier.verify(token)).toBeInstanceOf(Promise);
    const [header, , signature] = token.split('.');
    const forged = `${header}.${b64({ tenant: randomUUID(), exp: seconds() + 3600 })}.${signature}`;
    expect(await reasonOf(verifier, forged)).toBe('jwt_bad_signature');
  });

  it('is emptied when the key set changes', async () => {
    const jwks = await JwksServer.start();
    try {
      const rsa = await signingKey('RS256', 'rsa-1');
      const next = await signingKey('RS256', 'rsa-2');
      jwks.keys = [rsa.jwk];
      const verifier = new JwtVerifier(parseJwtAuthConfig({ algorithms: ['RS256'], jwksUrl: jwks.url }), { now, logger: silent });
      verifier.start();
      const token = await sign({}, { alg: 'RS256', key: rsa.privateKey, kid: 'rsa-1' });
      expect((await verifier.verify(token)).ok).toBe(true);
      expect(verifier.stats().cachedTokens).toBe(1);
      // The old key leaves the set with the rotation that brought rsa-2.
      jwks.keys = [next.jwk];
      clock += 31_000;
      expect((await verifier.verify(await sign({}, { alg: 'RS256', key: next.privateKey, kid: 'rsa-2' }))).ok).toBe(true);
      expect(await reasonOf(verifier, token)).toBe('jwt_unknown_kid');
      verifier.stop();
    } finally {
      await jwks.close();
    }
  });
});
