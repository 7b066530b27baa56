import { Get, HttpCode, Post, Req } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { AdminController } from './admin-controller.decorator';
import { AuditService } from '../audit/audit.service';
import { GatewayException } from '../common/errors/gateway.exception';
import { GatewayService } from '../gateway/gateway.service';
import type { CompiledRoute } from '../gateway/route-table';

export class RouteResponseDto {
  @ApiProperty({ example: 'users-api' }) name: string;
  @ApiProperty({ example: '/api/users/*' }) path: string;
  @ApiProperty({ example: ['GET', 'HEAD', 'POST'] }) methods: string[];
  @ApiProperty({ example: 'users' }) upstream: string;
  @ApiProperty({ enum: ['api-key', 'jwt', 'none', 'signed-url'] }) auth: string;
  @ApiProperty({ description: 'Steps in the order the chain runs them, the proxy last.', example: ['cors', 'jwt-auth', 'rate-limiting', 'quota', 'proxy'] })
  steps: string[];
  @ApiPropertyOptional({ example: '/api' }) stripPrefix?: string;
  @ApiProperty() websocket: boolean;
  @ApiPropertyOptional({ description: 'The route’s own limits: a capacity bucket for all callers and/or one per caller.' })
  rateLimit?: Record<string, unknown>;
  @ApiProperty({ description: 'Largest request body; 0: the route takes none.', example: 1048576 }) maxBodyBytes: number;
  @ApiPropertyOptional({ description: 'Upstream timeout; absent: the proxy defaults.', example: 5 }) timeoutSeconds?: number;
  @ApiProperty({ description: 'Failover attempts for idempotent requests without a body.', example: 2 }) retries: number;
  @ApiPropertyOptional({ description: 'The route’s CORS policy, as configured.' }) cors?: Record<string, unknown>;
  @ApiPropertyOptional({ description: 'Header rules (request and response set/remove), as configured.' }) headers?: Record<string, unknown>;
  @ApiPropertyOptional({ description: 'Response cache of a configured route.', example: { ttlSeconds: 60 } }) cache?: { ttlSeconds: number };
}

export class RouteTableResponseDto {
  @ApiProperty({ description: 'Increases with every table built (start, reload).', example: 3 }) version: number;
  @ApiProperty({ format: 'date-time' }) loadedAt: string;
  @ApiProperty({ type: [RouteResponseDto] }) routes: RouteResponseDto[];
}

/** The live route table, and a reload on demand (the same as SIGHUP). */
@AdminController('routes', 'admin: routes')
export class RoutesAdminController {
  constructor(
    private readonly gateway: GatewayService,
    private readonly audit: AuditService,
  ) {}

  @Get()
  @ApiOperation({ summary: 'The live route table: the image routes and every configured route, with their compiled steps.' })
  @ApiOkResponse({ type: RouteTableResponseDto })
  list(): RouteTableResponseDto {
    const table = this.gateway.current();
    return { version: table.version, loadedAt: table.loadedAt.toISOString(), routes: table.routes.map(describe) };
  }

  @Post('reload')
  @HttpCode(200)
  @ApiOperation({ summary: 'Reads the configuration files again; an invalid file is refused (400) and the live table stays.' })
  @ApiOkResponse({ type: RouteTableResponseDto })
  async reload(@Req() request: FastifyRequest): Promise<RouteTableResponseDto> {
    const before = this.gateway.current().version;
    const outcome = await this.gateway.reload('admin API');
    if (!outcome.ok) throw new GatewayException('validation_failed', 'The configuration was refused; the live routes stay.', { details: outcome.problems });
    await this.audit.record(request, { action: 'routes.reload', targetType: 'routes', targetId: String(outcome.version), before: { version: before }, after: { version: outcome.version } });
    return this.list();
  }
}

function describe(route: CompiledRoute): RouteResponseDto {
  const { spec } = route;
  const limits = spec.limits;
  const dto: RouteResponseDto = {
    name: spec.name,
    path: spec.path,
    methods: [...route.methods],
    upstream: spec.upstream,
    auth: spec.auth,
    steps: [...route.steps],
    websocket: spec.websocket,
    maxBodyBytes: spec.maxBodyBytes,
    retries: spec.retries,
  };
  if (spec.stripPrefix) dto.stripPrefix = spec.stripPrefix;
  if (limits.capacity || limits.perCaller) dto.rateLimit = { bucket: limits.bucket, capacity: limits.capacity, perCaller: limits.perCaller, policy: limits.policy };
  if (spec.timeoutMs !== undefined) dto.timeoutSeconds = spec.timeoutMs / 1000;
  // What the operator wrote, so the table reads back like the file.
  if (spec.cors) dto.cors = { ...spec.cors };
  if (spec.headers) dto.headers = { ...spec.headers };
  if (spec.cacheTtlSeconds !== undefined) dto.cache = { ttlSeconds: spec.cacheTtlSeconds };
  return dto;
}
