/**
 * Typed refusals raised by the pure imgproxy code. They carry the public error code of the
 * catalogue (docs/architecture.md: 400, or 403 for a policy refusal) and a message that is safe to show to the tenant:
 * it names the rule that was broken, never an internal address or the backend's configuration.
 */
/** The request path is not a well-formed imgproxy URL, or uses a form or option the gateway refuses. */
export class UrlRejectedError extends Error {
  readonly code = 'bad_url' as const;

  constructor(message: string) {
    super(message);
    this.name = 'UrlRejectedError';
  }
}

/** The source image URL is malformed, outside the tenant's sandbox or not an allowed origin. */
export class SourceRejectedError extends Error {
  readonly code = 'bad_source' as const;

  constructor(message: string) {
    super(message);
    this.name = 'SourceRejectedError';
  }
}

/**
 * The URL is well formed but the tenant's image policy does not allow it (presets only, an
 * expired or non-expiring URL, a watermark it may not change): answered 403 `forbidden`.
 */
export class PolicyRefusedError extends Error {
  readonly code = 'forbidden' as const;

  constructor(message: string) {
    super(message);
    this.name = 'PolicyRefusedError';
  }
}

export function isImgproxyRejection(error: unknown): error is UrlRejectedError | SourceRejectedError | PolicyRefusedError {
  return error instanceof UrlRejectedError || error instanceof SourceRejectedError || error instanceof PolicyRefusedError;
}
