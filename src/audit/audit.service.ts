import { createHash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { EntityManager } from 'typeorm';
import { AuditEntry, AuditLogRepository, AuditQuery } from './audit-log.repository';

/** Fields of a before/after snapshot that must never reach the audit table. */
const SECRET_FIELDS = new Set(['key', 'secret', 'secretHash', 'signingKey', 'signingSalt', 'signingKeyEnc', 'signingSaltEnc', 'token']);

@Injectable()
export class AuditService {
  constructor(private readonly repository: AuditLogRepository) {}

  /**
   * Records an admin write. The actor is the admin token's fingerprint (never the token), so
   * an operator can tell which token made a change after rotating tokens.
   */
  async record(
    request: FastifyRequest,
    entry: Omit<AuditEntry, 'actor' | 'requestId' | 'clientIp'>,
    manager?: EntityManager,
  ): Promise<void> {
    await this.repository.append(
      {
        ...entry,
        before: scrub(entry.before),
        after: scrub(entry.after),
        actor: actorOf(request),
        requestId: request.id,
        clientIp: request.gw?.clientIp ?? null,
      },
      manager,
    );
  }

  find(query: AuditQuery) {
    return this.repository.find(query);
  }
}

function actorOf(request: FastifyRequest): string {
  const token = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '')?.[1] ?? '';
  return `admin:${createHash('sha256').update(token.trim()).digest('hex').slice(0, 12)}`;
}

function scrub(value: unknown): unknown {
  if (value === null || value === undefined || typeof value !== 'object') return value ?? null;
  if (Array.isArray(value)) return value.map(scrub);
  if (value instanceof Date) return value.toISOString();
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) {
    if (SECRET_FIELDS.has(key)) continue;
    out[key] = field instanceof Buffer ? undefined : scrub(field);
  }
  return out;
}
