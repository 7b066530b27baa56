import type { OutgoingHttpHeaders } from 'node:http';
import type { HeaderEditConfig } from '../config/routes.config';

/** A route's `headers.request` or `headers.response` rule, names lower-cased once. */
export interface HeaderEdit {
  readonly set: readonly (readonly [string, string])[];
  readonly remove: readonly string[];
}

export function compileHeaderEdit(config: HeaderEditConfig | undefined): HeaderEdit | undefined {
  if (!config || (!config.set && !config.remove)) return undefined;
  return {
    set: Object.entries(config.set ?? {}).map(([name, value]) => [name.toLowerCase(), String(value)] as const),
    remove: (config.remove ?? []).map((name) => name.toLowerCase()),
  };
}

/** Removes first, then sets: `remove: [Server]` with `set: {Server: x}` leaves `x`. */
export function applyHeaderEdit(edit: HeaderEdit, headers: OutgoingHttpHeaders | Record<string, string | string[]>): void {
  for (const name of edit.remove) delete headers[name];
  for (const [name, value] of edit.set) headers[name] = value;
}
