#!/usr/bin/env bash
# Static checks of the files under docker/: Prometheus rules and config (promtool, skipped with a
# message when it is not installed), the alert unit tests, and the Grafana dashboard (JSON, its
# structure, and the PromQL of every panel). Run from anywhere: bash docker/check.sh
set -euo pipefail

docker_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$docker_dir/.."

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# ---- Grafana dashboard: valid JSON, sane structure, known metric names ---------------------------
# Prints the panel queries (variables replaced by plain values) as a rules file for promtool below.
if node - docker/grafana/dashboards/gateway.json docker/prometheus/alerts.yml >"$tmp/dashboard-rules.yml" <<'NODE'
const fs = require('fs');
const [dashboardFile, alertsFile] = process.argv.slice(2);
const problems = [];
let dashboard;
try {
  dashboard = JSON.parse(fs.readFileSync(dashboardFile, 'utf8'));
} catch (error) {
  console.error(`${dashboardFile}: not valid JSON: ${error.message}`);
  process.exit(1);
}
if (!dashboard.uid) problems.push('dashboard has no uid');
if (!dashboard.title) problems.push('dashboard has no title');
if (typeof dashboard.schemaVersion !== 'number') problems.push('dashboard has no schemaVersion');
const variables = (dashboard.templating?.list ?? []).map((v) => v.name);
if (!variables.includes('datasource')) problems.push('no "datasource" template variable');

const ids = new Set();
const exprs = [];
for (const panel of dashboard.panels ?? []) {
  const where = `panel ${panel.id} "${panel.title}"`;
  if (typeof panel.id !== 'number' || ids.has(panel.id)) problems.push(`${where}: missing or duplicate id`);
  ids.add(panel.id);
  const g = panel.gridPos;
  if (!g || g.x < 0 || g.w < 1 || g.x + g.w > 24 || g.h < 1) problems.push(`${where}: bad gridPos`);
  if (panel.type === 'row') continue;
  if (panel.datasource?.uid !== '${datasource}') problems.push(`${where}: datasource is not \${datasource}`);
  if (!panel.targets?.length) problems.push(`${where}: no query`);
  for (const target of panel.targets ?? []) {
    if (!target.expr) problems.push(`${where}: target ${target.refId} has no expr`);
    else exprs.push(target.expr);
  }
}

// Metric names the gateway exports (its Prometheus contract); a typo here is an empty panel.
const known = new Set([
  'gateway_requests_total', 'gateway_request_duration_seconds', 'gateway_upstream_duration_seconds',
  'gateway_backend_up', 'gateway_backend_weight', 'gateway_circuit_state', 'gateway_retries_total',
  'gateway_rate_limited_total', 'gateway_quota_exceeded_total', 'gateway_auth_failures_total',
  'gateway_ip_denied_total', 'gateway_inflight_requests', 'gateway_bytes_total',
  'gateway_request_log_dropped_total', 'gateway_store_errors_total', 'gateway_cache_requests_total',
  'gateway_cache_bytes', 'gateway_cache_coalesced_total', 'gateway_cache_evictions_total',
  'gateway_tenant_requests_total',
]);
const used = (text) => (text.match(/\bgateway_[a-z_]+/g) ?? []).map((m) => m.replace(/_(bucket|count|sum)$/, ''));
for (const name of used(exprs.join('\n'))) if (!known.has(name)) problems.push(`dashboard uses unknown metric ${name}`);
for (const name of used(fs.readFileSync(alertsFile, 'utf8'))) if (!known.has(name)) problems.push(`${alertsFile} uses unknown metric ${name}`);

if (problems.length) {
  for (const p of [...new Set(problems)]) console.error(`${dashboardFile}: ${p}`);
  process.exit(1);
}
const plain = (e) => e
  .replace(/\$__rate_interval|\$__interval/g, '1m')
  .replace(/\$__range/g, '1h')
  .replace(/\$topn/g, '10')
  .replace(/\$\{?[a-z_]+\}?/g, '.*');
console.log('groups:\n  - name: dashboard-queries\n    rules:');
exprs.forEach((e, i) => console.log(`      - record: dashboard:query_${i}\n        expr: ${JSON.stringify(plain(e))}`));
console.error(`dashboard: ${(dashboard.panels ?? []).length} panels, ${exprs.length} queries, structure OK`);
NODE
then :; else fail "Grafana dashboard"; fi

# ---- Prometheus -------------------------------------------------------------------------------
if command -v promtool >/dev/null 2>&1; then
  promtool check rules docker/prometheus/alerts.yml || fail "promtool check rules"
  promtool check config docker/prometheus/prometheus.yml || fail "promtool check config"
  promtool test rules docker/prometheus/alerts.test.yml || fail "promtool test rules"
  if [ -s "$tmp/dashboard-rules.yml" ]; then
    promtool check rules "$tmp/dashboard-rules.yml" >/dev/null || fail "dashboard PromQL (promtool)"
    echo "dashboard: every query parses as PromQL"
  fi
else
  echo "promtool not installed: Prometheus checks skipped" \
    "(Debian: apt-get install prometheus; or run this script inside the prom/prometheus image)"
fi

if [ "$failures" -gt 0 ]; then
  echo "docker/check.sh: $failures check(s) failed" >&2
  exit 1
fi
echo "docker/check.sh: all checks passed"
