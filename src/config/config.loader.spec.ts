import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { projectRoot } from '../common/project-root';
import { ConfigError, loadConfig, parseBackends } from './config.loader';

const secrets = {
  ADMIN_TOKEN: 'admin-token-0123456789',
  KEY_PEPPER: 'pepper-0123456789abcdef',
  SECRETS_KEY: 'ab'.repeat(32),
};

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('loads the shipped defaults', () => {
    const { config } = loadConfig({ env: { ...secrets } });
    expect(config.server.port).toBe(8080);
    expect(config.server.host).toBe('0.0.0.0');
    expect(config.healthCheck.intervalSeconds).toBe(30);
    expect(config.rateLimit.ip.perMinute).toBe(100);
    // The image routes' capacity: 4x the largest shipped plan (pro, 5000/min), exact by default.
    expect(config.rateLimit.routes.proxy).toMatchObject({ perMinute: 20000, policy: 'exact' });
    expect(config.rateLimit.routes.upload).toMatchObject({ perMinute: 20000, perCaller: { perMinute: 600 } });
    expect(config.rateLimit.ipAuthenticated.perMinute).toBeUndefined();
    expect(config.usage.batchIntervalMs).toBe(250);
    expect(config.plans.map((p) => p.name)).toEqual(['free', 'pro']);
    expect(config.database.embeddedDir).toBe(join('data', 'pg'));
  });

  it('applies the environment variables of the operator contract', () => {
    const { config } = loadConfig({
      env: {
        ...secrets,
        PORT: '9090',
        HOST: '127.0.0.1',
        DATABASE_URL: 'postgres://u@db:5432/gw',
        REDIS_URL: 'redis://cache:6379',
        IMGPROXY_KEY: 'abcd',
        IMGPROXY_SALT: '0102',
        UPLOADS_ROOT: '/srv/uploads',
        BACKENDS: 'a=http://127.0.0.1:9001|70,b=http://127.0.0.1:9002|30',
        HEALTH_CHECK_INTERVAL: '10',
        TRUSTED_PROXIES: '10.0.0.0/8, 192.168.0.0/16',
        RATE_LIMIT_IP_PER_MINUTE: '50',
        RATE_LIMIT_PROXY_PER_MINUTE: '700',
        LOG_LEVEL: 'debug',
        WORKERS: '4',
      },
    });
    expect(config.server).toMatchObject({ port: 9090, host: '127.0.0.1', trustedProxies: ['10.0.0.0/8', '192.168.0.0/16'], workers: 4 });
    expect(config.database.url).toBe('postgres://u@db:5432/gw');
    expect(config.redis.url).toBe('redis://cache:6379');
    expect(config.imgproxy).toMatchObject({ key: 'abcd', salt: '0102' });
    expect(config.uploads.root).toBe('/srv/uploads');
    expect(config.backends).toEqual([
      expect.objectContaining({ name: 'a', url: 'http://127.0.0.1:9001', weight: 70, pool: 'imgproxy', enabled: true }),
      expect.objectContaining({ name: 'b', url: 'http://127.0.0.1:9002', weight: 30 }),
    ]);
    expect(config.healthCheck.intervalSeconds).toBe(10);
    expect(config.rateLimit.ip.perMinute).toBe(50);
    expect(config.rateLimit.routes.proxy.perMinute).toBe(700);
    expect(config.logging.level).toBe('debug');
  });

  it('names the variable and the problem for a bad value', () => {
    const problems = problemsOf(() => loadConfig({ env: { ...secrets, PORT: 'not-a-port' } }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^PORT \(server\.port\): .*integer/);
  });

  it('collects every problem at once', () => {
    const problems = problemsOf(() =>
      loadConfig({ env: { ...secrets, PORT: '70000', TRUSTED_PROXIES: '10.0.0.0/99', LOG_LEVEL: 'loud', BACKENDS: 'garbage' } }),
    );
    expect(problems.join('\n')).toMatch(/PORT/);
    expect(problems.join('\n')).toMatch(/TRUSTED_PROXIES/);
    expect(problems.join('\n')).toMatch(/LOG_LEVEL/);
    expect(problems.join('\n')).toMatch(/BACKENDS/);
  });

  it('refuses an imgproxy key without its salt and a malformed allowed source', () => {
    const problems = problemsOf(() =>
      loadConfig({ env: { ...secrets, IMGPROXY_KEY: 'abcd' }, overrides: { imgproxy: { allowedSources: ['http://user@evil.example/'] } } }),
    );
    expect(problems).toEqual([
      expect.stringMatching(/^IMGPROXY_SALT \(imgproxy\.salt\): required when IMGPROXY_KEY is set/),
      expect.stringMatching(/^imgproxy\.allowedSources\[0\]: /),
    ]);
  });

  it('refuses unknown keys in YAML (a typo must not be silently ignored)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'igw-config-'));
    writeFileSync(join(dir, 'default.yaml'), 'server:\n  prot: 80\n');
    const problems = problemsOf(() => loadConfig({ env: { ...secrets }, configDir: dir }));
    expect(problems.join('\n')).toMatch(/server\.prot/);
  });

  it('layers default.yaml, <NODE_ENV>.yaml and CONFIG_FILE', () => {
    const dir = mkdtempSync(join(tmpdir(), 'igw-config-'));
    writeFileSync(join(dir, 'default.yaml'), 'server:\n  port: 1000\n  host: a\n');
    writeFileSync(join(dir, 'staging.yaml'), 'server:\n  port: 2000\n');
    writeFileSync(join(dir, 'extra.yaml'), 'server:\n  host: b\n');
    const { config } = loadConfig({
      env: { ...secrets, NODE_ENV: 'staging', CONFIG_FILE: join(dir, 'extra.yaml') },
      configDir: dir,
      overrides: { env: 'development' },
    });
    expect(config.server).toMatchObject({ port: 2000, host: 'b' });
  });

  it('refuses to start in production without secrets', () => {
    const problems = problemsOf(() => loadConfig({ env: { NODE_ENV: 'production' }, generateDevSecrets: true }));
    expect(problems).toEqual([
      expect.stringMatching(/^ADMIN_TOKEN .*required in production/),
      expect.stringMatching(/^KEY_PEPPER .*required in production/),
      expect.stringMatching(/^SECRETS_KEY .*required in production/),
    ]);
  });

  it('generates development secrets once and keeps them for the next start', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'igw-data-'));
    const first = loadConfig({ env: { DATA_DIR: dataDir }, generateDevSecrets: true });
    expect(first.generated).toEqual(['adminToken', 'keyPepper', 'secretsKey']);
    expect(first.config.security.secretsKey).toMatch(/^[0-9a-f]{64}$/);
    const second = loadConfig({ env: { DATA_DIR: dataDir }, generateDevSecrets: true });
    expect(second.generated).toEqual([]);
    expect(second.config.security.adminToken).toBe(first.config.security.adminToken);
    expect(JSON.parse(readFileSync(join(dataDir, 'dev-secrets.json'), 'utf8')).keyPepper).toBe(first.config.security.keyPepper);
  });
});

describe('placeholder secrets', () => {
  /** Production settings that pass every check, to which one example value at a time is added. */
  const production = {
    NODE_ENV: 'production',
    ...secrets,
    DATABASE_URL: 'postgres://gateway:s3cr3t-db-password@db:5432/gateway',
    REDIS_URL: 'redis://:s3cr3t-redis-password@cache:6379/0',
  };
  /** Variables holding a secret, directly or as the password of a URL. */
  const SECRET_VARIABLES = ['ADMIN_TOKEN', 'KEY_PEPPER', 'SECRETS_KEY', 'IMGPROXY_KEY', 'IMGPROXY_SALT', 'IMGPROXY_SECRET', 'METRICS_TOKEN', 'DATABASE_URL', 'REDIS_URL'];

  function read(file: string): string {
    return readFileSync(join(projectRoot(), file), 'utf8');
  }

  /** `NAME=value` lines, and the `e.g. value` a comment gives for an empty one. */
  function envFileExamples(text: string): Array<[string, string]> {
    const out: Array<[string, string]> = [];
    for (const line of text.split('\n')) {
      const match = /^([A-Z_]+)=(\S*)\s*(?:#.*?e\.g\. (\S+))?/.exec(line);
      if (!match) continue;
      if (match[2]) out.push([match[1], match[2]]);
      if (match[3]) out.push([match[1], match[3].replace(/[,;]$/, '')]);
    }
    return out;
  }

  /** What docker compose hands the gateway: DATABASE_URL and REDIS_URL built from the example passwords. */
  function composeExamples(): Array<[string, string]> {
    const env = Object.fromEntries(envFileExamples(read('docker/gateway.env.example')));
    const compose = parseYaml(read('docker/docker-compose.yml')) as { services: { gateway: { environment: Record<string, string> } } };
    return ['DATABASE_URL', 'REDIS_URL'].map((name) => [
      name,
      compose.services.gateway.environment[name].replace(/\$\{(\w+):\?[^}]*\}/g, (_, variable: string) => env[variable]),
    ]);
  }

  const kubernetes = (parseYaml(read('docker/kubernetes/secret.yaml')) as { stringData: Record<string, string> }).stringData;
  const examples: Array<[string, string, string]> = [
    ...envFileExamples(read('.env.example')).map(([name, value]) => ['.env.example', name, value] as [string, string, string]),
    ...envFileExamples(read('docker/gateway.env.example')).map(([name, value]) => ['docker/gateway.env.example', name, value] as [string, string, string]),
    ...Object.entries(kubernetes).map(([name, value]) => ['docker/kubernetes/secret.yaml', name, value] as [string, string, string]),
    ...composeExamples().map(([name, value]) => ['docker/docker-compose.yml', name, value] as [string, string, string]),
  ]
    .filter(([, name]) => SECRET_VARIABLES.includes(name))
    // A URL without a password holds no secret (redis://cache:6379).
    .filter(([, name, value]) => !name.endsWith('_URL') || value.split(',').some((url) => new URL(url).password !== ''));

  it('finds the example values it checks (the files still hold them)', () => {
    const names = new Set(examples.map(([, name]) => name));
    for (const name of SECRET_VARIABLES.filter((n) => n !== 'METRICS_TOKEN')) expect(names).toContain(name);
  });

  it.each(examples)('refuses the example value of %s %s in production, naming the variable', (_file, name, value) => {
    const problems = problemsOf(() => loadConfig({ env: { ...production, [name]: value } }));
    expect(problems).toEqual([expect.stringMatching(new RegExp(`^${name} \\([a-zA-Z.]+\\): (is|has a password that is) a placeholder from the example files`))]);
  });

  it("refuses imgproxy's documented example key and salt, and accepts real values", () => {
    const problems = problemsOf(() =>
      loadConfig({
        env: {
          ...production,
          IMGPROXY_KEY: '943b421c9eb07c830af81030552c86009268de4e532ba2ee2eab8247c6da0881',
          IMGPROXY_SALT: '520F986B998545B4785E0DEFBC4F3C1203F22DE2374A3D53CB7A7FE9FEA309C5',
        },
      }),
    );
    expect(problems).toEqual([expect.stringMatching(/^IMGPROXY_KEY \(imgproxy\.key\): is a placeholder/), expect.stringMatching(/^IMGPROXY_SALT \(imgproxy\.salt\): is a placeholder/)]);
    expect(() => loadConfig({ env: { ...production, IMGPROXY_KEY: 'ab'.repeat(32), IMGPROXY_SALT: 'cd'.repeat(32) } })).not.toThrow();
  });

  it('checks every URL of a Redis Cluster or Sentinel list, and only in production', () => {
    const cluster = { REDIS_MODE: 'cluster', REDIS_URL: 'redis://:s3cr3t@10.0.0.1:6379,redis://:change-me@10.0.0.2:6379' };
    expect(problemsOf(() => loadConfig({ env: { ...production, ...cluster } }))).toEqual([expect.stringMatching(/^REDIS_URL \(redis\.url\): has a password that is a placeholder/)]);
    expect(() => loadConfig({ env: { ...secrets, NODE_ENV: 'development', ADMIN_TOKEN: 'change-me-please-0123', ...cluster } })).not.toThrow();
  });
});

describe('parseBackends', () => {
  it('parses name=url|weight lists with a default weight of 1', () => {
    expect(parseBackends('a=http://x:1|70, b=https://y')).toEqual([
      { name: 'a', url: 'http://x:1', weight: 70 },
      { name: 'b', url: 'https://y', weight: 1 },
    ]);
  });
});
