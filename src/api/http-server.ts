import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { PushSender } from '../client/push/push-sender.js';
import { StoreRouteSource } from '../client/push/route-source.js';
import type { PushContext, PushMsg } from '../client/push/types.js';
import { isLiveNow } from '../cluster/node-registry.js';
import type { MpushNode } from '../node.js';
import { clientTypeName } from '../protocol/index.js';
import { ConditionError, compileCondition } from '../push/condition/index.js';
import { broadcastSchema, pushSchema } from './schemas.js';
import { ValidationError, validate } from './validate.js';

export interface HttpServerOptions {
  node: MpushNode;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

/** One path segment, percent-decoded; a malformed escape is the caller's error (400), not ours. */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, 'malformed percent-encoding in the path');
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

interface PushBody {
  userId?: string;
  userIds?: string[];
  content?: string;
  msg?: PushMsg;
  ackModel?: PushContext['ackModel'];
  timeout?: number;
}

interface BroadcastBody extends Omit<PushBody, 'userId' | 'userIds'> {
  tags?: string[];
  condition?: string;
  taskId?: string;
  broadcastRate?: number;
  broadcastMax?: number;
  wait?: boolean;
}

/**
 * The HTTP port: MPush's WebSocket endpoint, the public key for SDKs, health, and the push API
 * (`/api/*`), which pushes through an in-process PushSender exactly as a business server would.
 */
export class HttpServer {
  private readonly server: Server;
  private readonly wss: WebSocketServer;
  private sender: PushSender | undefined;
  /** The bearer secret the API requires (null: loopback only, none required). */
  readonly apiSecret: string | null;
  /** True when the secret was generated at start (printed in the banner). */
  readonly apiSecretGenerated: boolean;

  constructor(private readonly opts: HttpServerOptions) {
    const config = opts.node.config;
    if (config.api.secret) {
      this.apiSecret = config.api.secret;
      this.apiSecretGenerated = false;
    } else if (isLoopback(config.http.host)) {
      this.apiSecret = null;
      this.apiSecretGenerated = false;
    } else {
      // Reachable from other hosts and no secret configured: never serve the API open.
      this.apiSecret = randomBytes(24).toString('base64url');
      this.apiSecretGenerated = true;
    }
    this.server = createServer((req, res) => {
      this.route(req, res).catch((err: Error) => {
        if (err instanceof HttpError) return json(res, err.status, { error: err.message });
        if (err instanceof ValidationError)
          return json(res, 400, { error: 'invalid request', problems: err.problems });
        opts.node.log.error('http handler failed', { url: req.url, err: err.stack });
        if (!res.headersSent) json(res, 500, { error: 'internal error' });
      });
    });
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: config.limits.wsMaxPayload,
      perMessageDeflate: false,
      clientTracking: false,
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.upgrade(req, socket, head),
    );
    this.server.on('clientError', (_err, socket) => socket.destroy());
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const { config } = this.opts.node;
    const path = (req.url ?? '/').split('?')[0];
    if (!config.http.wsEnabled || path !== config.http.wsPath) {
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    socket.on('error', () => {});
    this.wss.handleUpgrade(req, socket, head, (ws) => this.opts.node.connections.acceptWebSocket(ws, req));
  }

  private pushSender(): PushSender {
    if (!this.sender) {
      const node = this.opts.node;
      this.sender = PushSender.create({
        gateways: [{ host: node.gatewayHost, port: node.addresses.gatewayPort }],
        routeSource: new StoreRouteSource(node.stores.routes, (host, port) =>
          isLiveNow(node.stores.registry, host, port),
        ),
        broadcastTargets: async () =>
          (await node.stores.registry.list()).map((n) => ({ host: n.gatewayHost, port: n.gatewayPort })),
        ...(node.config.gateway.secret ? { gatewaySecret: node.config.gateway.secret } : {}),
        clientId: `http-api@${node.id}`,
        timeout: node.config.push.defaultTimeoutMs,
        maxRedirects: node.config.push.maxRedirects,
      });
    }
    return this.sender;
  }

  private authorize(req: IncomingMessage): void {
    if (this.apiSecret === null) return;
    const header = req.headers.authorization ?? '';
    const given = Buffer.from(header.startsWith('Bearer ') ? header.slice(7) : '');
    const expected = Buffer.from(this.apiSecret);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new HttpError(401, 'missing or wrong bearer secret (api.secret)');
    }
  }

  private body(req: IncomingMessage): Promise<unknown> {
    const max = this.opts.node.config.api.maxBodyBytes;
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let over = false;
      req.on('data', (chunk: Buffer) => {
        // Past the limit the rest is still read, and dropped: a request left half-read would
        // stall its keep-alive connection, and the client's next request on it.
        if (over) return;
        size += chunk.length;
        if (size > max) {
          over = true;
          chunks.length = 0;
          return reject(new HttpError(413, `body larger than api.maxBodyBytes (${max})`));
        }
        chunks.push(chunk);
      });
      req.on('end', () => {
        if (over) return;
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch {
          reject(new HttpError(400, 'body is not JSON'));
        }
      });
      req.on('error', reject);
    });
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const node = this.opts.node;
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const method = req.method ?? 'GET';
    if (method === 'GET' && path === '/public-key') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`${node.keys.publicKeyBase64}\n`);
      return;
    }
    if (method === 'GET' && path === '/health') {
      return json(res, 200, {
        status: 'ok',
        node: node.id,
        connections: node.connections.connections.size,
        onlineUsers: node.connections.router.onlineUsers,
      });
    }
    if (!path.startsWith('/api/')) throw new HttpError(404, 'not found');
    this.authorize(req);

    if (method === 'POST' && path === '/api/push') {
      const b = validate<PushBody>(await this.body(req), pushSchema);
      if (!b.userId && !b.userIds?.length) throw new ValidationError(['userId or userIds is required']);
      if (b.content === undefined && !b.msg) throw new ValidationError(['content or msg is required']);
      if (b.msg && typeof b.msg.content !== 'string')
        throw new ValidationError(['msg.content must be a string']);
      const results = await this.pushSender().send(b as PushContext);
      return json(res, 200, { results });
    }
    if (method === 'POST' && path === '/api/broadcast') {
      const b = validate<BroadcastBody>(await this.body(req), broadcastSchema);
      if (b.content === undefined && !b.msg) throw new ValidationError(['content or msg is required']);
      if (b.condition) {
        try {
          compileCondition(b.condition);
        } catch (err) {
          if (err instanceof ConditionError) throw new ValidationError([`condition: ${err.message}`]);
          throw err;
        }
      }
      const taskId = b.taskId || `bc-${randomBytes(8).toString('hex')}`;
      const { wait, ...ctx } = b;
      const run = this.pushSender().broadcast({ ...(ctx as PushContext), taskId });
      if (wait) return json(res, 200, await run);
      run.catch((err: Error) => node.log.warn('broadcast failed', { taskId, err: err.message }));
      return json(res, 202, { taskId, status: 'running' });
    }
    const task = /^\/api\/broadcast\/([^/]+)$/.exec(path);
    if (task) {
      const taskId = decodeSegment(task[1]!);
      if (method === 'GET') return json(res, 200, await this.pushSender().broadcastStatus(taskId));
      if (method === 'DELETE') return json(res, 200, await this.pushSender().cancelBroadcast(taskId));
    }
    const user = /^\/api\/users\/([^/]+)$/.exec(path);
    if (user && method === 'GET') {
      const userId = decodeSegment(user[1]!);
      const routes = await node.stores.routes.lookup(userId);
      const devices = [...routes].map(([clientType, r]) => ({
        clientType,
        clientTypeName: clientTypeName(clientType),
        deviceId: r.deviceId,
        osName: r.osName,
        clientVersion: r.clientVersion,
        gateway: `${r.host}:${r.port}`,
        connId: r.connId,
      }));
      return json(res, 200, { userId, online: devices.length > 0, devices });
    }
    if (method === 'GET' && path === '/api/stats') {
      const c = node.connections;
      return json(res, 200, {
        node: node.id,
        connections: c.connections.size,
        onlineUsers: c.router.onlineUsers,
        boundConnections: c.router.boundConnections,
        pendingAcks: node.push.acks.pending,
        connection: c.stats,
        gateway: node.gateway.stats,
      });
    }
    throw new HttpError(404, 'not found');
  }

  listen(port = this.opts.node.config.http.port, host = this.opts.node.config.http.host): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ port, host, backlog: this.opts.node.config.server.backlog }, () => {
        this.server.off('error', reject);
        const a = this.server.address();
        resolve(typeof a === 'object' && a ? a.port : port);
      });
    });
  }

  async close(): Promise<void> {
    await this.sender?.stop();
    await new Promise<void>((r) => {
      this.server.close(() => r());
      this.server.closeAllConnections();
    });
  }
}
