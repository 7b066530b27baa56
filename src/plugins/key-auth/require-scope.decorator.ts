import { SetMetadata, applyDecorators } from '@nestjs/common';
import { ApiForbiddenResponse } from '@nestjs/swagger';
import { ErrorResponseDto } from '../../common/errors/error-response.dto';
import type { ApiKeyScope } from './api-key-scopes';

export const REQUIRED_SCOPES = 'gw:required-scopes';

/** The API key must hold every scope named here; ApiKeyGuard answers 403 `forbidden` otherwise. */
export function RequireScope(...scopes: ApiKeyScope[]): MethodDecorator & ClassDecorator {
  return applyDecorators(
    SetMetadata(REQUIRED_SCOPES, scopes),
    ApiForbiddenResponse({ description: `The key lacks a scope (${scopes.join(', ')}), or the tenant is suspended.`, type: ErrorResponseDto }),
  );
}
