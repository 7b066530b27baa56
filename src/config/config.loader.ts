import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { plainToInstance } from 'class-transformer';
import { ValidationError, validateSync } from 'class-validator';
import { parse as parseYaml } from 'yaml';
import { projectRoot } from '../common/project-root';
import { redisConfigProblems } from './redis-nodes';
import { parseSourcePrefix } from '../signing/source-policy';
import { GatewayConfig } from './gateway-config';
import { UpstreamConfig, routeProblems } from './routes.config';

type Plain = Record<string, unknown>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

/** Environment variables of README.md, each mapped to its YAML key. */
const ENV_KEYS: Record<string, { path: string; kind: 'string' | 'int' | 'list' | 'backends' }> = {
  PORT: { path: 'server.port', kind: 'int' },
  HOST: { path: 'server.host', kind: 'string' },
  TRUSTED_PROXIES: { path: 'server.trustedProxies', kind: 'list' },
  WORKERS: { path: 'server.workers', kind: 'int' },
  DATABASE_URL: { path: 'database.url', kind: 'string' },
  REDIS_URL: { path: 'redis.url', kind: 'string' },
  REDIS_KEY_PREFIX: { path: 'redis.keyPrefix', kind: 'string' },
  REDIS_MODE: { path: 'redis.mode', kind: 'string' },
  REDIS_SENTINEL_NAME: { path: 'redis.sentinelName', kind: 'string' },
  ADMIN_TOKEN: { path: 'security.adminToken', kind: 'string' },
  KEY_PEPPER: { path: 'security.keyPepper', kind: 'string' },
  SECRETS_KEY: { path: 'security.secretsKey', kind: 'string' },
  IMGPROXY_KEY: { path: 'imgproxy.key', kind: 'string' },
  IMGPROXY_SALT: { path: 'imgproxy.salt', kind: 'string' },
  IMGPROXY_SECRET: { path: 'imgproxy.secret', kind: 'string' },
  UPLOADS_ROOT: { path: 'uploads.root', kind: 'string' },
  BACKENDS: { path: 'backends', kind: 'backends' },
  HEALTH_CHECK_INTERVAL: { path: 'healthCheck.intervalSeconds', kind: 'int' },
  RATE_LIMIT_IP_PER_MINUTE: { path: 'rateLimit.ip.perMinute', kind: 'int' },
  RATE_LIMIT_PROXY_PER_MINUTE: { path: 'rateLimit.routes.proxy.perMinute', kind: 'int' },
  CACHE_DIR: { path: 'cache.dir', kind: 'string' },
  CACHE_MEMORY_MAX_BYTES: { path: 'cache.memoryMaxBytes', kind: 'int' },
  CACHE_DISK_MAX_BYTES: { path: 'cache.diskMaxBytes', kind: 'int' },
  RATE_LIMIT_PROXY_POLICY: { path: 'rateLimit.routes.proxy.policy', kind: 'string' },
  RATE_LIMIT_IP_AUTHENTICATED_PER_MINUTE: { path: 'rateLimit.ipAuthenticated.perMinute', kind: 'int' },
  LOG_LEVEL: { path: 'logging.level', kind: 'string' },
  METRICS_TOKEN: { path: 'metrics.token', kind: 'string' },
  OTEL_EXPORTER_OTLP_ENDPOINT: { path: 'tracing.otlpEndpoint', kind: 'string' },
  OTEL_SERVICE_NAME: { path: 'tracing.serviceName', kind: 'string' },
  DATA_DIR: { path: 'dataDir', kind: 'string' },
};

export interface LoadConfigOptions {
  /** Defaults to process.env. Tests pass their own so the machine's variables cannot leak in. */
  env?: NodeJS.ProcessEnv;
  /** Applied last; tests use it for per-run databases and key prefixes. */
  overrides?: Plain;
  /** Directory holding default.yaml and <env>.yaml. */
  configDir?: string;
  /** Generate and persist missing dev secrets (admin token, pepper, secrets key). */
  generateDevSecrets?: boolean;
}

export interface LoadedConfig {
  config: GatewayConfig;
  /** Which secrets were generated for this dev run (to print the admin token once). */
  generated: string[];
  /** Loads the same layers again (a config reload), and names the files they come from. */
  source: ConfigSource;
}

/** Where a configuration came from, so it can be read again on SIGHUP or a file change. */
export interface ConfigSource {
  /** The YAML files read, in order (the ones that exist); a change to any of them means a reload. */
  readonly files: readonly string[];
  /** Reads and validates every layer again; throws ConfigError with every problem. */
  load(): GatewayConfig;
}

/**
 * Builds the configuration from YAML files, environment and overrides, then validates it
 * once. Every problem is collected, so an operator fixes them all in one go.
 */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const configDir = options.configDir ?? join(projectRoot(), 'config');
  const nodeEnv = env.NODE_ENV ?? 'development';
  const problems: string[] = [];
  const sources = new Map<string, string>();

  let raw: Plain = {};
  const read: string[] = [];
  const files = [join(configDir, 'default.yaml'), join(configDir, `${nodeEnv}.yaml`)];
  for (const file of files) {
    if (existsSync(file)) {
      raw = deepMerge(raw, readYaml(file, problems));
      read.push(file);
    }
  }
  if (env.CONFIG_FILE) {
    const file = resolve(env.CONFIG_FILE);
    if (existsSync(file)) {
      raw = deepMerge(raw, readYaml(file, problems));
      read.push(file);
    } else problems.push(`CONFIG_FILE: ${file} does not exist`);
  }
  raw.env = nodeEnv;
  sources.set('env', 'NODE_ENV');

  for (const [name, { path, kind }] of Object.entries(ENV_KEYS)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    sources.set(path, name);
    setPath(raw, path, parseEnvValue(value, kind, name, problems));
  }
  if (options.overrides) raw = deepMerge(raw, options.overrides);

  const dataDir = typeof raw.dataDir === 'string' ? raw.dataDir : './data';
  setDefault(raw, 'database.embeddedDir', join(dataDir, 'pg'));
  setDefault(raw, 'uploads.root', join(dataDir, 'uploads'));

  // A placeholder is reported as such, not as the format rule it also breaks ("must be 64 hex characters").
  const placeholders = nodeEnv === 'production' ? placeholderSecrets(raw) : new Map<string, string>();
  for (const [path, what] of placeholders) {
    problems.push(describe(path, `${what} a placeholder from the example files; set a real secret (e.g. openssl rand -hex 32)`, sources));
  }

  const config = plainToInstance(GatewayConfig, raw, { exposeDefaultValues: true });
  const errors = validateSync(config, { whitelist: true, forbidNonWhitelisted: true });
  // One line per key: "PORT (server.port): must be an integer number; must not be ...".
  const byPath = new Map<string, string[]>();
  for (const { path, message } of flattenErrors(errors)) byPath.set(path, [...(byPath.get(path) ?? []), message]);
  for (const [path, messages] of byPath) {
    if (!placeholders.has(path)) problems.push(describe(path, messages.reverse().join('; '), sources));
  }
  problems.push(...validateUpstreams(config));

  if (problems.length === 0) problems.push(...crossFieldProblems(config));

  const generated: string[] = [];
  if (problems.length === 0) {
    requireSecrets(config, problems, options.generateDevSecrets ?? false, generated);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  // A reload never generates secrets: the ones of this start are in the dev-secrets file by now.
  const source: ConfigSource = { files: read, load: () => loadConfig({ ...options, generateDevSecrets: options.generateDevSecrets }).config };
  return { config, generated, source };
}

/** Rules that span several keys or need a parser richer than a decorator. */
function crossFieldProblems(config: GatewayConfig): string[] {
  const problems: string[] = [];
  const { key, salt, allowedSources } = config.imgproxy;
  if (Boolean(key) !== Boolean(salt)) {
    const [missing, missingEnv, presentEnv] = key ? ['imgproxy.salt', 'IMGPROXY_SALT', 'IMGPROXY_KEY'] : ['imgproxy.key', 'IMGPROXY_KEY', 'IMGPROXY_SALT'];
    problems.push(`${missingEnv} (${missing}): required when ${presentEnv} is set (imgproxy signs with both)`);
  }
  problems.push(...redisConfigProblems(config.redis));
  problems.push(...routeProblems(config.routes, config.upstreams, Boolean(config.auth.jwt)));
  allowedSources.forEach((prefix, i) => {
    try {
      parseSourcePrefix(prefix);
    } catch (error) {
      problems.push(`imgproxy.allowedSources[${i}]: ${(error as Error).message}`);
    }
  });
  return problems;
}

/**
 * `upstreams` is a map of name → upstream, which class-validator cannot type: each entry is turned
 * into an UpstreamConfig and validated on its own, its problems named `upstreams.<name>.<key>`.
 */
function validateUpstreams(config: GatewayConfig): string[] {
  const problems: string[] = [];
  const raw = (config.upstreams ?? {}) as Record<string, unknown>;
  const typed: Record<string, UpstreamConfig> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) {
      problems.push(`upstreams.${name}: the name must be 1-64 of [A-Za-z0-9._-]`);
      continue;
    }
    if (!isPlainObject(value)) {
      problems.push(`upstreams.${name}: must be a mapping`);
      continue;
    }
    const upstream = plainToInstance(UpstreamConfig, value, { exposeDefaultValues: true });
    for (const { path, message } of flattenErrors(validateSync(upstream, { whitelist: true, forbidNonWhitelisted: true }))) {
      problems.push(`upstreams.${name}.${path}: ${message}`);
    }
    typed[name] = upstream;
  }
  config.upstreams = typed;
  return problems;
}

/** Settings that hold a secret, or a URL whose password is one. */
const SECRET_PATHS = ['security.adminToken', 'security.keyPepper', 'security.secretsKey', 'imgproxy.key', 'imgproxy.salt', 'imgproxy.secret', 'metrics.token'];
const SECRET_URL_PATHS = ['database.url', 'redis.url'];
/** `change-me` and its variants: every placeholder of .env.example, docker/gateway.env.example and docker/kubernetes/secret.yaml. */
const PLACEHOLDER = /change[-_]?me/i;
/** imgproxy's documented example key and salt, which the API docs also show: public, so never a secret. */
const EXAMPLE_VALUES = new Set([
  '943b421c9eb07c830af81030552c86009268de4e532ba2ee2eab8247c6da0881',
  '520f986b998545b4785e0defbc4f3c1203f22de2374a3d53cb7a7fe9fea309c5',
]);

function isPlaceholder(value: string): boolean {
  return PLACEHOLDER.test(value) || EXAMPLE_VALUES.has(value.toLowerCase());
}

/**
 * Secrets (and URL passwords) still holding an example value, by config path. Production only:
 * a copied example file would otherwise start with secrets anyone can read in this repository.
 */
export function placeholderSecrets(raw: Plain): Map<string, string> {
  const found = new Map<string, string>();
  const read = (path: string): unknown => path.split('.').reduce<unknown>((node, part) => (isPlainObject(node) ? node[part] : undefined), raw);
  for (const path of SECRET_PATHS) {
    const value = read(path);
    if (typeof value === 'string' && isPlaceholder(value)) found.set(path, 'is');
  }
  for (const path of SECRET_URL_PATHS) {
    const value = read(path);
    if (typeof value !== 'string') continue;
    // Cluster and Sentinel modes list several URLs.
    const passwords = value.split(',').map((entry) => {
      try {
        return decodeURIComponent(new URL(entry.trim()).password);
      } catch {
        return '';
      }
    });
    if (passwords.some((password) => password && isPlaceholder(password))) found.set(path, 'has a password that is');
  }
  return found;
}

function readYaml(file: string, problems: string[]): Plain {
  try {
    const parsed: unknown = parseYaml(readFileSync(file, 'utf8'));
    if (parsed === null || parsed === undefined) return {};
    if (typeof parsed !== 'object' || Array.isArray(parsed)) {
      problems.push(`${file}: must hold a YAML mapping`);
      return {};
    }
    return parsed as Plain;
  } catch (error) {
    problems.push(`${file}: ${(error as Error).message.split('\n')[0]}`);
    return {};
  }
}

function parseEnvValue(value: string, kind: string, name: string, problems: string[]): unknown {
  switch (kind) {
    case 'int':
      // A non-numeric value stays a string so validation names the variable.
      return /^-?\d+$/.test(value.trim()) ? Number(value.trim()) : value;
    case 'list':
      return value.split(',').map((v) => v.trim()).filter(Boolean);
    case 'backends':
      return parseBackends(value, name, problems);
    default:
      return value;
  }
}

/** `a=http://127.0.0.1:9001|70,b=http://127.0.0.1:9002|30` */
export function parseBackends(value: string, name = 'BACKENDS', problems: string[] = []): Plain[] {
  const backends: Plain[] = [];
  for (const entry of value.split(',').map((v) => v.trim()).filter(Boolean)) {
    const match = /^([^=|]+)=([^|]+)(?:\|(\d+))?$/.exec(entry);
    if (!match) {
      problems.push(`${name}: "${entry}" must look like name=http://host:port|weight`);
      continue;
    }
    backends.push({ name: match[1].trim(), url: match[2].trim(), weight: match[3] ? Number(match[3]) : 1 });
  }
  return backends;
}

function requireSecrets(
  config: GatewayConfig,
  problems: string[],
  generate: boolean,
  generated: string[],
): void {
  const wanted: Array<[keyof GatewayConfig['security'], string, () => string]> = [
    ['adminToken', 'ADMIN_TOKEN', () => randomBytes(24).toString('base64url')],
    ['keyPepper', 'KEY_PEPPER', () => randomBytes(32).toString('base64url')],
    ['secretsKey', 'SECRETS_KEY', () => randomBytes(32).toString('hex')],
  ];
  const missing = wanted.filter(([key]) => !config.security[key]);
  if (missing.length === 0) return;
  if (config.env === 'production' || !generate) {
    for (const [key, envName] of missing) {
      problems.push(`${envName} (security.${key}): required${config.env === 'production' ? ' in production' : ''}`);
    }
    return;
  }
  // Dev mode: generate once and keep them beside the embedded database, so keys created in
  // one run still verify after a restart.
  const file = join(config.dataDir, 'dev-secrets.json');
  const stored = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>) : {};
  for (const [key, , make] of missing) {
    if (!stored[key]) {
      stored[key] = make();
      generated.push(key);
    }
    (config.security as unknown as Record<string, string>)[key] = stored[key];
  }
  mkdirSync(dirname(isAbsolute(file) ? file : resolve(file)), { recursive: true });
  writeFileSync(file, JSON.stringify(stored, null, 2), { mode: 0o600 });
}

function flattenErrors(errors: ValidationError[], prefix = ''): Array<{ path: string; message: string }> {
  const out: Array<{ path: string; message: string }> = [];
  for (const error of errors) {
    const path = prefix ? `${prefix}.${error.property}` : error.property;
    for (const message of Object.values(error.constraints ?? {})) {
      out.push({ path, message: message.replace(new RegExp(`^(each value in )?${error.property} `), '$1') });
    }
    if (error.children?.length) out.push(...flattenErrors(error.children, path));
  }
  return out;
}

function describe(path: string, message: string, sources: Map<string, string>): string {
  const source = sources.get(path) ?? [...sources.entries()].find(([p]) => path.startsWith(`${p}.`))?.[1];
  return source ? `${source} (${path}): ${message}` : `${path}: ${message}`;
}

function deepMerge(base: Plain, extra: Plain): Plain {
  const out: Plain = { ...base };
  for (const [key, value] of Object.entries(extra)) {
    const current = out[key];
    out[key] = isPlainObject(current) && isPlainObject(value) ? deepMerge(current, value) : value;
  }
  return out;
}

function isPlainObject(value: unknown): value is Plain {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function setPath(target: Plain, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    if (!isPlainObject(node[part])) node[part] = {};
    node = node[part] as Plain;
  }
  node[parts[parts.length - 1]] = value;
}

function setDefault(target: Plain, path: string, value: unknown): void {
  const parts = path.split('.');
  let node: unknown = target;
  for (const part of parts) node = isPlainObject(node) ? node[part] : undefined;
  if (node === undefined) setPath(target, path, value);
}
