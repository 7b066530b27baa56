/** What the helpers need of a gateway under test: TestApp has it. */
export interface MetricsSource {
  fetch(path: string, init?: RequestInit): Promise<Response>;
}

/**
 * The value of one series of `/metrics`, 0 when it does not exist yet. `labels` is the exact
 * label text Prometheus prints, e.g. `reason="admin_token"` or `backend="a",kind="protocol"`.
 */
export async function metricValue(gw: MetricsSource, name: string, labels = ''): Promise<number> {
  const text = await (await gw.fetch('/metrics')).text();
  const prefix = labels ? `${name}{${labels}} ` : `${name} `;
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  return line ? Number(line.slice(prefix.length)) : 0;
}
