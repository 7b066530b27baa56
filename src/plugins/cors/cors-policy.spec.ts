import { CorsPolicy } from './cors-policy';

describe('CorsPolicy', () => {
  const policy = new CorsPolicy({ origins: ['https://app.example.com'], methods: ['GET', 'POST'], headers: ['Content-Type'], maxAgeSeconds: 600 }, ['GET', 'HEAD', 'POST']);

  it('answers an allowed preflight with the configured methods, headers and max age', () => {
    const headers = policy.preflight({ origin: 'https://app.example.com', method: 'POST', headers: 'content-type' });
    expect(pairs(headers)).toMatchObject({
      'access-control-allow-origin': 'https://app.example.com',
      'access-control-allow-methods': 'GET, POST',
      'access-control-allow-headers': 'Content-Type',
      'access-control-max-age': '600',
    });
  });

  it('gives a disallowed origin or method no allow header at all', () => {
    expect(pairs(policy.preflight({ origin: 'https://evil.example.com', method: 'GET', headers: undefined }))).not.toHaveProperty('access-control-allow-origin');
    expect(pairs(policy.preflight({ origin: 'https://app.example.com', method: 'DELETE', headers: undefined }))).not.toHaveProperty('access-control-allow-origin');
    expect(policy.actual('https://app.example.com.evil.com')).toBeUndefined();
  });

  it('compares origins whole and without case', () => {
    expect(policy.allows('HTTPS://APP.EXAMPLE.COM')).toBe(true);
    expect(policy.allows('https://app.example.com:8443')).toBe(false);
  });

  it('sends * only without credentials, else echoes the allowed origin', () => {
    expect(pairs(new CorsPolicy({ origins: ['*'] }, ['GET']).actual('https://a.test')!)['access-control-allow-origin']).toBe('*');
    const credentialed = new CorsPolicy({ origins: ['*'], credentials: true }, ['GET']);
    expect(pairs(credentialed.actual('https://a.test')!)).toEqual({ 'access-control-allow-origin': 'https://a.test', 'access-control-allow-credentials': 'true' });
  });

  it('allows the requested headers when none are configured', () => {
    const open = new CorsPolicy({ origins: ['https://a.test'] }, ['GET', 'HEAD']);
    expect(pairs(open.preflight({ origin: 'https://a.test', method: 'GET', headers: 'x-api-key' }))['access-control-allow-headers']).toBe('x-api-key');
  });
});

function pairs(flat: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) out[flat[i]] = flat[i + 1];
  return out;
}
