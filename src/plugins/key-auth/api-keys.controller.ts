import { Body, Delete, Get, HttpCode, Param, Post, Req } from '@nestjs/common';
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
import { AdminController } from '../../admin/admin-controller.decorator';
import { ErrorResponseDto } from '../../common/errors/error-response.dto';
import { UuidParamPipe } from '../../common/http/uuid-param.pipe';
import { ApiKeyAdminService } from './api-key-admin.service';
import { ApiKeyCreateDto, ApiKeyCreatedDto, ApiKeyListDto, ApiKeyResponseDto, ApiKeyRotateDto, ApiKeyRotatedDto, ApiKeySigningRotatedDto } from './api-key.dto';
import { KeyIdParamPipe } from './key-id-param.pipe';

@AdminController('tenants/:id/keys', 'admin: API keys')
export class ApiKeysController {
  constructor(private readonly keys: ApiKeyAdminService) {}

  @Post()
  @HttpCode(201)
  @ApiOperation({ summary: 'Create a key. The key, signing key and salt are in this response only.' })
  @ApiCreatedResponse({ type: ApiKeyCreatedDto })
  @ApiBadRequestResponse({ type: ErrorResponseDto })
  @ApiNotFoundResponse({ description: 'No such tenant.', type: ErrorResponseDto })
  create(@Req() request: FastifyRequest, @Param('id', UuidParamPipe) tenantId: string, @Body() dto: ApiKeyCreateDto): Promise<ApiKeyCreatedDto> {
    return this.keys.create(request, tenantId, dto);
  }

  @Get()
  @ApiOperation({ summary: 'The tenant\'s keys, masked (revoked and expired ones included).' })
  @ApiOkResponse({ type: ApiKeyListDto })
  @ApiNotFoundResponse({ type: ErrorResponseDto })
  async list(@Param('id', UuidParamPipe) tenantId: string): Promise<ApiKeyListDto> {
    return { items: await this.keys.list(tenantId) };
  }

  @Get(':keyId')
  @ApiOperation({ summary: 'One key, masked.' })
  @ApiOkResponse({ type: ApiKeyResponseDto })
  @ApiNotFoundResponse({ type: ErrorResponseDto })
  get(@Param('id', UuidParamPipe) tenantId: string, @Param('keyId', KeyIdParamPipe) keyId: string): Promise<ApiKeyResponseDto> {
    return this.keys.get(tenantId, keyId);
  }

  @Delete(':keyId')
  @HttpCode(204)
  @ApiOperation({ summary: 'Revoke a key: refused on every instance within 2 s. Idempotent.' })
  @ApiNoContentResponse({ description: 'Revoked.' })
  @ApiNotFoundResponse({ type: ErrorResponseDto })
  async revoke(@Req() request: FastifyRequest, @Param('id', UuidParamPipe) tenantId: string, @Param('keyId', KeyIdParamPipe) keyId: string): Promise<void> {
    await this.keys.revoke(request, tenantId, keyId);
  }

  @Post(':keyId/rotate')
  @HttpCode(201)
  @ApiOperation({ summary: 'Create a replacement key; the old one keeps working for the grace period (default 24 h).' })
  @ApiCreatedResponse({ type: ApiKeyRotatedDto })
  @ApiBadRequestResponse({ type: ErrorResponseDto })
  @ApiNotFoundResponse({ type: ErrorResponseDto })
  @ApiConflictResponse({ description: 'The key is revoked.', type: ErrorResponseDto })
  rotate(
    @Req() request: FastifyRequest,
    @Param('id', UuidParamPipe) tenantId: string,
    @Param('keyId', KeyIdParamPipe) keyId: string,
    @Body() dto: ApiKeyRotateDto,
  ): Promise<ApiKeyRotatedDto> {
    return this.keys.rotate(request, tenantId, keyId, dto ?? {});
  }

  @Post(':keyId/rotate-signing')
  @HttpCode(201)
  @ApiOperation({
    summary:
      'A new URL-signing key and salt (shown once). The previous pair keeps verifying signed URLs until ' +
      'DELETE .../signing/previous, so URLs already handed out keep working while clients switch. On every instance within 2 s.',
  })
  @ApiCreatedResponse({ type: ApiKeySigningRotatedDto })
  @ApiNotFoundResponse({ type: ErrorResponseDto })
  @ApiConflictResponse({ description: 'The key is revoked.', type: ErrorResponseDto })
  rotateSigning(
    @Req() request: FastifyRequest,
    @Param('id', UuidParamPipe) tenantId: string,
    @Param('keyId', KeyIdParamPipe) keyId: string,
  ): Promise<ApiKeySigningRotatedDto> {
    return this.keys.rotateSigning(request, tenantId, keyId);
  }

  @Delete(':keyId/signing/previous')
  @HttpCode(204)
  @ApiOperation({ summary: 'End a signing rotation: only the current pair verifies, on every instance within 2 s. Idempotent.' })
  @ApiNoContentResponse({ description: 'The previous pair no longer verifies.' })
  @ApiNotFoundResponse({ type: ErrorResponseDto })
  async dropPreviousSigning(
    @Req() request: FastifyRequest,
    @Param('id', UuidParamPipe) tenantId: string,
    @Param('keyId', KeyIdParamPipe) keyId: string,
  ): Promise<void> {
    await this.keys.dropPreviousSigning(request, tenantId, keyId);
  }
}
