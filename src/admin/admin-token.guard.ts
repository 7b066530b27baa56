import { createHash, timingSafeEqual } from 'node:crypto';
import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { GatewayConfig } from '../config/gateway-config';
import { GatewayException } from '../common/errors/gateway.exception';

/**
 * `Authorization: Bearer <ADMIN_TOKEN>` on every /admin/v1 route. Both sides are hashed
 * before the constant-time compare, so neither the content nor the length of the token leaks
 * through timing.
 */
@Injectable()
export class AdminTokenGuard implements CanActivate {
  private readonly expected: Buffer;

  constructor(config: GatewayConfig) {
    this.expected = digest(config.security.adminToken ?? '');
  }

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const header = request.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match || !timingSafeEqual(digest(match[1].trim()), this.expected)) {
      throw new GatewayException('unauthorized', 'A valid admin token is required.', {}, { 'www-authenticate': 'Bearer realm="admin"' });
    }
    return true;
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
