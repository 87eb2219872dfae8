import { createServer, type Server, Socket } from 'node:net';
import { listenOn } from '../../src/util/listen.js';

/**
 * A TCP proxy to a Redis on 127.0.0.1, for the faults a real Redis cannot show on demand:
 * - `cut()` is a partition: every connection reset, none accepted, until `restore()` listens again on
 *   the same port;
 * - `hold()` is a node slow to reach Redis (a long GC pause, a descheduled process, a congested
 *   link): what its clients send waits at the proxy until `release()` lets it all through, in order.
 */
export interface RedisProxy {
  /** `redis://127.0.0.1:<port>`: give it to the client instead of the Redis's own. */
  url: string;
  cut(): Promise<void>;
  restore(): Promise<void>;
  hold(): void;
  release(): void;
  close(): Promise<void>;
}

/** On 127.0.0.1; a proxy's own socket errors are the test's to ignore. */
const listen = (server: Server, port: number) => listenOn(server, port, '127.0.0.1', 511, () => {});

/** A {@link RedisProxy} to `target` (a redis:// URL, or the port of a Redis on 127.0.0.1). */
export async function redisProxy(target: string | number): Promise<RedisProxy> {
  const to = typeof target === 'number' ? { host: '127.0.0.1', port: target } : parse(target);
  const sockets = new Set<Socket>();
  const links: Array<{ upstream: Socket; held: Buffer[] }> = [];
  let holding = false;
  const make = () =>
    createServer((client) => {
      const upstream = new Socket();
      upstream.connect(to.port, to.host);
      const link = { upstream, held: [] as Buffer[] };
      links.push(link);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => {
          sockets.delete(s);
          client.destroy();
          upstream.destroy();
          const i = links.indexOf(link);
          if (i >= 0) links.splice(i, 1);
        });
      }
      client.on('data', (chunk: Buffer) => {
        if (holding) link.held.push(chunk);
        else upstream.write(chunk);
      });
      upstream.pipe(client);
    });
  let server = make();
  const port = await listen(server, 0);
  const shut = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
  return {
    url: `redis://127.0.0.1:${port}`,
    cut: shut,
    async restore() {
      server = make();
      await listen(server, port);
    },
    hold() {
      holding = true;
    },
    release() {
      holding = false;
      for (const l of links) for (const chunk of l.held.splice(0)) l.upstream.write(chunk);
    },
    close: shut,
  };
}

function parse(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 6379) };
}
