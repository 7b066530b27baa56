import type { FastifyRequest } from 'fastify';
import { GatewayException } from '../common/errors/gateway.exception';
import type { SignedModeImgproxyPath } from '../signing/imgproxy-url';

/**
 * The signed URL SignedUrlGuard parsed and verified, handed to the `/t/*` handler so the path is
 * parsed once per request. Kept beside the request rather than on RequestState, which is shared
 * by every module and only carries what logging and metrics read.
 */
const verifiedPaths = new WeakMap<FastifyRequest, SignedModeImgproxyPath>();

export function setVerifiedImagePath(request: FastifyRequest, path: SignedModeImgproxyPath): void {
  verifiedPaths.set(request, path);
}

export function verifiedImagePathOf(request: FastifyRequest): SignedModeImgproxyPath {
  const path = verifiedPaths.get(request);
  // Only reachable if the route were declared without SignedUrlGuard: fail closed.
  if (!path || !request.gw.auth) throw new GatewayException('unauthorized');
  return path;
}
