import { Body, Get, HttpCode, Param, Patch, Post, Req } from '@nestjs/common';
import { ApiBadRequestResponse, ApiConflictResponse, ApiCreatedResponse, ApiNotFoundResponse, ApiOkResponse, ApiOperation } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { AdminController } from '../admin/admin-controller.decorator';
import { ErrorResponseDto } from '../common/errors/error-response.dto';
import { UuidParamPipe } from '../common/http/uuid-param.pipe';
import { PlanCreateDto, PlanListDto, PlanResponseDto, PlanUpdateDto } from './plan.dto';
import { PlansService } from './plans.service';

@AdminController('plans', 'admin: plans')
export class PlansController {
  constructor(private readonly plans: PlansService) {}

  @Get()
  @ApiOperation({ summary: 'Every plan, by name.' })
  @ApiOkResponse({ type: PlanListDto })
  async list(): Promise<PlanListDto> {
    return { items: await this.plans.list() };
  }

  @Get(':id')
  @ApiOperation({ summary: 'One plan.' })
  @ApiOkResponse({ type: PlanResponseDto })
  @ApiNotFoundResponse({ type: ErrorResponseDto })
  get(@Param('id', UuidParamPipe) id: string): Promise<PlanResponseDto> {
    return this.plans.get(id);
  }

  @Post()
  @HttpCode(201)
  @ApiOperation({ summary: 'Create a plan.' })
  @ApiCreatedResponse({ type: PlanResponseDto })
  @ApiBadRequestResponse({ type: ErrorResponseDto })
  @ApiConflictResponse({ description: 'A plan with this name exists.', type: ErrorResponseDto })
  create(@Req() request: FastifyRequest, @Body() dto: PlanCreateDto): Promise<PlanResponseDto> {
    return this.plans.create(request, dto);
  }

  @Patch(':id')
  @ApiOperation({ summary: 'Change a plan\'s limits; every tenant on it gets them within 2 s.' })
  @ApiOkResponse({ type: PlanResponseDto })
  @ApiBadRequestResponse({ type: ErrorResponseDto })
  @ApiNotFoundResponse({ type: ErrorResponseDto })
  update(@Req() request: FastifyRequest, @Param('id', UuidParamPipe) id: string, @Body() dto: PlanUpdateDto): Promise<PlanResponseDto> {
    return this.plans.update(request, id, dto);
  }
}
