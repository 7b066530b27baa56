import { Controller, UseGuards, applyDecorators } from '@nestjs/common';
import { ApiBearerAuth, ApiTags, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { SkipThrottle } from '@nestjs/throttler';
import { ErrorResponseDto } from '../common/errors/error-response.dto';
import { AdminTokenGuard } from './admin-token.guard';

/** An admin API controller under /admin/v1: bearer-token guarded and documented as such. */
export function AdminController(path: string, tag: string): ClassDecorator {
  return applyDecorators(
    Controller(`admin/v1/${path}`.replace(/\/$/, '')),
    UseGuards(AdminTokenGuard),
    ApiTags(tag),
    ApiBearerAuth('admin'),
    ApiUnauthorizedResponse({ description: 'Missing or wrong admin token.', type: ErrorResponseDto }),
    SkipThrottle(),
  );
}
