// The reference point of bench/connections: the simplest Node TCP server that holds idle connections.
// It reads (and drops) what arrives, as any server must, and keeps nothing per connection of its own
// (counters only): its RSS per connection is what Node and the kernel cost before mpush-ts adds
// anything. It answers node-server.ts's `start`, `stats` and `stop`.

import { createServer } from 'node:net';
import { memory } from '../lib/procstat.js';
import { serveRequests } from '../lib/rpc.js';

function ignore(): void {}
function onClose(): void {
  open--;
}
let accepted = 0;
let open = 0;

const server = createServer({ noDelay: true }, (socket) => {
  accepted++;
  open++;
  socket.on('data', ignore);
  socket.on('error', ignore);
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
  stats: async (req) => {
    const { idle, active, utilization } = performance.eventLoopUtilization();
    const at = performance.timeOrigin + performance.now();
    const memoryAfterGc = await memory(req.gc === true);
    const cpu = process.cpuUsage();
    const counters = { accepted, acks: 0 };
    return {
      at,
      memory: memoryAfterGc,
      cpu,
      elu: { idle, active, utilization },
      connections: open,
      bound: open,
      counters,
    };
  },
  stop: () => {
    server.close(); // the kernel closes the sockets at exit
    setTimeout(() => process.exit(0), 50);
    return true;
  },
});
