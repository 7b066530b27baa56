import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { AdminAuthService } from './admin-auth.service';

/**
 * `Authorization: Bearer <ADMIN_TOKEN>` on every /admin/v1 route. The request hook of
 * AdminAuthService has already refused a wrong token before the body was read; the guard makes
 * the same decision, so a route stays protected wherever it is mounted.
 */
@Injectable()
export class AdminTokenGuard implements CanActivate {
  constructor(private readonly auth: AdminAuthService) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    await this.auth.authenticate(context.switchToHttp().getRequest<FastifyRequest>());
    return true;
  }
}
