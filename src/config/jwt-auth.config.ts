import { plainToInstance } from 'class-transformer';
import {
  ArrayMinSize,
  ArrayUnique,
  IsArray,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  MinLength,
  ValidationError,
  registerDecorator,
  validateSync,
} from 'class-validator';

/** The signature algorithms a route may accept; `none` and every other one are refused. */
export const JWT_ALGORITHMS = ['HS256', 'RS256', 'ES256'] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

/** Algorithms verified with the shared `secret`; the others with a public key from `jwksUrl`. */
export function isHmacAlgorithm(alg: string): boolean {
  return alg === 'HS256';
}

/**
 * Bearer-token authentication (`auth.jwt`, docs/routes.md "JWT"). Validated once, with the rest
 * of the configuration; the verifier trusts it.
 */
export class JwtAuthConfig {
  @IsArray()
  @ArrayMinSize(1)
  @ArrayUnique()
  @IsIn(JWT_ALGORITHMS, { each: true })
  @HasKeyMaterial()
  algorithms: JwtAlgorithm[];

  /** HS256 key, as UTF-8 bytes. RFC 7518 asks for at least the hash size: 32 bytes. */
  @IsOptional() @IsString() @MinLength(32) @MaxLength(1024) secret?: string;

  /** Where the public keys of RS256/ES256 come from. */
  @IsOptional() @IsString() @Matches(/^https?:\/\/[^\s]+$/, { message: 'must be an http(s) URL' }) jwksUrl?: string;

  /** Required `iss` when set. */
  @IsOptional() @IsString() @MinLength(1) @MaxLength(1024) issuer?: string;

  /** Required in `aud` (a string or one member of an array) when set. */
  @IsOptional() @IsString() @MinLength(1) @MaxLength(1024) audience?: string;

  /** The claim holding the tenant id (a uuid); namespaced names such as `https://example.com/tenant` are fine. */
  @IsString() @MinLength(1) @MaxLength(256) tenantClaim = 'tenant';

  /** Leeway on `exp` and `nbf` for clocks that drift apart. */
  @IsInt() @Min(0) @Max(300) clockSkewSeconds = 30;

  /** The key set is fetched again this often, whether or not a token asked for an unknown key. */
  @IsInt() @Min(10) @Max(86_400) jwksCacheSeconds = 300;

  /** At most one fetch of the key set per this many seconds, however many tokens name an unknown `kid`. */
  @IsInt() @Min(1) @Max(3600) jwksRefreshMinIntervalSeconds = 30;

  /** One fetch of the key set, headers and body, must finish within this. */
  @IsInt() @Min(100) @Max(30_000) jwksTimeoutMs = 2_000;

  /** A larger key set is refused (and the last good one kept). */
  @IsInt() @Min(1024) @Max(1_048_576) jwksMaxBytes = 65_536;

  /** A verified token is remembered this long (never past its `exp`); 0 verifies every request. */
  @IsInt() @Min(0) @Max(300) tokenCacheSeconds = 30;

  @IsInt() @Min(1) @Max(1_000_000) tokenCacheMaxEntries = 10_000;
}

/** The cross-field rules, one message per problem; empty when the key material fits the algorithms. */
export function keyMaterialProblems(config: Pick<JwtAuthConfig, 'algorithms' | 'secret' | 'jwksUrl'>): string[] {
  const algorithms = Array.isArray(config.algorithms) ? config.algorithms : [];
  const hmac = algorithms.filter((alg) => isHmacAlgorithm(alg));
  const publicKey = algorithms.filter((alg) => !isHmacAlgorithm(alg));
  const problems: string[] = [];
  if (hmac.length && !config.secret) problems.push(`${hmac.join(', ')} needs secret`);
  if (publicKey.length && !config.jwksUrl) problems.push(`${publicKey.join(', ')} needs jwksUrl`);
  // Key material no algorithm uses is a configuration mistake (the operator meant to enable it).
  if (config.secret && !hmac.length) problems.push('secret is set but no HS256 algorithm is listed');
  if (config.jwksUrl && !publicKey.length) problems.push('jwksUrl is set but no RS256 or ES256 algorithm is listed');
  return problems;
}

function HasKeyMaterial(): PropertyDecorator {
  return (target, propertyName) =>
    registerDecorator({
      name: 'jwtKeyMaterial',
      target: target.constructor,
      propertyName: propertyName as string,
      options: { message: (args) => keyMaterialProblems(args.object as JwtAuthConfig).join('; ') },
      validator: { validate: (_value: unknown, args) => keyMaterialProblems(args?.object as JwtAuthConfig).length === 0 },
    });
}

/**
 * Builds a validated JwtAuthConfig from plain input (YAML), or throws with one line per problem
 * (`jwksUrl: must be an http(s) URL`). The gateway's loader validates the nested `auth.jwt` the
 * same way, through the decorators.
 */
export function parseJwtAuthConfig(plain: Record<string, unknown>): JwtAuthConfig {
  const config = plainToInstance(JwtAuthConfig, plain, { exposeDefaultValues: true });
  const errors = validateSync(config, { whitelist: true, forbidNonWhitelisted: true });
  if (errors.length) throw new Error(`invalid auth.jwt:\n  - ${flatten(errors).join('\n  - ')}`);
  return config;
}

function flatten(errors: ValidationError[], prefix = ''): string[] {
  return errors.flatMap((error) => {
    const path = prefix + error.property;
    const own = Object.values(error.constraints ?? {}).map((message) => `${path}: ${message}`);
    return [...own, ...flatten(error.children ?? [], `${path}.`)];
  });
}
