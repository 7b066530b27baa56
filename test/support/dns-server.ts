import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import * as dnsPacket from 'dns-packet';

export interface SrvRecord {
  priority: number;
  weight: number;
  port: number;
  target: string;
}

/** The records of one name; a type left out answers NOERROR with no records (NODATA). */
export interface NameRecords {
  A?: string[];
  AAAA?: string[];
  SRV?: SrvRecord[];
}

type Answerable = keyof NameRecords;

/** How the server treats a query: answer, SERVFAIL, or stay silent (the client times out). */
export type DnsFailure = 'servfail' | 'silent';

const NXDOMAIN = 3;
const SERVFAIL = 2;

/**
 * A tiny authoritative DNS server of the test's own (UDP on 127.0.0.1, dns-packet): it answers
 * A, AAAA and SRV from a table the test changes between refreshes, answers NXDOMAIN for names it
 * does not hold, and can be told to fail every query, or the queries of one type.
 */
export class DnsServer {
  private readonly zone = new Map<string, NameRecords>();
  /** Failure for every query, or per record type. */
  failure?: DnsFailure;
  readonly failingTypes = new Map<Answerable, DnsFailure>();
  /** Queries received, by type. */
  readonly queries = new Map<string, number>();

  private constructor(
    private readonly socket: Socket,
    /** `127.0.0.1:<port>`, the form `discovery.resolver` takes. */
    readonly address: string,
  ) {}

  static async start(): Promise<DnsServer> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const { port } = socket.address() as AddressInfo;
    const server = new DnsServer(socket, `127.0.0.1:${port}`);
    socket.on('message', (message, remote) => server.answer(message, remote));
    return server;
  }

  /** Replaces the records of a name. */
  set(name: string, records: NameRecords): void {
    this.zone.set(normalise(name), records);
  }

  /** The name no longer exists (NXDOMAIN). */
  remove(name: string): void {
    this.zone.delete(normalise(name));
  }

  count(type: Answerable): number {
    return this.queries.get(type) ?? 0;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }

  private answer(message: Buffer, remote: RemoteInfo): void {
    let query: dnsPacket.DecodedPacket;
    try {
      query = dnsPacket.decode(message);
    } catch {
      return;
    }
    const [question] = query.questions ?? [];
    if (!question) return;
    const type = question.type as Answerable;
    this.queries.set(type, (this.queries.get(type) ?? 0) + 1);
    const failure = this.failingTypes.get(type) ?? this.failure;
    if (failure === 'silent') return;

    const records = this.zone.get(normalise(question.name));
    let rcode = 0;
    const answers: dnsPacket.Answer[] = [];
    if (failure === 'servfail') rcode = SERVFAIL;
    else if (!records) rcode = NXDOMAIN;
    else if (type === 'A' || type === 'AAAA') {
      for (const data of records[type] ?? []) answers.push({ type, name: question.name, ttl: 5, class: 'IN', data });
    } else if (type === 'SRV') {
      for (const data of records.SRV ?? []) answers.push({ type: 'SRV', name: question.name, ttl: 5, class: 'IN', data });
    }
    const response = dnsPacket.encode({
      id: query.id,
      type: 'response',
      flags: dnsPacket.AUTHORITATIVE_ANSWER | ((query.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | rcode,
      questions: [question],
      answers,
    });
    this.socket.send(response, remote.port, remote.address);
  }
}

function normalise(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}
