import { DEFAULT_JWT_SCOPES, scopesFromClaims } from './jwt-scopes';

describe('scopesFromClaims', () => {
  it('grants images:read to a token that names no scope at all', () => {
    expect(scopesFromClaims({ sub: 'x' })).toBe(DEFAULT_JWT_SCOPES);
    expect(DEFAULT_JWT_SCOPES).toEqual(['images:read']);
  });

  it('reads scope (space-separated) and scp (string or array), keeping the gateway scopes only', () => {
    expect(scopesFromClaims({ scope: 'openid usage:read  images:read' })).toEqual(['images:read', 'usage:read']);
    expect(scopesFromClaims({ scp: ['images:write', 'users.read', 7] })).toEqual(['images:write']);
    expect(scopesFromClaims({ scp: 'images:read', scope: 'usage:read images:read' })).toEqual(['images:read', 'usage:read']);
  });

  it('grants nothing when the token lists scopes, none of them the gateway', () => {
    expect(scopesFromClaims({ scope: 'openid profile' })).toEqual([]);
    expect(scopesFromClaims({ scp: [] })).toEqual([]);
  });

  it('returns frozen, sorted lists so equal grants share one key', () => {
    const scopes = scopesFromClaims({ scope: 'usage:read images:read' });
    expect(Object.isFrozen(scopes)).toBe(true);
    expect(scopes.join(' ')).toBe(scopesFromClaims({ scope: 'images:read usage:read' }).join(' '));
  });
});
