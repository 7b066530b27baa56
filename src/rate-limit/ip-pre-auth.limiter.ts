import { Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { PreAuthLimiter } from '../pipeline/pre-auth-limiter';
import { AdmissionService } from './admission.service';

/**
 * The IP bucket of the pre-authentication path (docs/rate-limits-and-quotas.md), charged before a
 * key is looked up in PostgreSQL and on every 401: a flood of random keys, wrong secrets or bad
 * signatures from one address is cut after `rateLimit.ip` requests. Authenticated requests never
 * reach it (a cached key pays nothing). Marks the request so it is charged once. On the 429 the
 * headers go on the exception, since the request never reaches a handler.
 */
@Injectable()
export class IpPreAuthLimiter implements PreAuthLimiter {
  constructor(private readonly admission: AdmissionService) {}

  async beforeKeyLookup(request: FastifyRequest): Promise<void> {
    if (request.gw.ipLimited) return;
    request.gw.ipLimited = true;
    const result = await this.admission.chargePreAuth(request.gw.clientIp);
    if (result.refusal) throw result.refusal;
  }
}
