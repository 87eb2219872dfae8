// The reference point for bench/connections: the simplest Node TCP server that holds idle
// connections. It reads (and drops) what arrives, as any server must, and does nothing else: no
// protocol, no per-connection object of its own. Its RSS per connection is what Node and the kernel
// interface cost before mpush-ts adds anything. Same IPC interface as server.ts (`stats`, `stop`).

import { createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { emit, measureMemory, memoryNow, type ServerStats, serveRequests } from './ipc.js';

function onData(): void {}
function onError(): void {}

// Counters only: no collection of sockets, which would itself cost memory per connection.
let accepted = 0;
let open = 0;

function onClose(): void {
  open--;
}

const server = createServer({ noDelay: true }, (socket) => {
  accepted++;
  open++;
  socket.on('data', onData);
  socket.on('error', onError);
  socket.on('close', onClose);
});

// BENCH_BACKLOG as in server.ts; 0 keeps Node's default (511).
const backlog = Number(process.env.BENCH_BACKLOG ?? 0);
server.listen({ port: 0, host: '127.0.0.1', ...(backlog > 0 ? { backlog } : {}) }, () => {
  const addr = server.address();
  const tcpPort = typeof addr === 'object' && addr ? addr.port : 0;

  const stats = async (gc: boolean): Promise<ServerStats> => {
    const memory = gc ? await measureMemory() : memoryNow();
    const elu = performance.eventLoopUtilization();
    return {
      at: performance.timeOrigin + performance.now(),
      memory,
      cpu: process.cpuUsage(),
      elu: { idle: elu.idle, active: elu.active, utilization: elu.utilization },
      connections: open,
      bound: open,
      counters: { accepted },
    };
  };

  serveRequests({
    stats: (req) => stats(req.gc === true),
    stop: () => {
      // The kernel closes the sockets at exit.
      server.close();
      setTimeout(() => process.exit(0), 50);
      return true;
    },
  });
  emit('ready', { tcpPort });
});
