import Redis, { Cluster, type RedisOptions } from 'ioredis';
import type { RedisConfig } from '../config/gateway-config';
import { parseRedisEndpoints } from '../config/redis-nodes';

/** What RedisService holds: one server or a Sentinel-managed master (`Redis`), or a `Cluster`. */
export type RedisClient = Redis | Cluster;

/**
 * `commands` serves the hot path and must fail fast; `subscriber` waits for messages and keeps
 * its SUBSCRIBE commands queued while Redis is away, so they are sent once it answers.
 */
export type RedisConnectionRole = 'commands' | 'subscriber';

const retryDelay = (times: number): number => Math.min(times * 200, 2_000);

/**
 * Builds the ioredis client of one role for `redis.mode`. Every mode gets the same fail-fast
 * behaviour on the command connection: no offline queue, no retries of a failed command, and
 * `commandTimeoutMs` per command, so the callers' failure policies decide at once instead of
 * requests queueing behind a dead server. Clients start lazily; RedisService connects them.
 */
export function createRedisConnection(config: RedisConfig, role: RedisConnectionRole): RedisClient {
  const url = config.url;
  if (url === undefined) throw new Error('createRedisConnection needs redis.url');
  const commands = role === 'commands';
  const perConnection: RedisOptions = {
    connectTimeout: config.connectTimeoutMs,
    // The subscriber waits for messages; only command connections get a per-command timeout.
    commandTimeout: commands ? config.commandTimeoutMs : undefined,
    maxRetriesPerRequest: commands ? 0 : null,
    connectionName: `imgproxy-gateway:${role}`,
    // Commands issued while the event loop handles one batch of I/O (many requests at once under
    // load) leave in one socket write instead of one write each: a write is a system call, and
    // per request it cost more than the Redis work itself. Each request still waits for one
    // reply per call, so its round trips do not change.
    enableAutoPipelining: commands,
  };
  // Reject commands at once while Redis is unavailable instead of queueing behind it.
  const enableOfflineQueue = !commands;

  if (config.mode === 'standalone') {
    return new Redis(url, { ...perConnection, lazyConnect: true, enableOfflineQueue, retryStrategy: retryDelay });
  }

  const endpoints = parseRedisEndpoints(url, config.mode);
  const auth = { username: endpoints.username, password: endpoints.password };
  const tls = endpoints.tls ? {} : undefined;

  if (config.mode === 'sentinel') {
    // The sentinels are asked for the current master and again after every failover. The
    // credentials and database of the URL belong to the master (sentinels are reached without
    // them); rediss:// means TLS to the sentinels and to the master alike.
    return new Redis({
      ...perConnection,
      ...auth,
      db: endpoints.db,
      sentinels: endpoints.nodes.map(({ host, port }) => ({ host, port })),
      name: config.sentinelName,
      tls,
      sentinelTLS: tls,
      enableTLSForSentinelMode: endpoints.tls,
      lazyConnect: true,
      enableOfflineQueue,
      retryStrategy: retryDelay,
      sentinelRetryStrategy: retryDelay,
    });
  }

  // Cluster: the URL lists seed nodes; the client discovers the others (CLUSTER SLOTS) and routes
  // each command to the master of its key's slot. Node connections share the per-connection
  // options; the cluster-level offline queue is what fails commands fast while it is not ready.
  // By default a command whose node is dead, or that meets CLUSTERDOWN (what every node answers
  // once a master has been unreachable for cluster-node-timeout), is retried every 100 ms until
  // commandTimeoutMs: each Redis call of a request would then cost the whole timeout. The command connection fails such a
  // command at once instead, like a standalone connection that is down; MOVED and ASK are still
  // followed, and the slot map is refreshed every slotsRefreshInterval (5 s) and on each MOVED.
  const cluster = new Cluster(
    endpoints.nodes.map(({ host, port }) => ({ host, port })),
    {
      lazyConnect: true,
      enableOfflineQueue,
      clusterRetryStrategy: retryDelay,
      retryDelayOnFailover: commands ? 0 : undefined,
      retryDelayOnClusterDown: commands ? 0 : undefined,
      slotsRefreshTimeout: config.connectTimeoutMs,
      enableAutoPipelining: commands,
      redisOptions: { ...perConnection, ...auth, tls },
    },
  );
  if (commands) {
    // ioredis opens a node's connection at the first command for it, and without the offline
    // queue refuses the commands that find it still connecting: a burst to a node would fail
    // until then. So every node is connected once the cluster is ready, and each one it learns
    // of later at once. Not before ready: the ready check (CLUSTER INFO) goes to a random node
    // and would be refused by one still connecting.
    const connectWaiting = () => {
      for (const node of cluster.nodes()) if (node.status === 'wait') node.connect().catch(() => undefined);
    };
    cluster.on('ready', connectWaiting);
    cluster.on('+node', () => {
      if (cluster.status === 'ready') connectWaiting();
    });
  }
  return cluster;
}
