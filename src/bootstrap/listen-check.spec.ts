import { createServer } from 'node:net';
import { listenProblem } from './listen-check';

describe('listenProblem', () => {
  it('names EADDRINUSE for a port another server holds, and nothing for a free one', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const { port } = holder.address() as { port: number };
    try {
      expect(await listenProblem(port, '127.0.0.1')).toBe('EADDRINUSE');
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
    expect(await listenProblem(port, '127.0.0.1')).toBeUndefined();
    expect(await listenProblem(0, '127.0.0.1')).toBeUndefined();
  });
});
