import { decode, encode } from './auth-invalidation.service';

describe('auth invalidation messages', () => {
  it('round-trip every kind', () => {
    for (const event of [
      { kind: 'tenant', id: '0b7e6a4c-2f1d-4c3b-9a8e-7d6c5b4a3f2e' },
      { kind: 'key', id: 'Xq3fK9aB2cD4' },
      { kind: 'plan', id: '5b0e6c1e-3f55-4a53-9d0a-2f4b6f7c8e91' },
      { kind: 'all' },
    ] as const) {
      expect(decode(encode(event))).toEqual(event);
    }
  });

  it('ignore what they do not understand', () => {
    for (const message of ['', 'tenant', 'tenant:', ':x', 'backend:1', 'everything']) expect(decode(message)).toBeUndefined();
  });
});
