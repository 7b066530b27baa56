import { Injectable } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import type { FastifyRequest } from 'fastify';
import { AdminAuthService } from '../../admin/admin-auth.service';
import { BackendRegistry } from './backend-registry.service';

export interface BackendHealthEntry {
  name: string;
  pool: string;
  healthy: boolean;
  /** Whether the balancer may choose it right now (enabled, weighted, healthy, circuit allowing). */
  available: boolean;
  circuit: string;
  /** Its circuit is open, but the pool's panic threshold keeps sending to it. */
  circuitIgnored: boolean;
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
 * itself (a port-forward reaches it whatever its readiness). Open circuits make it `degraded`,
 * not unready: the instance still serves (the panic threshold keeps at least half of each pool's
 * weight in use), and every instance would see the same circuits.
 */
@Injectable()
export class BackendsHealthIndicator {
  constructor(
    private readonly registry: BackendRegistry,
    private readonly health: HealthIndicatorService,
    private readonly adminAuth: AdminAuthService,
  ) {}

  isReady(key = 'backends'): HealthIndicatorResult {
    const indicator = this.health.check(key);
    const { serving, unavailable } = this.registry.readiness();
    if (serving === 0) return indicator.down({ pools: 0, noBackendConfigured: true, hint: 'set BACKENDS or POST /admin/v1/backends' });
    if (unavailable.length > 0) return indicator.down({ pools: serving, noHealthyBackend: unavailable });
    const tripped = this.registry.snapshot().filter((b) => b.enabled && b.circuit !== 'closed');
    if (tripped.length === 0) return indicator.up({ pools: serving });
    return indicator.up({
      pools: serving,
      degraded: true,
      openCircuits: tripped.map((b) => b.name),
      ignoredCircuits: tripped.filter((b) => b.circuitIgnored).map((b) => b.name),
    });
  }

  /**
   * `/health/backends`: URLs and error texts only for a caller presenting the admin token. A
   * wrong token is charged like any failed admin login, so this page is no oracle for guessing it.
   */
  async report(request: FastifyRequest): Promise<{ backends: BackendHealthEntry[] }> {
    const admin = await this.adminAuth.presentsToken(request);
    return {
      backends: this.registry.snapshot().map((b) => {
        const entry: BackendHealthEntry = {
          name: b.name,
          pool: b.pool,
          healthy: b.healthy,
          available: b.available,
          circuit: b.circuit,
          circuitIgnored: b.circuitIgnored,
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
}
