import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * The comparison of a presented `Authorization: Bearer <token>` with the admin token. Both sides
 * are hashed before the constant-time compare, so neither the content nor the length of the
 * token leaks through timing. Pure; shared by the admin request hook, the guard and the health
 * report.
 */
export class AdminTokenVerifier {
  private readonly expected: Buffer | undefined;

  constructor(token: string | undefined) {
    this.expected = token ? digest(token) : undefined;
  }

  /** True only for `Bearer <the admin token>`; without a configured token, for nothing. */
  matches(authorization: string | undefined): boolean {
    const match = /^Bearer\s+(.+)$/i.exec(authorization ?? '');
    return match !== null && this.expected !== undefined && timingSafeEqual(digest(match[1].trim()), this.expected);
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
