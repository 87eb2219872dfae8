import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { HttpNodeView } from './node-view.js';

/** MPush's WebSocket endpoint on the HTTP port: `http.wsPath` upgraded, handed to the node. */
export class WebSocketUpgrade {
  private readonly wss: WebSocketServer;

  constructor(private readonly node: Pick<HttpNodeView, 'config' | 'acceptWebSocket'>) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: node.config.limits.wsMaxPayload,
      perMessageDeflate: false,
      clientTracking: false,
    });
  }

  /** The HTTP server's 'upgrade': any other path, or WebSocket off, is a 404 and a close. */
  handle(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const { http } = this.node.config;
    const path = (req.url ?? '/').split('?')[0];
    if (!http.wsEnabled || path !== http.wsPath) {
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    socket.on('error', () => {});
    this.wss.handleUpgrade(req, socket, head, (ws) => this.node.acceptWebSocket(ws, req));
  }
}
