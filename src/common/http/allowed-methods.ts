import type { FastifyInstance } from 'fastify';
import { SERVABLE_METHODS } from './client-error';

/** The methods some route serves at `url` (the `Allow` of a 405); never TRACE or CONNECT. */
export function allowedMethods(fastify: FastifyInstance, url: string): string[] {
  const query = url.indexOf('?');
  const path = query === -1 ? url : url.slice(0, query);
  const allowed: string[] = [];
  for (const method of SERVABLE_METHODS) {
    try {
      if (fastify.findRoute({ method, url: path })) allowed.push(method);
    } catch {
      // A path the router cannot even decode matches no route.
    }
  }
  return allowed;
}
