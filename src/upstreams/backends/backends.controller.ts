import { Body, Delete, Get, HttpCode, Param, ParseUUIDPipe, Patch, Post, Req } from '@nestjs/common';
import { ApiBadRequestResponse, ApiConflictResponse, ApiCreatedResponse, ApiNoContentResponse, ApiNotFoundResponse, ApiOkResponse, ApiOperation } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { AdminController } from '../../admin/admin-controller.decorator';
import { ErrorResponseDto } from '../../common/errors/error-response.dto';
import { BackendCreateDto, BackendResponseDto, BackendUpdateDto } from './backend.dto';
import { BackendsService } from './backends.service';

const uuid = new ParseUUIDPipe();

@AdminController('backends', 'admin: backends')
@ApiBadRequestResponse({ description: 'Invalid input (details name every problem).', type: ErrorResponseDto })
export class BackendsController {
  constructor(private readonly backends: BackendsService) {}

  @Get()
  @ApiOperation({ summary: 'Every backend, with the live state this instance holds.' })
  @ApiOkResponse({ type: [BackendResponseDto] })
  list(): Promise<BackendResponseDto[]> {
    return this.backends.list();
  }

  @Get(':id')
  @ApiOperation({ summary: 'One backend.' })
  @ApiOkResponse({ type: BackendResponseDto })
  @ApiNotFoundResponse({ type: ErrorResponseDto })
  get(@Param('id', uuid) id: string): Promise<BackendResponseDto> {
    return this.backends.get(id);
  }

  @Post()
  @ApiOperation({ summary: 'Add a backend; every instance sends it traffic within 2 s.' })
  @ApiCreatedResponse({ type: BackendResponseDto })
  @ApiConflictResponse({ description: 'The name is taken.', type: ErrorResponseDto })
  create(@Req() request: FastifyRequest, @Body() dto: BackendCreateDto): Promise<BackendResponseDto> {
    return this.backends.create(request, dto);
  }

  @Patch(':id')
  @ApiOperation({ summary: 'Change url, weight (0 drains), enabled, pool or name.' })
  @ApiOkResponse({ type: BackendResponseDto })
  @ApiNotFoundResponse({ type: ErrorResponseDto })
  @ApiConflictResponse({ description: 'The new name is taken.', type: ErrorResponseDto })
  update(@Req() request: FastifyRequest, @Param('id', uuid) id: string, @Body() dto: BackendUpdateDto): Promise<BackendResponseDto> {
    return this.backends.update(request, id, dto);
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Remove a backend; requests in flight on it finish.' })
  @ApiNoContentResponse()
  @ApiNotFoundResponse({ type: ErrorResponseDto })
  async remove(@Req() request: FastifyRequest, @Param('id', uuid) id: string): Promise<void> {
    await this.backends.remove(request, id);
  }
}
