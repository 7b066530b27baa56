/** How `redis.url` is read (docker/README.md: standalone, Sentinel or Cluster). */
export const REDIS_MODES = ['standalone', 'cluster', 'sentinel'] as const;
export type RedisMode = (typeof REDIS_MODES)[number];

export interface RedisNodeAddress {
  readonly host: string;
  readonly port: number;
}

/** `redis.url` split into its servers, with what they share (scheme, credentials, database). */
export interface RedisEndpoints {
  readonly nodes: readonly RedisNodeAddress[];
  readonly tls: boolean;
  readonly username?: string;
  readonly password?: string;
  readonly db: number;
}

/** The settings `redisConfigProblems` checks; a structural subset of RedisConfig. */
export interface RedisModeSettings {
  readonly url?: string;
  readonly mode: RedisMode;
  readonly sentinelName?: string;
}

const DEFAULT_PORTS: Record<RedisMode, number> = { standalone: 6379, cluster: 6379, sentinel: 26379 };

/**
 * Parses `redis://[user:pass@]host[:port][/db]` entries separated by commas. Every entry must use
 * the same scheme (one TLS setting for the whole deployment); credentials and the database may be
 * written on any entry and apply to all. Throws an Error naming the first bad entry.
 */
export function parseRedisEndpoints(url: string, mode: RedisMode = 'standalone'): RedisEndpoints {
  const entries = url.split(',').map((entry) => entry.trim()).filter(Boolean);
  if (entries.length === 0) throw new Error('lists no server');
  const nodes: RedisNodeAddress[] = [];
  const schemes = new Set<string>();
  let username: string | undefined;
  let password: string | undefined;
  let db = 0;
  for (const entry of entries) {
    let parsed: URL;
    try {
      parsed = new URL(entry);
    } catch {
      throw new Error(`"${entry}" is not a URL`);
    }
    if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw new Error(`"${entry}" must be a redis:// or rediss:// URL`);
    // WHATWG URL keeps IPv6 hosts bracketed; sockets want them bare.
    const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
    if (!host) throw new Error(`"${entry}" has no host`);
    const port = parsed.port ? Number(parsed.port) : DEFAULT_PORTS[mode];
    schemes.add(parsed.protocol);
    if (parsed.username) username = decodeURIComponent(parsed.username);
    if (parsed.password) password = decodeURIComponent(parsed.password);
    const path = parsed.pathname.replace(/^\//, '');
    if (path !== '') {
      if (!/^\d+$/.test(path)) throw new Error(`"${entry}": the path must be a database number`);
      db = Number(path);
    }
    nodes.push({ host, port });
  }
  if (schemes.size > 1) throw new Error('mixes redis:// and rediss://; every server is reached the same way');
  return { nodes, tls: schemes.has('rediss:'), username, password, db };
}

/** Rules between `redis.url`, `redis.mode` and `redis.sentinelName`, in the loader's message format. */
export function redisConfigProblems(redis: RedisModeSettings): string[] {
  const url = 'REDIS_URL (redis.url)';
  const mode = 'REDIS_MODE (redis.mode)';
  if (redis.url === undefined) {
    return redis.mode === 'standalone' ? [] : [`${url}: required when ${mode} is ${redis.mode}`];
  }
  const problems: string[] = [];
  let endpoints: RedisEndpoints | undefined;
  try {
    endpoints = parseRedisEndpoints(redis.url, redis.mode);
  } catch (error) {
    problems.push(`${url}: ${(error as Error).message}`);
  }
  if (endpoints && redis.mode === 'standalone' && endpoints.nodes.length > 1) {
    problems.push(`${url}: lists ${endpoints.nodes.length} servers; a list needs ${mode} = cluster (seed nodes) or sentinel (the sentinels)`);
  }
  if (endpoints && redis.mode === 'cluster' && endpoints.db !== 0) {
    problems.push(`${url}: Redis Cluster has only database 0, not ${endpoints.db}`);
  }
  if (redis.mode === 'sentinel' && !redis.sentinelName) {
    problems.push(`REDIS_SENTINEL_NAME (redis.sentinelName): required when ${mode} is sentinel (the name of "sentinel monitor <name> …")`);
  }
  return problems;
}
