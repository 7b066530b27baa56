import { plainToInstance, Type } from 'class-transformer';
import { IsOptional, ValidateNested, validateSync } from 'class-validator';
import { JwtAuthConfig, parseJwtAuthConfig } from './jwt-auth.config';

const SECRET = 'an-hs256-secret-of-at-least-32-bytes!';
const JWKS = 'https://idp.example/.well-known/jwks.json';

function problems(plain: Record<string, unknown>): string {
  try {
    parseJwtAuthConfig(plain);
    return '';
  } catch (error) {
    return (error as Error).message;
  }
}

describe('JwtAuthConfig', () => {
  it('fills the defaults', () => {
    expect(parseJwtAuthConfig({ algorithms: ['HS256'], secret: SECRET })).toMatchObject({
      tenantClaim: 'tenant',
      clockSkewSeconds: 30,
      jwksCacheSeconds: 300,
      jwksRefreshMinIntervalSeconds: 30,
      tokenCacheSeconds: 30,
    });
    expect(problems({ algorithms: ['HS256', 'RS256', 'ES256'], secret: SECRET, jwksUrl: JWKS, issuer: 'i', audience: 'a' })).toBe('');
  });

  it('needs the key material of every listed algorithm', () => {
    expect(problems({ algorithms: ['HS256'] })).toContain('algorithms: HS256 needs secret');
    expect(problems({ algorithms: ['RS256', 'ES256'] })).toContain('algorithms: RS256, ES256 needs jwksUrl');
    expect(problems({ algorithms: ['RS256'], jwksUrl: JWKS, secret: SECRET })).toContain('secret is set but no HS256 algorithm is listed');
    expect(problems({ algorithms: ['HS256'], secret: SECRET, jwksUrl: JWKS })).toContain('jwksUrl is set but no RS256 or ES256');
  });

  it('refuses none, unknown algorithms, an empty list, short secrets and bad URLs', () => {
    expect(problems({ algorithms: [] })).toContain('algorithms must contain at least 1 elements');
    expect(problems({ algorithms: ['none'], secret: SECRET })).toContain('each value in algorithms must be one of the following values');
    expect(problems({ algorithms: ['HS512'], secret: SECRET })).toContain('algorithms');
    expect(problems({ algorithms: ['HS256'], secret: 'short' })).toContain('secret must be longer than or equal to 32 characters');
    expect(problems({ algorithms: ['RS256'], jwksUrl: 'ftp://idp' })).toContain('jwksUrl: must be an http(s) URL');
    expect(problems({ algorithms: ['HS256'], secret: SECRET, clockSkewSeconds: -1 })).toContain('clockSkewSeconds');
    expect(problems({ algorithms: ['HS256'], secret: SECRET, unknownKey: 1 })).toContain('property unknownKey should not exist');
  });

  it('is validated where the gateway nests it (auth.jwt)', () => {
    class AuthSection {
      @IsOptional() @ValidateNested() @Type(() => JwtAuthConfig) jwt?: JwtAuthConfig;
    }
    const section = plainToInstance(AuthSection, { jwt: { algorithms: ['RS256'] } }, { exposeDefaultValues: true });
    const [error] = validateSync(section);
    expect(error.children?.[0].constraints).toEqual({ jwtKeyMaterial: 'RS256 needs jwksUrl' });
  });
});
