import { ErrorCode } from './error-catalogue';

export interface ErrorBody {
  error: { code: ErrorCode; message: string; requestId: string } & Record<string, unknown>;
}

export function errorBody(code: ErrorCode, message: string, requestId: string, extras: Record<string, unknown> = {}): ErrorBody {
  return { error: { code, message, requestId, ...extras } };
}
