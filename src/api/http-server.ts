import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { Config } from '../config/index.js';
import type { Logger } from '../log.js';
import type { ConnectionServer } from '../server/connection-server.js';

export interface HttpServerOptions {
  config: Config;
  log: Logger;
  connections: ConnectionServer;
  publicKeyBase64: string;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/**
 * The HTTP port: MPush's WebSocket endpoint (JSON protocol, or binary frames), the server's
 * public key for SDKs, and health. The push API joins it with the push path.
 */
export class HttpServer {
  private readonly server: Server;
  private readonly wss: WebSocketServer;

  constructor(private readonly opts: HttpServerOptions) {
    this.server = createServer((req, res) => this.route(req, res));
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: opts.config.limits.wsMaxPayload,
      perMessageDeflate: false,
      clientTracking: false,
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.upgrade(req, socket, head),
    );
    this.server.on('clientError', (_err, socket) => socket.destroy());
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const { config } = this.opts;
    const path = (req.url ?? '/').split('?')[0];
    if (!config.http.wsEnabled || path !== config.http.wsPath) {
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    socket.on('error', () => {});
    this.wss.handleUpgrade(req, socket, head, (ws) => this.opts.connections.acceptWebSocket(ws, req));
  }

  private route(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/public-key') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`${this.opts.publicKeyBase64}\n`);
      return;
    }
    if (req.method === 'GET' && path === '/health') {
      const c = this.opts.connections;
      json(res, 200, { status: 'ok', connections: c.connections.size, onlineUsers: c.router.onlineUsers });
      return;
    }
    json(res, 404, { error: 'not found' });
  }

  listen(port = this.opts.config.http.port, host = this.opts.config.http.host): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const a = this.server.address();
        resolve(typeof a === 'object' && a ? a.port : port);
      });
    });
  }

  async close(): Promise<void> {
    await new Promise<void>((r) => {
      this.server.close(() => r());
      this.server.closeAllConnections();
    });
  }
}
