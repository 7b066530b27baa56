import { SignJWT } from 'jose';
import { GatewayProcess, freePort, spawnGateway, waitUntilReady } from './support/gateway-process';
import { TestBackend, rawRequest, startBackend, waitFor } from './support/http-backends';
import { metricValue } from './support/metrics';
import { ConfigFile, MountedConfigFile, errorOf } from './support/routes';
import { HIGH_RATE_LIMIT_CONFIG, HIGH_RATE_LIMIT_ENV, UNLIMITED, adminClient, createTenantWithKey } from './support/tenants';
import { TestApp, createTestApp, createTestDatabase } from './support/test-app';
import { TEST_REDIS_URL, databaseUrl, redisRunPrefix } from './support/test-env';

jest.setTimeout(90_000);

interface RouteTableBody {
  version: number;
  routes: { name: string; path: string; upstream: string; steps: string[] }[];
}

/** A YAML configuration of upstreams `one` and `two`, with the routes given. */
function routesConfig(one: TestBackend, two: TestBackend, routes: Record<string, unknown>[]): Record<string, unknown> {
  return {
    upstreams: { one: { backends: [{ name: one.name, url: one.url }] }, two: { backends: [{ name: two.name, url: two.url }] } },
    routes,
  };
}

/**
 * Hot reload of routes and upstreams (docs/routes.md "Hot reload"): the configuration file the
 * gateway was started with is changed under it (watched), reloaded through the admin API, broken
 * on purpose; the live table is read back from GET /admin/v1/routes and from traffic.
 */
describe('route reload, in process (e2e)', () => {
  let one: TestBackend;
  let two: TestBackend;
  let file: ConfigFile;
  let gw: TestApp;
  const reloads = (result: 'success' | 'failure') => metricValue(gw, 'gateway_config_reloads_total', `result="${result}"`);
  const table = async () => (await (await gw.admin('/admin/v1/routes')).json()) as RouteTableBody;
  const configured = async () => (await table()).routes.filter((route) => route.name !== 'proxy' && route.name !== 'signed-proxy').map((route) => route.name);

  beforeAll(async () => {
    one = await startBackend({ name: 'one' });
    two = await startBackend({ name: 'two' });
    file = new ConfigFile(routesConfig(one, two, [{ name: 'first', path: '/first/*', upstream: 'one', auth: 'none' }]));
    gw = await createTestApp({ configFile: file.path, config: HIGH_RATE_LIMIT_CONFIG });
  });

  afterAll(async () => {
    await gw?.close();
    await Promise.all([one?.stop(), two?.stop()]);
    file?.remove();
  });

  it('serves a route added to the watched file without a restart', async () => {
    const version = (await table()).version;
    const successes = await reloads('success');
    expect((await rawRequest(gw.url, '/second/x')).status).toBe(404);
    // A new route to a new upstream: the upstream is in place before the route goes live.
    const config = routesConfig(one, two, [
      { name: 'first', path: '/first/*', upstream: 'one', auth: 'none' },
      { name: 'second', path: '/second/*', upstream: 'three', auth: 'none' },
    ]);
    (config.upstreams as Record<string, unknown>).three = { backends: [{ name: 'three', url: two.url }] };
    file.write(config);
    await waitFor('the new route', async () => (await rawRequest(gw.url, '/second/x')).status === 200);
    expect((await rawRequest(gw.url, '/second/x')).body.toString()).toBe('two');
    expect((await table()).version).toBeGreaterThan(version);
    expect(await configured()).toEqual(['first', 'second']);
    expect(await reloads('success')).toBeGreaterThan(successes);
  });

  it('reloads on POST /admin/v1/routes/reload, answering the new table', async () => {
    file.write(routesConfig(one, two, [{ name: 'first', path: '/first/*', upstream: 'two', auth: 'none' }, { name: 'third', path: '/third/*', upstream: 'one', auth: 'none' }]));
    const res = await gw.admin('/admin/v1/routes/reload', { method: 'POST' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as RouteTableBody;
    expect(body.routes.find((route) => route.name === 'first')?.upstream).toBe('two');
    expect((await rawRequest(gw.url, '/first/x')).body.toString()).toBe('two');
    expect((await rawRequest(gw.url, '/third/x')).body.toString()).toBe('one');
  });

  it('answers 404 on a route removed by a reload', async () => {
    expect((await rawRequest(gw.url, '/third/x')).status).toBe(200);
    file.write(routesConfig(one, two, [{ name: 'first', path: '/first/*', upstream: 'two', auth: 'none' }]));
    expect((await gw.admin('/admin/v1/routes/reload', { method: 'POST' })).status).toBe(200);
    const gone = await rawRequest(gw.url, '/third/x');
    expect([gone.status, errorOf(gone).code]).toEqual([404, 'not_found']);
  });

  it('refuses a broken file naming the key, keeps the live table, and counts the failure', async () => {
    const before = await table();
    const failures = await reloads('failure');
    file.write(routesConfig(one, two, [{ name: 'first', path: '/first/*', upstream: 'nowhere', auth: 'none', methods: ['GET', 'TRACE'] }]));
    const res = await gw.admin('/admin/v1/routes/reload', { method: 'POST' });
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as { error: { code: string; details: string[] } };
    expect(error.code).toBe('validation_failed');
    expect(error.details.join('\n')).toMatch(/routes\.0\.methods: each method must be one of/);
    // The watcher saw the same change: counted as well, whichever came first.
    await waitFor('the failures counted', async () => (await reloads('failure')) >= failures + 1);
    expect(await table()).toEqual(before);
    expect((await rawRequest(gw.url, '/first/x')).body.toString()).toBe('two');

    // A header rule the request path could not write (a name with a space) is a configuration error.
    file.write(routesConfig(one, two, [{ name: 'first', path: '/first/*', upstream: 'two', auth: 'none', headers: { response: { set: { 'Bad Name': 'x' } } } }]));
    const badHeader = await gw.admin('/admin/v1/routes/reload', { method: 'POST' });
    expect(((await badHeader.json()) as { error: { details: string[] } }).error.details).toEqual([
      'routes.0.headers.response.set: "Bad Name" is not a header name',
    ]);

    file.write('routes: [ this is : not yaml');
    expect((await gw.admin('/admin/v1/routes/reload', { method: 'POST' })).status).toBe(400);
    file.write(routesConfig(one, two, [{ name: 'first', path: '/first/*', upstream: 'missing', auth: 'none' }]));
    const unknown = await gw.admin('/admin/v1/routes/reload', { method: 'POST' });
    expect(((await unknown.json()) as { error: { details: string[] } }).error.details).toContain('routes[0].upstream: no upstream named "missing"');
    expect(await reloads('failure')).toBeGreaterThanOrEqual(failures + 4);
    expect((await table()).version).toBe(before.version);
    expect((await rawRequest(gw.url, '/first/x')).body.toString()).toBe('two');
  });

  it('lets a request in flight during a reload finish on its old chain and upstream', async () => {
    file.write(
      routesConfig(one, two, [{ name: 'first', path: '/first/*', upstream: 'one', auth: 'none', headers: { response: { set: { 'X-Chain': 'old' } } } }]),
    );
    expect((await gw.admin('/admin/v1/routes/reload', { method: 'POST' })).status).toBe(200);
    let release: () => void = () => undefined;
    // Nothing is answered until after the reload: the response steps run then.
    one.handler = (_req, res) => {
      release = () => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('finished on one');
      };
    };
    const inFlight = rawRequest(gw.url, '/first/slow');
    await waitFor('the slow request to reach the backend', () => one.requests.some((r) => r.url === '/first/slow'));

    // The new table sends the route elsewhere, with another header rule, and drops upstream `one`.
    file.write({
      upstreams: { two: { backends: [{ name: two.name, url: two.url }] } },
      routes: [{ name: 'first', path: '/first/*', upstream: 'two', auth: 'none', headers: { response: { set: { 'X-Chain': 'new' } } } }],
    });
    expect((await gw.admin('/admin/v1/routes/reload', { method: 'POST' })).status).toBe(200);
    const fresh = await rawRequest(gw.url, '/first/x');
    expect([fresh.body.toString(), fresh.headers['x-chain']]).toEqual(['two', 'new']);

    release();
    const old = await inFlight;
    expect([old.status, old.body.toString(), old.headers['x-chain']]).toEqual([200, 'finished on one', 'old']);
    one.handler = (_req, res) => res.end(one.name);
  });

  it('takes a new auth.jwt with the routes: the old secret is refused, the new one admitted', async () => {
    const tenant = await createTenantWithKey(gw, { ...UNLIMITED });
    const sign = (secret: string) =>
      new SignJWT({ tenant: tenant.tenantId, exp: Math.floor(Date.now() / 1000) + 60 }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret));
    const withJwt = (secret: string) => ({
      ...routesConfig(one, two, [{ name: 'jwt', path: '/jwt/*', upstream: 'one', auth: 'jwt' }]),
      auth: { jwt: { algorithms: ['HS256'], secret } },
    });
    const before = 'the-first-hs256-secret-of-32-bytes-or-more';
    const after = 'the-rotated-hs256-secret-of-32-bytes-or-more';
    file.write(withJwt(before));
    expect((await gw.admin('/admin/v1/routes/reload', { method: 'POST' })).status).toBe(200);
    const call = async (secret: string) => (await rawRequest(gw.url, '/jwt/x', { headers: { authorization: `Bearer ${await sign(secret)}` } })).status;
    expect(await call(before)).toBe(200);
    file.write(withJwt(after));
    expect((await gw.admin('/admin/v1/routes/reload', { method: 'POST' })).status).toBe(200);
    expect([await call(before), await call(after)]).toEqual([401, 200]);
  });
});

describe('route reload of a file mounted from a Kubernetes ConfigMap (e2e)', () => {
  let one: TestBackend;
  let two: TestBackend;
  let file: MountedConfigFile;
  let gw: TestApp;

  beforeAll(async () => {
    one = await startBackend({ name: 'one' });
    two = await startBackend({ name: 'two' });
    file = new MountedConfigFile(routesConfig(one, two, [{ name: 'first', path: '/first/*', upstream: 'one', auth: 'none' }]));
    gw = await createTestApp({ configFile: file.path, config: HIGH_RATE_LIMIT_CONFIG });
  });

  afterAll(async () => {
    await gw?.close();
    await Promise.all([one?.stop(), two?.stop()]);
    file?.remove();
  });

  it('reloads when the mount’s ..data link is swapped to a new version', async () => {
    expect((await rawRequest(gw.url, '/first/x')).body.toString()).toBe('one');
    file.write(routesConfig(one, two, [{ name: 'first', path: '/first/*', upstream: 'two', auth: 'none' }]));
    await waitFor('the swapped configuration', async () => (await rawRequest(gw.url, '/first/x')).body.toString() === 'two', 5_000);
  });
});

/**
 * The same as an operator sees it: a gateway process, its configuration file, SIGHUP, and the
 * log lines on its stdout.
 */
describe('route reload, in a gateway process (e2e)', () => {
  const ADMIN_TOKEN = 'reload-admin-token-0123456789abcdef';
  let one: TestBackend;
  let two: TestBackend;
  let file: ConfigFile;
  let gw: GatewayProcess;
  const admin = () => adminClient(gw.url, ADMIN_TOKEN);

  beforeAll(async () => {
    one = await startBackend({ name: 'one' });
    two = await startBackend({ name: 'two' });
    file = new ConfigFile({
      // Only SIGHUP reloads here, so each reload below has one cause.
      server: { watchConfigFiles: false },
      ...routesConfig(one, two, [{ name: 'first', path: '/first/*', upstream: 'one', auth: 'none' }]),
    });
    gw = spawnGateway({
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      CONFIG_FILE: file.path,
      ADMIN_TOKEN,
      KEY_PEPPER: 'reload-pepper-0123456789',
      SECRETS_KEY: 'ab'.repeat(32),
      DATA_DIR: file.dir,
      PORT: String(await freePort()),
      HOST: '127.0.0.1',
      DATABASE_URL: databaseUrl(await createTestDatabase()),
      REDIS_URL: TEST_REDIS_URL,
      REDIS_KEY_PREFIX: `${redisRunPrefix()}reload:`,
      ...HIGH_RATE_LIMIT_ENV,
    });
    await waitUntilReady(gw, '/health/live');
  });

  afterAll(async () => {
    if (gw?.child.exitCode === null) {
      gw.child.kill('SIGTERM');
      await gw.exited;
    }
    await Promise.all([one?.stop(), two?.stop()]);
    file?.remove();
  });

  const logLines = () =>
    gw
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { level: number; msg: string; problems?: string[] });

  it('reloads on SIGHUP', async () => {
    expect((await rawRequest(gw.url, '/first/x')).body.toString()).toBe('one');
    file.write({ server: { watchConfigFiles: false }, ...routesConfig(one, two, [{ name: 'first', path: '/first/*', upstream: 'two', auth: 'none' }]) });
    // Not watched: nothing changes until the signal.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await rawRequest(gw.url, '/first/x')).body.toString()).toBe('one');
    gw.child.kill('SIGHUP');
    await waitFor('the reload', async () => (await rawRequest(gw.url, '/first/x')).body.toString() === 'two');
    expect(logLines().some((line) => /configuration reloaded \(SIGHUP\)/.test(line.msg))).toBe(true);
    expect(gw.child.exitCode).toBeNull();
  });

  it('refuses a broken file on SIGHUP with a logged reason naming the key, and keeps serving the old table', async () => {
    const before = (await (await admin().admin('/admin/v1/routes')).json()) as RouteTableBody;
    file.write({ server: { watchConfigFiles: false }, ...routesConfig(one, two, [{ name: 'first', path: '/first/*', upstream: 'two', auth: 'none', timeoutSeconds: 'soon' }]) });
    gw.child.kill('SIGHUP');
    await waitFor('the refusal in the log', () => logLines().some((line) => /configuration reload refused/.test(line.msg)));
    const refusal = logLines().find((line) => /configuration reload refused/.test(line.msg))!;
    expect(refusal.level).toBeGreaterThanOrEqual(50);
    expect(refusal.msg).toMatch(/routes\.0\.timeoutSeconds: /);
    expect(await (await admin().admin('/admin/v1/routes')).json()).toEqual(before);
    expect((await rawRequest(gw.url, '/first/x')).body.toString()).toBe('two');
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/gateway_config_reloads_total\{result="failure"\} 1\b/);
    expect(metrics).toMatch(/gateway_config_reloads_total\{result="success"\} 1\b/);
  });
});
