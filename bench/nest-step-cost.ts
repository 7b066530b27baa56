/**
 * What a step costs as a Nest guard or interceptor, against the same logic called as a plain
 * method (how the compiled chain calls it): `node dist/bench/nest-step-cost.js`. One Nest
 * application on Fastify with three routes: no step, four no-op guards plus one no-op
 * interceptor, and one plain handler making the same five calls directly. Requests come from
 * autocannon in this process at a fixed rate, interleaved; the application runs in a child
 * process whose own CPU time is read before and after each round. 127.0.0.1 only, ~30 s.
 */
import 'reflect-metadata';
import { fork } from 'node:child_process';
import { Controller, Get, Injectable, Module, UseGuards, UseInterceptors } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import autocannon from 'autocannon';

const ROUTES = ['/bare', '/nest-steps', '/plain-steps'] as const;
const ROUNDS = 3;
const SECONDS = 3;

interface Usage {
  cpuMicros: number;
}

async function serve(): Promise<void> {
  @Injectable()
  class Pass {
    canActivate(): boolean {
      return true;
    }
    check(): boolean {
      return true;
    }
  }

  @Injectable()
  class Through {
    intercept(_context: unknown, next: { handle(): unknown }): unknown {
      return next.handle();
    }
    check(): boolean {
      return true;
    }
  }

  const pass = new Pass();
  const through = new Through();

  @Controller()
  class Probe {
    @Get('bare')
    bare(): string {
      return 'ok';
    }

    @Get('nest-steps')
    @UseGuards(Pass, Pass, Pass, Pass)
    @UseInterceptors(Through)
    steps(): string {
      return 'ok';
    }

    @Get('plain-steps')
    plain(): string {
      if (pass.check() && pass.check() && pass.check() && pass.check() && through.check()) return 'ok';
      return 'no';
    }
  }

  @Module({ controllers: [Probe], providers: [Pass, Through] })
  class ProbeModule {}

  const app = await NestFactory.create(ProbeModule, new FastifyAdapter(), { logger: false });
  await app.listen(0, '127.0.0.1');
  const address = app.getHttpServer().address() as { port: number };
  process.on('message', (message: { type: string }) => {
    if (message.type === 'usage') {
      const cpu = process.cpuUsage();
      process.send?.({ type: 'usage', cpuMicros: cpu.user + cpu.system });
    } else if (message.type === 'stop') void app.close().then(() => process.exit(0));
  });
  process.send?.({ type: 'ready', port: address.port });
}

async function main(): Promise<void> {
  const child = fork(__filename, ['serve']);
  const port = await new Promise<number>((resolve) => child.once('message', (m: { port: number }) => resolve(m.port)));
  const usage = () => new Promise<Usage>((resolve) => {
    child.once('message', (m: Usage) => resolve(m));
    child.send({ type: 'usage' });
  });
  const totals = new Map<string, { requests: number; cpuMicros: number }>(ROUTES.map((r) => [r, { requests: 0, cpuMicros: 0 }]));
  for (const route of ROUTES) await autocannon({ url: `http://127.0.0.1:${port}${route}`, connections: 8, duration: 1 });
  for (let round = 0; round < ROUNDS; round++) {
    for (const route of ROUTES) {
      const before = await usage();
      const result = await autocannon({ url: `http://127.0.0.1:${port}${route}`, connections: 8, duration: SECONDS, overallRate: 4000 });
      const after = await usage();
      const total = totals.get(route)!;
      total.requests += result.requests.total;
      total.cpuMicros += after.cpuMicros - before.cpuMicros;
    }
  }
  child.send({ type: 'stop' });
  const per = (route: string) => totals.get(route)!.cpuMicros / totals.get(route)!.requests;
  const bare = per('/bare');
  const nest = per('/nest-steps');
  const plain = per('/plain-steps');
  process.stdout.write(
    `CPU µs per request: bare ${bare.toFixed(1)}, 4 guards + 1 interceptor ${nest.toFixed(1)}, the same 5 calls as plain methods ${plain.toFixed(1)}\n` +
      `Nest execution context per step: ${((nest - bare) / 5).toFixed(1)} µs; a plain method call per step: ${((plain - bare) / 5).toFixed(2)} µs\n`,
  );
}

if (process.argv[2] === 'serve') void serve();
else void main();
