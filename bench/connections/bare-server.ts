// The reference point of bench/connections: the simplest Node TCP server that holds idle connections.
// It reads (and drops) what arrives, as any server must, and keeps nothing per connection of its own:
// its RSS per connection is what Node and the kernel cost before mpush-ts adds anything. It answers
// node-server.ts's `start`, `stats` and `stop`.

import { createServer } from 'node:net';
import { processStats } from '../lib/procstat.js';
import { serveRequests } from '../lib/rpc.js';

// Module-level listeners: no closure per connection.
const ignore = () => {};
const onClose = () => open--;
let open = 0;
const server = createServer({ noDelay: true }, (socket) => {
  open++;
  socket.on('data', ignore);
  socket.on('error', ignore);
  socket.on('close', onClose);
});

serveRequests({
  start: () =>
    new Promise((resolve) =>
      server.listen(0, '127.0.0.1', () => resolve({ tcpPort: (server.address() as { port: number }).port })),
    ),
  stats: async (req) => ({ ...(await processStats(req.gc === true)), connections: open, bound: open }),
  stop: () => {
    server.close(); // the kernel closes the sockets at exit
    setTimeout(() => process.exit(0), 50);
    return true;
  },
});
