import { Counter, register } from 'prom-client';

/**
 * IP denials by list (SPEC §12). prom-client's registry is process-wide and a test may run
 * two gateway instances in one process, so the counter is fetched when it already exists.
 */
export function ipDenialsCounter(): Counter<'list'> {
  const name = 'gateway_ip_denials_total';
  return (
    (register.getSingleMetric(name) as Counter<'list'> | undefined) ??
    new Counter({ name, help: 'Requests refused because of the client address, by list (denylist, allowlist).', labelNames: ['list'] })
  );
}
