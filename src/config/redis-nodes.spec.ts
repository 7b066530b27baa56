import { ConfigError, loadConfig } from './config.loader';
import { parseRedisEndpoints, redisConfigProblems } from './redis-nodes';

const secrets = { ADMIN_TOKEN: 'admin-token-0123456789', KEY_PEPPER: 'pepper-0123456789abcdef', SECRETS_KEY: 'ab'.repeat(32) };

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig({ env: { ...secrets, ...env } });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('parseRedisEndpoints', () => {
  it('splits seed nodes and keeps what they share', () => {
    expect(parseRedisEndpoints('redis://:s%40cret@10.0.0.1:6379, redis://10.0.0.2:6380,redis://[::1]', 'cluster')).toEqual({
      nodes: [
        { host: '10.0.0.1', port: 6379 },
        { host: '10.0.0.2', port: 6380 },
        { host: '::1', port: 6379 },
      ],
      tls: false,
      username: undefined,
      password: 's@cret',
      db: 0,
    });
  });

  it('defaults to the sentinel port and reads TLS, user and database', () => {
    expect(parseRedisEndpoints('rediss://app:pw@s1/2,rediss://s2:5000', 'sentinel')).toEqual({
      nodes: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 5000 },
      ],
      tls: true,
      username: 'app',
      password: 'pw',
      db: 2,
    });
  });

  it('names a bad entry', () => {
    expect(() => parseRedisEndpoints('redis://a:6379,http://b:6379')).toThrow('"http://b:6379" must be a redis:// or rediss:// URL');
    expect(() => parseRedisEndpoints('redis://a,rediss://b')).toThrow('mixes redis:// and rediss://');
    expect(() => parseRedisEndpoints('redis://a/x')).toThrow('the path must be a database number');
    expect(() => parseRedisEndpoints(' , ')).toThrow('lists no server');
  });
});

describe('redis.mode at boot', () => {
  it('reads REDIS_MODE and REDIS_SENTINEL_NAME', () => {
    const { config } = loadConfig({
      env: { ...secrets, REDIS_MODE: 'sentinel', REDIS_URL: 'redis://s1:26379,redis://s2:26379', REDIS_SENTINEL_NAME: 'mymaster' },
    });
    expect(config.redis).toMatchObject({ mode: 'sentinel', url: 'redis://s1:26379,redis://s2:26379', sentinelName: 'mymaster' });
    expect(loadConfig({ env: { ...secrets } }).config.redis.mode).toBe('standalone');
  });

  it('stops the start with a message naming the key', () => {
    expect(problemsOf({ REDIS_MODE: 'replicated' })).toEqual([
      'REDIS_MODE (redis.mode): must be one of the following values: standalone, cluster, sentinel',
    ]);
    expect(problemsOf({ REDIS_URL: 'redis://a:6379,redis://b:6379' })).toEqual([
      'REDIS_URL (redis.url): lists 2 servers; a list needs REDIS_MODE (redis.mode) = cluster (seed nodes) or sentinel (the sentinels)',
    ]);
    expect(problemsOf({ REDIS_MODE: 'cluster' })).toEqual(['REDIS_URL (redis.url): required when REDIS_MODE (redis.mode) is cluster']);
    expect(problemsOf({ REDIS_MODE: 'cluster', REDIS_URL: 'redis://a:6379/3,redis://b:6379' })).toEqual([
      'REDIS_URL (redis.url): Redis Cluster has only database 0, not 3',
    ]);
    expect(problemsOf({ REDIS_MODE: 'sentinel', REDIS_URL: 'redis://s1:26379' })).toEqual([
      'REDIS_SENTINEL_NAME (redis.sentinelName): required when REDIS_MODE (redis.mode) is sentinel (the name of "sentinel monitor <name> …")',
    ]);
    expect(problemsOf({ REDIS_MODE: 'cluster', REDIS_URL: 'redis://a:6379,redis://b:99999' })).toEqual([
      'REDIS_URL (redis.url): "redis://b:99999" is not a URL',
    ]);
  });

  it('accepts one server in standalone mode, as before', () => {
    expect(redisConfigProblems({ mode: 'standalone', url: 'redis://cache:6379/1' })).toEqual([]);
    expect(redisConfigProblems({ mode: 'standalone' })).toEqual([]);
  });
});
