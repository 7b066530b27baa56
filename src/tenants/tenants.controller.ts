import { Body, Delete, Get, HttpCode, Param, Patch, Post, Query, Req } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
} from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { AdminController } from '../admin/admin-controller.decorator';
import { ErrorResponseDto } from '../common/errors/error-response.dto';
import { TenantCreateDto, TenantListQueryDto, TenantPageDto, TenantResponseDto, TenantUpdateDto } from './tenant.dto';
import { TenantsService } from './tenants.service';
import { UuidParamPipe } from '../common/http/uuid-param.pipe';

@AdminController('tenants', 'admin: tenants')
export class TenantsController {
  constructor(private readonly tenants: TenantsService) {}

  @Post()
  @HttpCode(201)
  @ApiOperation({ summary: 'Create a tenant (on the default plan unless one is named).' })
  @ApiCreatedResponse({ type: TenantResponseDto })
  @ApiBadRequestResponse({ description: 'Invalid fields or unknown plan.', type: ErrorResponseDto })
  @ApiConflictResponse({ description: 'A tenant with this email exists.', type: ErrorResponseDto })
  create(@Req() request: FastifyRequest, @Body() dto: TenantCreateDto): Promise<TenantResponseDto> {
    return this.tenants.create(request, dto);
  }

  @Get()
  @ApiOperation({ summary: 'Tenants, oldest first, with search and filters.' })
  @ApiOkResponse({ type: TenantPageDto })
  @ApiBadRequestResponse({ type: ErrorResponseDto })
  list(@Query() query: TenantListQueryDto): Promise<TenantPageDto> {
    return this.tenants.list(query);
  }

  @Get(':id')
  @ApiOperation({ summary: 'One tenant, with its effective limits.' })
  @ApiOkResponse({ type: TenantResponseDto })
  @ApiNotFoundResponse({ type: ErrorResponseDto })
  get(@Param('id', UuidParamPipe) id: string): Promise<TenantResponseDto> {
    return this.tenants.get(id);
  }

  @Patch(':id')
  @ApiOperation({ summary: 'Change a tenant: status, plan, sources, overrides (null clears an override).' })
  @ApiOkResponse({ type: TenantResponseDto })
  @ApiBadRequestResponse({ type: ErrorResponseDto })
  @ApiNotFoundResponse({ type: ErrorResponseDto })
  @ApiConflictResponse({ description: 'Another tenant has this email.', type: ErrorResponseDto })
  update(@Req() request: FastifyRequest, @Param('id', UuidParamPipe) id: string, @Body() dto: TenantUpdateDto): Promise<TenantResponseDto> {
    return this.tenants.update(request, id, dto);
  }

  @Post(':id/suspend')
  @HttpCode(200)
  @ApiOperation({ summary: 'Suspend: every key of the tenant answers 403 on every instance within 2 s.' })
  @ApiOkResponse({ type: TenantResponseDto })
  @ApiNotFoundResponse({ type: ErrorResponseDto })
  suspend(@Req() request: FastifyRequest, @Param('id', UuidParamPipe) id: string): Promise<TenantResponseDto> {
    return this.tenants.setStatus(request, id, 'suspended');
  }

  @Post(':id/reactivate')
  @HttpCode(200)
  @ApiOperation({ summary: 'Reactivate a suspended tenant.' })
  @ApiOkResponse({ type: TenantResponseDto })
  @ApiNotFoundResponse({ type: ErrorResponseDto })
  reactivate(@Req() request: FastifyRequest, @Param('id', UuidParamPipe) id: string): Promise<TenantResponseDto> {
    return this.tenants.setStatus(request, id, 'active');
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a tenant with its keys, allowlist, usage, image records and request logs.' })
  @ApiNoContentResponse({ description: 'Deleted.' })
  @ApiNotFoundResponse({ type: ErrorResponseDto })
  async delete(@Req() request: FastifyRequest, @Param('id', UuidParamPipe) id: string): Promise<void> {
    await this.tenants.delete(request, id);
  }
}
