import type { FastifyInstance } from 'fastify';
import { SERVABLE_METHODS } from './client-error';

/** The methods some route serves at `url` (the `Allow` of a 405); never TRACE or CONNECT. */
export function allowedMethods(fastify: FastifyInstance, url: string): string[] {
  const query = url.indexOf('?');
  const path = query === -1 ? url : url.slice(0, query);
  const allowed: string[] = [];
  for (const method of SERVABLE_METHODS) {
    try {
      const found = fastify.findRoute({ method, url: path });
      // A match through the proxied catch-all (`/*`) is the route table's to answer, not a Nest route.
      if (found && (found.params as Record<string, unknown> | undefined)?.['*'] === undefined) allowed.push(method);
    } catch {
      // A path the router cannot even decode matches no route.
    }
  }
  return allowed;
}
