import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  MinLength,
  ValidateNested,
} from 'class-validator';
import { IsCidr } from '../common/net/is-cidr.validator';
import { REDIS_MODES, type RedisMode } from './redis-nodes';
import { JwtAuthConfig } from './jwt-auth.config';
import { ImageRoutesConfig, RouteConfig, type UpstreamConfig } from './routes.config';

/**
 * The whole configuration, validated once at boot. Every other module receives the typed
 * instance and trusts it: nothing on the request path re-checks a configured value.
 */
export class ServerConfig {
  @IsInt() @Min(0) @Max(65535) port = 8080;
  @IsString() @MinLength(1) host = '0.0.0.0';
  /** Socket addresses whose X-Forwarded-For is believed (docs/proxy-and-backends.md). Empty: never. */
  @IsArray() @IsCidr({ each: true }) trustedProxies: string[] = [];
  /** How long a SIGTERM waits for in-flight requests before closing their connections. */
  @IsInt() @Min(0) @Max(600_000) shutdownTimeoutMs = 25_000;
  /** Largest JSON body the admin API accepts. Uploads and proxied bodies have their own limits. */
  @IsInt() @Min(1024) jsonBodyLimitBytes = 1_048_576;
  /** Reload routes and upstreams when a configuration file changes (SIGHUP always reloads). */
  @IsBoolean() watchConfigFiles = true;
  /**
   * Worker processes on one port (node:cluster): 1 runs the gateway in this process; more fork
   * that many workers, each a whole gateway, with /metrics merged (docs/performance.md).
   */
  @IsInt() @Min(1) @Max(64) workers = 1;
}

export class DatabaseConfig {
  /** postgres://… ; when absent an embedded PostgreSQL (PGlite) under `embeddedDir` is used. */
  @IsOptional() @IsString() @Matches(/^postgres(ql)?:\/\//, { message: 'must be a postgres:// URL' })
  url?: string;
  /** Defaults to `<dataDir>/pg` (filled in by the loader). */
  @IsString() @MinLength(1) embeddedDir: string;
  @IsBoolean() migrationsRun = true;
  @IsInt() @Min(1) @Max(100) poolSize = 10;
  @IsInt() @Min(100) statementTimeoutMs = 10_000;
}

export class RedisConfig {
  /**
   * redis://… ; when absent the gateway keeps counters in process (one instance only). In
   * `cluster` mode a comma-separated list of seed nodes, in `sentinel` mode the sentinels (each
   * list is checked entry by entry in config.loader.ts).
   */
  @IsOptional() @IsString() @Matches(/^rediss?:\/\//, { message: 'must be a redis:// or rediss:// URL' })
  url?: string;
  /** How `url` is read: one server, the seeds of a Redis Cluster, or the sentinels of a master set. */
  @IsIn(REDIS_MODES) mode: RedisMode = 'standalone';
  /** The master set the sentinels watch (`sentinel monitor <name> …`); required in `sentinel` mode. */
  @IsOptional() @IsString() @MinLength(1) @MaxLength(128) sentinelName?: string;
  /** Prefix of every key and channel, so several deployments (or test runs) share one Redis. */
  @IsString() @MinLength(1) @MaxLength(64) keyPrefix = 'igw:';
  /** Hot-path commands fail fast instead of queueing behind a dead connection. */
  @IsInt() @Min(10) @Max(60_000) commandTimeoutMs = 500;
  @IsInt() @Min(10) @Max(60_000) connectTimeoutMs = 2_000;
}

export class SecurityConfig {
  /** Bearer token of the admin API. Required in production; generated in dev mode. */
  @IsOptional() @IsString() @MinLength(16) adminToken?: string;
  /** Server-side pepper of the API-key HMAC. Required in production. */
  @IsOptional() @IsString() @MinLength(16) keyPepper?: string;
  /** 32-byte key (64 hex chars) encrypting signing keys at rest. Required in production. */
  @IsOptional() @Matches(/^[0-9a-fA-F]{64}$/, { message: 'must be 64 hex characters (32 bytes)' })
  secretsKey?: string;
  /** Accept `?api_key=` on proxied requests. Off: URLs end up in logs and referrers. */
  @IsBoolean() allowQueryKey = false;
  /** Seconds a verified key (or an unknown key id) stays in the in-process cache. */
  @IsInt() @Min(1) @Max(3600) keyCacheTtlSeconds = 60;
  /** Verified keys kept in process (LRU); unknown key ids have a cache of the same size of their own. */
  @IsInt() @Min(1) @Max(1_000_000) keyCacheMaxEntries = 10_000;
  /** api_keys.last_used_at is written in one batch this often (and at shutdown), never per request. */
  @IsInt() @Min(1) @Max(3600) lastUsedFlushSeconds = 5;
  /** Global deny list applied before authentication (docs/tenants-and-keys.md). */
  @IsArray() @IsCidr({ each: true }) ipDenyList: string[] = [];
}

export class ImgproxyConfig {
  /** The backends' IMGPROXY_KEY (hex). Without it, upstream URLs use `insecure`. */
  @IsOptional() @Matches(/^([0-9a-fA-F]{2})+$/, { message: 'must be hex' }) key?: string;
  @IsOptional() @Matches(/^([0-9a-fA-F]{2})+$/, { message: 'must be hex' }) salt?: string;
  /** Sent upstream as `Authorization: Bearer` (imgproxy's IMGPROXY_SECRET). */
  @IsOptional() @IsString() @MinLength(1) secret?: string;
  /** Remote source prefixes every tenant may fetch from, e.g. `https://cdn.example.com/`. */
  @IsArray() @IsString({ each: true }) allowedSources: string[] = [];
  @IsBoolean() allowPrivateSourceAddresses = false;
  @IsArray() @IsIn(['local', 'http', 'https', 's3', 'gs', 'abs', 'swift'], { each: true })
  allowedSchemes: string[] = ['local', 'http', 'https'];
  /**
   * The imgproxy major version the backends run: the gateway accepts exactly the processing
   * options (names and argument shapes) that version's parser accepts (docs/imgproxy.md).
   */
  @IsIn([3, 4]) version: 3 | 4 = 3;
  /** The backends run imgproxy Pro: its option names pass, and per-tenant watermark images work. */
  @IsBoolean() pro = false;
  /** More option names to pass as they are (a newer imgproxy, a Pro option the gateway does not list). */
  @IsArray() @ArrayMaxSize(200) @Matches(/^[A-Za-z0-9_-]{1,64}$/, { each: true, message: 'each entry must be an option name like rs or watermark_url' })
  extraOptions: string[] = [];
}

export class UploadsConfig {
  /** Shared with imgproxy as IMGPROXY_LOCAL_FILESYSTEM_ROOT. */
  /** Defaults to `<dataDir>/uploads` (filled in by the loader). */
  @IsString() @MinLength(1) root: string;
  /** Largest upload request body, multipart framing included. */
  @IsInt() @Min(1) maxBytes = 20 * 1024 * 1024;
  /** Largest image (width × height of one frame, from its header) an upload may hold. */
  @IsInt() @Min(1) maxPixels = 50_000_000;
  @IsBoolean() allowSvg = false;
  /** Processing options of the ready signed URL an upload answers with, e.g. `rs:fit:1024:1024/q:80`. */
  @IsString()
  @Matches(/^(?:[A-Za-z0-9_]+:[^/?#@\s]*(?:\/[A-Za-z0-9_]+:[^/?#@\s]*)*)?$/, {
    message: 'must be imgproxy processing options like rs:fit:1024:1024/q:80',
  })
  signedUrlOptions = 'rs:fit:1024:1024';
}

export class BackendSeedConfig {
  @IsString() @Matches(/^[A-Za-z0-9._-]{1,64}$/, { message: 'must be 1-64 of [A-Za-z0-9._-]' })
  name: string;
  @IsString() @Matches(/^https?:\/\/[^\s]+$/, { message: 'must be an http(s) URL' }) url: string;
  @IsInt() @Min(0) @Max(100) weight = 1;
  @IsBoolean() enabled = true;
  @IsString() @Matches(/^[A-Za-z0-9._-]{1,64}$/) pool = 'imgproxy';
}

export class HealthCheckConfig {
  @IsInt() @Min(1) @Max(86_400) intervalSeconds = 30;
  @IsInt() @Min(1) @Max(300) timeoutSeconds = 5;
  @IsString() @Matches(/^\//, { message: 'must start with /' }) path = '/health';
  @IsInt() @Min(1) @Max(100) unhealthyThreshold = 3;
  @IsInt() @Min(1) @Max(100) healthyThreshold = 2;
}

export class CircuitBreakerConfig {
  @IsInt() @Min(1) @Max(1000) failureThreshold = 5;
  @IsInt() @Min(1) @Max(3600) cooldownSeconds = 30;
}

export class ProxyConfig {
  @IsInt() @Min(10) connectTimeoutMs = 2_000;
  @IsInt() @Min(10) headersTimeoutMs = 30_000;
  /** Longest silence while a body streams, either way. */
  @IsInt() @Min(10) bodyIdleTimeoutMs = 30_000;
  @IsInt() @Min(0) @Max(10) retries = 2;
  @IsInt() @Min(0) retryBackoffMs = 50;
  /** Ceiling of the jittered backoff window between failover attempts. */
  @IsInt() @Min(0) @Max(60_000) retryBackoffCapMs = 1_000;
  /** Backstop reload of the backends table, should a `backends-changed` message be lost. */
  @IsInt() @Min(1) @Max(86_400) backendsReloadSeconds = 30;
  /** Largest request body forwarded on `/i/*` (most image requests have none). */
  @IsInt() @Min(0) maxRequestBodyBytes = 20 * 1024 * 1024;
  @IsInt() @Min(1) @Max(10_000) connectionsPerBackend = 128;
  @ValidateNested() @Type(() => CircuitBreakerConfig) circuitBreaker = new CircuitBreakerConfig();
}

/** The response cache (docs/cache.md). */
export class CacheConfig {
  /** Caches the image routes' GET/HEAD responses; routes from config opt in with `cache: { ttlSeconds }`. */
  @IsBoolean() enabled = true;
  /** Memory tier budget, counted apart from the gateway's own memory. Also bounds bodies held while they stream. */
  @IsInt() @Min(1_048_576) memoryMaxBytes = 64 * 1024 * 1024;
  /** Larger responses stream through without being stored. */
  @IsInt() @Min(1024) @Max(1024 * 1024 * 1024) maxEntryBytes = 8 * 1024 * 1024;
  /** Lifetime of an entry whose response names none, and the ceiling of the one it names. */
  @IsInt() @Min(1) @Max(31_536_000) defaultTtlSeconds = 3600;
  /** Directory of the disk tier (one gateway process per directory); no disk tier when unset. */
  @IsOptional() @IsString() @MinLength(1) dir?: string;
  /** Disk tier budget (file bytes); the least recently used files go first. */
  @IsInt() @Min(1_048_576) diskMaxBytes = 10 * 1024 * 1024 * 1024;
}

export class WindowLimitConfig {
  @IsOptional() @IsInt() @Min(1) perMinute?: number;
  @IsOptional() @IsInt() @Min(1) perHour?: number;
  /** Bucket capacity; defaults to the per-window figure. */
  @IsOptional() @IsInt() @Min(1) burst?: number;
}

function perMinute(value: number): WindowLimitConfig {
  return Object.assign(new WindowLimitConfig(), { perMinute: value });
}

/**
 * One route's limits (docs/rate-limits-and-quotas.md). The window figures are the route's capacity,
 * one bucket shared by every caller: when it runs out the answer is 503 `unavailable`, since the
 * service is full and the caller did nothing wrong. `perCaller` adds a bucket per tenant on this
 * route (429 `rate_limited`, scope `route`). `policy` says how the buckets are kept: `exact` (one
 * atomic Redis call per request) or `local-sync` (counted in process, synced every
 * `rateLimit.localSync.intervalMs`).
 */
export class RouteLimitConfig extends WindowLimitConfig {
  @IsOptional() @ValidateNested() @Type(() => WindowLimitConfig) perCaller?: WindowLimitConfig;
  @IsIn(['exact', 'local-sync']) policy: 'exact' | 'local-sync' = 'exact';
}

function routeLimit(capacityPerMinute: number, perCallerPerMinute?: number): RouteLimitConfig {
  const limit = Object.assign(new RouteLimitConfig(), { perMinute: capacityPerMinute });
  if (perCallerPerMinute !== undefined) limit.perCaller = perMinute(perCallerPerMinute);
  return limit;
}

/**
 * The routes of the Nest controllers (`@RateLimitRoute(name)`). Capacities default to 4x the
 * largest plan's per-minute figure, so no tenant within its plan can fill one alone.
 */
export class RouteLimitsConfig {
  @ValidateNested() @Type(() => RouteLimitConfig) proxy = routeLimit(20_000);
  /** Uploads cost disk and CPU: each tenant gets its own share besides the shared capacity. */
  @ValidateNested() @Type(() => RouteLimitConfig) upload = routeLimit(20_000, 600);
}

export class LocalSyncConfig {
  /** How often `local-sync` buckets are written to Redis and read back. */
  @IsInt() @Min(100) @Max(1000) intervalMs = 200;
}

export class RateLimitConfig {
  @IsBoolean() enabled = true;
  /**
   * The client IP's bucket on the pre-authentication path only: requests without a key, with an
   * unknown key, a wrong secret or a bad signature, key-cache misses, and open routes.
   */
  @ValidateNested() @Type(() => WindowLimitConfig) ip = perMinute(100);
  /** A per-IP cap on authenticated requests as well; off (empty) by default. */
  @ValidateNested() @Type(() => WindowLimitConfig) ipAuthenticated = new WindowLimitConfig();
  @ValidateNested() @Type(() => RouteLimitsConfig) routes = new RouteLimitsConfig();
  @ValidateNested() @Type(() => LocalSyncConfig) localSync = new LocalSyncConfig();
  @IsIn(['local', 'allow', 'deny']) onStoreFailure: 'local' | 'allow' | 'deny' = 'local';
}

export class PlanSeedConfig {
  @IsString() @Matches(/^[a-z0-9-]{1,32}$/) name: string;
  @IsOptional() @IsString() @MaxLength(500) description?: string;
  @IsInt() @Min(1) perMinute: number;
  @IsInt() @Min(1) perHour: number;
  /** Bucket capacity; defaults to the per-window figure. */
  @IsOptional() @IsInt() @Min(1) burst?: number;
  @IsInt() @Min(1) monthlyRequests: number;
  @IsOptional() @IsInt() @Min(1) dailyRequests?: number;
  @IsInt() @Min(1) monthlyBandwidthBytes: number;
  @IsInt() @Min(1) storageBytes: number;
  /** The plan's image policy (docs/imgproxy.md); checked in full when the plans are seeded. */
  @IsOptional() @IsObject() imagePolicy?: Record<string, unknown>;
}

export class UsageConfig {
  /** Each instance writes its counts to PostgreSQL this often; a crash loses at most this much. */
  @IsInt() @Min(1) @Max(3600) flushIntervalSeconds = 5;
  /** Bytes, renders and refunds reach the shared month view in batches this often. */
  @IsInt() @Min(10) @Max(250) batchIntervalMs = 250;
}

export class RequestLogsConfig {
  @IsBoolean() enabled = true;
  @IsInt() @Min(1) @Max(3650) retentionDays = 30;
  @IsInt() @Min(10) queueSize = 10_000;
  @IsInt() @Min(1) @Max(5000) batchSize = 500;
  @IsInt() @Min(10) flushIntervalMs = 1_000;
}

export class MetricsConfig {
  @IsBoolean() perTenant = false;
  /** When set, /metrics requires `Authorization: Bearer <token>`. */
  @IsOptional() @IsString() @MinLength(8) token?: string;
}

/** OpenTelemetry span export (OTLP/HTTP); off, at no cost, while `otlpEndpoint` is unset. */
export class TracingConfig {
  /** Collector base URL (OTEL_EXPORTER_OTLP_ENDPOINT); spans go to `<otlpEndpoint>/v1/traces`. */
  @IsOptional() @IsString() @Matches(/^https?:\/\/[^\s]+$/, { message: 'must be an http(s) URL' }) otlpEndpoint?: string;
  @IsString() @MinLength(1) @MaxLength(128) serviceName = 'imgproxy-gateway';
}

export class LoggingConfig {
  @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) level = 'info';
}

/** Credentials other than API keys and signed URLs (docs/routes.md). */
export class AuthConfig {
  /** Bearer JWTs for routes with `auth: jwt`. */
  @IsOptional() @ValidateNested() @Type(() => JwtAuthConfig) jwt?: JwtAuthConfig;
}

export class GatewayConfig {
  @IsIn(['development', 'production', 'test']) env: 'development' | 'production' | 'test' = 'development';
  /** Where the embedded database, generated dev secrets and default uploads live. */
  @IsString() @MinLength(1) dataDir = './data';
  @ValidateNested() @Type(() => ServerConfig) server = new ServerConfig();
  @ValidateNested() @Type(() => DatabaseConfig) database = new DatabaseConfig();
  @ValidateNested() @Type(() => RedisConfig) redis = new RedisConfig();
  @ValidateNested() @Type(() => SecurityConfig) security = new SecurityConfig();
  @ValidateNested() @Type(() => ImgproxyConfig) imgproxy = new ImgproxyConfig();
  @ValidateNested() @Type(() => UploadsConfig) uploads = new UploadsConfig();
  @IsArray() @ArrayMaxSize(1000) @ValidateNested({ each: true }) @Type(() => BackendSeedConfig)
  backends: BackendSeedConfig[] = [];
  @ValidateNested() @Type(() => HealthCheckConfig) healthCheck = new HealthCheckConfig();
  @ValidateNested() @Type(() => ProxyConfig) proxy = new ProxyConfig();
  @ValidateNested() @Type(() => RateLimitConfig) rateLimit = new RateLimitConfig();
  @ValidateNested() @Type(() => CacheConfig) cache = new CacheConfig();
  @IsArray() @ValidateNested({ each: true }) @Type(() => PlanSeedConfig) plans: PlanSeedConfig[] = [];
  @IsString() defaultPlan = 'free';
  @ValidateNested() @Type(() => UsageConfig) usage = new UsageConfig();
  @ValidateNested() @Type(() => RequestLogsConfig) requestLogs = new RequestLogsConfig();
  @ValidateNested() @Type(() => MetricsConfig) metrics = new MetricsConfig();
  @ValidateNested() @Type(() => TracingConfig) tracing = new TracingConfig();
  @ValidateNested() @Type(() => LoggingConfig) logging = new LoggingConfig();
  /** Routes to any upstream (docs/routes.md); the image routes are built in. */
  @IsArray() @ArrayMaxSize(1000) @ValidateNested({ each: true }) @Type(() => RouteConfig) routes: RouteConfig[] = [];
  /** Upstream name → upstream; each entry is validated by the loader (a map has no element type here). */
  @IsObject() upstreams: Record<string, UpstreamConfig> = {};
  /** CORS, limits and header rules of the built-in image routes. */
  @ValidateNested() @Type(() => ImageRoutesConfig) imageRoutes = new ImageRoutesConfig();
  @ValidateNested() @Type(() => AuthConfig) auth = new AuthConfig();
}
