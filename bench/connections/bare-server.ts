// The reference point for bench/connections: the simplest Node TCP server that holds idle
// connections. It reads (and drops) what arrives, as any server must, and does nothing else: no
// protocol, no per-connection object of its own. Its RSS per connection is what Node and the kernel
// interface cost before mpush-ts adds anything. The same IPC interface as bench/lib/node-server.ts
// (`start`, `stats`, `stop`).

import { createServer } from 'node:net';
import type { ServerStats } from '../lib/node-server.js';
import { memory } from '../lib/procstat.js';
import { serveRequests } from '../lib/rpc.js';

function onData(): void {}
function onError(): void {}
function onClose(): void {
  open--;
}

// Counters only: no collection of sockets, which would itself cost memory per connection.
let accepted = 0;
let open = 0;

const server = createServer({ noDelay: true }, (socket) => {
  accepted++;
  open++;
  socket.on('data', onData);
  socket.on('error', onError);
  socket.on('close', onClose);
});

serveRequests({
  // `backlog` > 0 as in node-server.ts; 0 keeps Node's default (511).
  start: (req) =>
    new Promise((resolve) => {
      const backlog = Number((req.options as { backlog?: number }).backlog ?? 0);
      server.listen({ port: 0, host: '127.0.0.1', ...(backlog > 0 ? { backlog } : {}) }, () =>
        resolve({ tcpPort: (server.address() as { port: number }).port }),
      );
    }),
  stats: async (req): Promise<Partial<ServerStats>> => {
    const elu = performance.eventLoopUtilization();
    return {
      at: performance.timeOrigin + performance.now(),
      memory: await memory(req.gc === true),
      cpu: process.cpuUsage(),
      elu: { idle: elu.idle, active: elu.active, utilization: elu.utilization },
      connections: open,
      bound: open,
      counters: { accepted, acks: 0 },
    };
  },
  stop: () => {
    // The kernel closes the sockets at exit.
    server.close();
    setTimeout(() => process.exit(0), 50);
    return true;
  },
});
