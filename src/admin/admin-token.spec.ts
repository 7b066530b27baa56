import { AdminTokenVerifier } from './admin-token';

describe('AdminTokenVerifier', () => {
  const verifier = new AdminTokenVerifier('admin-token-0123456789');

  it('accepts the bearer token, whatever the scheme’s case and surrounding spaces', () => {
    expect(verifier.matches('Bearer admin-token-0123456789')).toBe(true);
    expect(verifier.matches('bearer   admin-token-0123456789  ')).toBe(true);
  });

  it('refuses anything else', () => {
    for (const header of [undefined, '', 'Bearer', 'Bearer admin-token-012345678', 'Basic admin-token-0123456789', 'admin-token-0123456789']) {
      expect(verifier.matches(header)).toBe(false);
    }
  });

  it('matches nothing when no token is configured, an empty bearer value included', () => {
    expect(new AdminTokenVerifier(undefined).matches('Bearer  ')).toBe(false);
    expect(new AdminTokenVerifier('').matches('Bearer x')).toBe(false);
  });
});
