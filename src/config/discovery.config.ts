import { isIP } from 'node:net';
import { IsIn, IsInt, IsOptional, IsString, Matches, Max, MaxLength, Min, ValidateIf, registerDecorator } from 'class-validator';

const HOSTNAME = /^(?=.{1,253}\.?$)(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.?$/;
const SRV_NAME = /^_[A-Za-z0-9-]{1,62}\._(?:tcp|udp)\.(?=.{1,240}\.?$)(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.?$/;

/**
 * DNS discovery of an upstream's backends (`discovery:`, docs/routes.md "DNS discovery"): either
 * `dns` (A and AAAA of one name, every address on `port`) or `srv` (targets, ports and weights from
 * SRV records). Validated once with the rest of the configuration.
 */
export class DiscoveryConfig {
  /** A name whose A/AAAA records are the backends, e.g. a Kubernetes headless service. */
  // Checked when set, and when srv is missing too, so "neither" is reported.
  @ValidateIf((o: DiscoveryConfig) => o.dns !== undefined || o.srv === undefined)
  @Coherent('source')
  @IsString()
  @Matches(HOSTNAME, { message: 'must be a DNS name' })
  dns?: string;

  /** `_service._proto.name`, e.g. `_http._tcp.users.service.consul`. */
  @IsOptional() @IsString() @Matches(SRV_NAME, { message: 'must be an SRV name like _http._tcp.users.internal' }) srv?: string;

  /** Port of every address found for `dns` (required there; SRV records carry their own). */
  @ValidateIf((o: DiscoveryConfig) => o.port !== undefined || o.dns !== undefined)
  @Coherent('port')
  @IsInt()
  @Min(1)
  @Max(65_535)
  port?: number;

  @IsInt() @Min(1) @Max(86_400) intervalSeconds = 10;

  /**
   * DNS servers to ask instead of the system's: `host[:port]`, comma-separated; IPv6 as
   * `[2001:db8::53]:53`. Addresses only (the resolver of a resolver would be the system's).
   */
  @IsOptional() @IsString() @MaxLength(1024) @IsResolverList() resolver?: string;

  /** One DNS query attempt; two attempts per query. */
  @IsInt() @Min(50) @Max(30_000) timeoutMs = 2_000;

  /** Scheme of the backend URLs built from the addresses. */
  @IsIn(['http', 'https']) scheme: 'http' | 'https' = 'http';

  /**
   * What an empty answer (NXDOMAIN, or no records) does to a non-empty set: `keep` it (default:
   * a flapping or misconfigured zone must not take the upstream down; health checks take dead
   * addresses out of rotation), or `clear` it (an upstream scaled to zero really has no backend).
   */
  @IsIn(['keep', 'clear']) onEmpty: 'keep' | 'clear' = 'keep';
}

/** `discovery.resolver` as the list node's Resolver.setServers takes, or the problem with it. */
export function parseResolverList(value: string): { servers: string[] } | { problem: string } {
  const servers = value
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  if (servers.length === 0) return { problem: 'must name at least one DNS server' };
  for (const server of servers) {
    const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(server);
    const hostPort = /^([^:]+)(?::(\d{1,5}))?$/.exec(server);
    const [host, port] = bracketed ? [bracketed[1], bracketed[2]] : hostPort ? [hostPort[1], hostPort[2]] : [server, undefined];
    const family = isIP(host);
    const validPort = port === undefined || (Number(port) >= 1 && Number(port) <= 65_535);
    if (!family || !validPort || (family === 4 && bracketed)) {
      return { problem: `"${server}" must be an IP address with an optional port (127.0.0.1:5353, [::1]:53)` };
    }
  }
  return { servers };
}

function IsResolverList(): PropertyDecorator {
  return (target, propertyName) =>
    registerDecorator({
      name: 'isResolverList',
      target: target.constructor,
      propertyName: propertyName as string,
      options: {
        message: (args) => {
          const parsed = typeof args.value === 'string' ? parseResolverList(args.value) : { problem: 'must be a string' };
          return `$property ${'problem' in parsed ? parsed.problem : ''}`;
        },
      },
      validator: { validate: (value: unknown) => typeof value === 'string' && 'servers' in parseResolverList(value) },
    });
}

/** The cross-field rules of a discovery block; empty when it is coherent. */
export function discoveryProblems(config: Pick<DiscoveryConfig, 'dns' | 'srv' | 'port'>, rule?: 'source' | 'port'): string[] {
  const problems: string[] = [];
  if (rule !== 'port' && (config.dns === undefined) === (config.srv === undefined)) problems.push('exactly one of dns and srv must be set');
  if (rule !== 'source') {
    if (config.dns !== undefined && config.port === undefined) problems.push('port is required with dns');
    if (config.srv !== undefined && config.port !== undefined) problems.push('port must not be set with srv (SRV records carry the ports)');
  }
  return problems;
}

function Coherent(rule: 'source' | 'port'): PropertyDecorator {
  return (target, propertyName) =>
    registerDecorator({
      name: `discovery${rule === 'source' ? 'Source' : 'Port'}`,
      target: target.constructor,
      propertyName: propertyName as string,
      options: { message: (args) => discoveryProblems(args.object as DiscoveryConfig, rule).join('; ') },
      validator: { validate: (_value: unknown, args) => discoveryProblems(args?.object as DiscoveryConfig, rule).length === 0 },
    });
}
