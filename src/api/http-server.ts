import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { PushContext, PushResult } from '../client/push/types.js';
import { BearerAuth } from './auth.js';
import { BodyAborted } from './body.js';
import type { NodeMetrics } from './metrics.js';
import type { HttpNodeView } from './node-view.js';
import { HttpError, sendJson } from './reply.js';
import { ApiRoutes } from './routes.js';
import { WebSocketUpgrade } from './upgrade.js';
import { ValidationError } from './validate.js';

export interface HttpServerOptions {
  /** What the HTTP port sees of its node. */
  node: HttpNodeView;
  /** GET /metrics (absent: a 404, as any unknown path). */
  metrics?: NodeMetrics;
}

/**
 * The HTTP port: MPush's WebSocket endpoint (upgrade.ts), the open routes and the push API
 * (routes.ts) behind the bearer secret (auth.ts), bodies read within api.maxBodyBytes (body.ts).
 */
export class HttpServer {
  private readonly server: Server;
  private readonly auth: BearerAuth;
  private readonly routes: ApiRoutes;

  constructor(private readonly opts: HttpServerOptions) {
    const node = opts.node;
    this.auth = new BearerAuth(node.config);
    this.routes = new ApiRoutes(node);
    const upgrade = new WebSocketUpgrade(node);
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: Error) => this.fail(req, res, err));
    });
    this.server.on('upgrade', (req, socket, head) => upgrade.handle(req, socket, head));
    this.server.on('clientError', (_err, socket) => socket.destroy());
  }

  /** The bearer secret the API requires (null: loopback only, none required). */
  get apiSecret(): string | null {
    return this.auth.secret;
  }

  /** True when the secret was generated at start (printed in the banner). */
  get apiSecretGenerated(): boolean {
    return this.auth.generated;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === '/metrics' && req.method === 'GET' && this.opts.metrics)
      return this.opts.metrics.serve(req, res, this.opts.node.config, this.auth);
    if (!path.startsWith('/api/')) return this.routes.open(req, res, path);
    this.auth.check(req);
    return this.routes.api(req, res, path);
  }

  /** Answers a refusal; a client that left is noted at debug; only our own failures are errors. */
  private fail(req: IncomingMessage, res: ServerResponse, err: Error): void {
    if (err instanceof HttpError) return sendJson(res, err.status, { error: err.message });
    if (err instanceof ValidationError)
      return sendJson(res, 400, { error: 'invalid request', problems: err.problems });
    if (err instanceof BodyAborted) return this.opts.node.log.debug(err.message, { url: req.url });
    this.opts.node.log.error('http handler failed', { url: req.url, err: err.stack });
    if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
  }

  /** Listens on http.host:http.port unless told otherwise; resolves with the port (0 picks one). */
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

  /** A push through the API's PushSender, as POST /api/push makes one (the console's test push). */
  push(ctx: PushContext): Promise<PushResult[]> {
    return this.routes.push(ctx);
  }

  /** Stops the API's PushSender, then the server and every connection it holds. */
  async close(): Promise<void> {
    await this.routes.close();
    await new Promise<void>((r) => {
      this.server.close(() => r());
      this.server.closeAllConnections();
    });
  }
}
