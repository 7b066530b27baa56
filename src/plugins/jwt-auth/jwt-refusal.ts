/**
 * Why a bearer token was refused: the `reason` label of gateway_auth_failures_total. The client
 * never learns it: every one of them answers the same 401, except a suspended tenant (403), which
 * is only said to a caller whose token proved who it is.
 */
export type JwtRefusalReason =
  /** No `Authorization: Bearer` header. */
  | 'jwt_missing'
  /** Not three base64url segments, bad JSON, a missing or mistyped `exp`, or too long. */
  | 'jwt_malformed'
  /** `alg` is not one of the configured algorithms (`none` included). */
  | 'jwt_bad_algorithm'
  | 'jwt_bad_signature'
  | 'jwt_expired'
  | 'jwt_not_yet_valid'
  | 'jwt_bad_issuer'
  | 'jwt_bad_audience'
  /** The tenant claim is absent or not a uuid. */
  | 'jwt_no_tenant'
  /** No key of the key set matches the token's `kid` and algorithm, even after a refetch. */
  | 'jwt_unknown_kid'
  /** The key set has never been fetched successfully (and the last attempt is too recent to retry). */
  | 'jwt_jwks_unavailable'
  /** A valid token naming a tenant that does not exist. */
  | 'jwt_unknown_tenant'
  /** A valid token for a suspended tenant: 403, not 401. */
  | 'jwt_suspended';

export const JWT_REFUSAL_MESSAGE = 'A valid bearer token is required.';
export const JWT_SUSPENDED_MESSAGE = 'This account is suspended.';
