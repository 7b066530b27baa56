/** Why a request failed authentication (the `reason` label of gateway_auth_failures_total); never more precise in the response. */
export type AuthFailureReason =
  | 'missing'
  | 'malformed'
  | 'unknown'
  | 'bad_secret'
  | 'revoked'
  | 'expired'
  | 'suspended'
  | 'scope'
  | 'bad_signature'
  | 'unsigned';
