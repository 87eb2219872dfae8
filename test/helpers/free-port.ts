import { createServer } from 'node:net';

/**
 * A loopback port nothing listens on right now: for a child server (Redis, ZooKeeper, a node
 * process) that must be told its port, and for a connection that must be refused.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}
