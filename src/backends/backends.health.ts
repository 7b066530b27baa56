import { createHash, timingSafeEqual } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import type { FastifyRequest } from 'fastify';
import { GatewayConfig } from '../config/gateway-config';
import { BackendRegistry } from './backend-registry.service';

export interface BackendHealthEntry {
  name: string;
  pool: string;
  healthy: boolean;
  /** Whether the balancer may choose it right now (enabled, weighted, healthy, circuit allowing). */
  available: boolean;
  circuit: string;
  enabled: boolean;
  weight: number;
  lastCheck: string | null;
  lastCheckOk: boolean | null;
  /** Admins only: internal addresses and error texts stay inside. */
  url?: string;
  lastError?: string | null;
}

/**
 * Backends in Terminus (docs/proxy-and-backends.md). Readiness needs every pool that is meant to serve to have a
 * backend that passes its active checks. With no backend configured at all the instance is not
 * ready either: every image request would answer 503, and a load balancer must not send it any.
 * The first backend comes from BACKENDS (or YAML), or through the admin API on the instance
 * itself (a port-forward reaches it whatever its readiness).
 */
@Injectable()
export class BackendsHealthIndicator {
  private readonly adminDigest: Buffer;

  constructor(
    private readonly registry: BackendRegistry,
    private readonly health: HealthIndicatorService,
    config: GatewayConfig,
  ) {
    this.adminDigest = digest(config.security.adminToken ?? '');
  }

  isReady(key = 'backends'): HealthIndicatorResult {
    const indicator = this.health.check(key);
    const { serving, unavailable } = this.registry.readiness();
    if (serving === 0) return indicator.down({ pools: 0, noBackendConfigured: true, hint: 'set BACKENDS or POST /admin/v1/backends' });
    if (unavailable.length > 0) return indicator.down({ pools: serving, noHealthyBackend: unavailable });
    return indicator.up({ pools: serving });
  }

  /** `/health/backends`: URLs and error texts only for a caller presenting the admin token. */
  report(request: FastifyRequest): { backends: BackendHealthEntry[] } {
    const admin = this.presentsAdminToken(request);
    return {
      backends: this.registry.snapshot().map((b) => {
        const entry: BackendHealthEntry = {
          name: b.name,
          pool: b.pool,
          healthy: b.healthy,
          available: b.available,
          circuit: b.circuit,
          enabled: b.enabled,
          weight: b.weight,
          lastCheck: b.lastCheckAt !== undefined ? new Date(b.lastCheckAt).toISOString() : null,
          lastCheckOk: b.lastCheckOk ?? null,
        };
        if (admin) {
          entry.url = b.url;
          entry.lastError = b.lastError ?? null;
        }
        return entry;
      }),
    };
  }

  /** Same comparison as AdminTokenGuard (hashed, constant time), without refusing the request. */
  private presentsAdminToken(request: FastifyRequest): boolean {
    const match = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '');
    return match !== null && timingSafeEqual(digest(match[1].trim()), this.adminDigest);
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
