import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { SecureContextOptions } from 'node:tls';
import type { PushContext, PushResult } from '../client/push/types.js';
import { closeServer, listenOn } from '../util/listen.js';
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
 * The HTTPS port (https.port) is the same request and upgrade handlers behind TLS.
 */
export class HttpServer {
  private readonly server: Server;
  private https: HttpsServer | undefined;
  private readonly auth: BearerAuth;
  private readonly routes: ApiRoutes;
  private readonly onRequest: (req: IncomingMessage, res: ServerResponse) => void;
  private readonly onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

  constructor(private readonly opts: HttpServerOptions) {
    const node = opts.node;
    this.auth = new BearerAuth(node.config);
    this.routes = new ApiRoutes(node);
    const upgrade = new WebSocketUpgrade(node);
    this.onRequest = (req, res) => void this.handle(req, res);
    this.onUpgrade = (req, socket, head) => upgrade.handle(req, socket, head);
    this.server = this.serve(createServer(this.onRequest));
  }

  /** One set of handlers for the HTTP and the HTTPS port. */
  private serve<S extends Server | HttpsServer>(server: S): S {
    server.on('upgrade', this.onUpgrade);
    server.on('clientError', (_err, socket) => socket.destroy());
    return server;
  }

  /** The bearer secret the API requires (null: loopback only, none required). */
  get apiSecret(): string | null {
    return this.auth.secret;
  }

  /** True when the secret was generated at start (printed in the banner). */
  get apiSecretGenerated(): boolean {
    return this.auth.generated;
  }

  /** One request, answered whatever it throws (no closure per request to catch it). */
  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = req.url ?? '/';
      const query = url.indexOf('?');
      const path = query < 0 ? url : url.slice(0, query);
      if (path === '/metrics' && req.method === 'GET' && this.opts.metrics)
        await this.opts.metrics.serve(req, res, this.opts.node.config, this.auth);
      else if (!path.startsWith('/api/')) await this.routes.open(req, res, path);
      else {
        this.auth.check(req);
        await this.routes.api(req, res, path);
      }
    } catch (err) {
      this.fail(req, res, err as Error);
    }
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
    return listenOn(this.server, port, host, this.opts.node.config.server.backlog, (err) =>
      this.opts.node.log.error('http server error', { err: err.message }),
    );
  }

  /** Listens for HTTPS (and WSS) on http.host:https.port unless told otherwise; resolves with the port. */
  listenTls(
    secure: SecureContextOptions,
    port = this.opts.node.config.https.port,
    host = this.opts.node.config.http.host,
  ): Promise<number> {
    const timeout = this.opts.node.config.limits.handshakeTimeoutMs;
    this.https = this.serve(createHttpsServer({ ...secure, handshakeTimeout: timeout }, this.onRequest));
    return listenOn(this.https, port, host, this.opts.node.config.server.backlog, (err) =>
      this.opts.node.log.error('https server error', { err: err.message }),
    );
  }

  /** New certificates for the HTTPS port: later handshakes use them, open connections stay. */
  setSecureContext(secure: SecureContextOptions): void {
    this.https?.setSecureContext(secure);
  }

  /** A push through the API's PushSender, as POST /api/push makes one (the console's test push). */
  push(ctx: PushContext): Promise<PushResult[]> {
    return this.routes.push(ctx);
  }

  /** Stops the API's PushSender, then the server and every connection it holds. */
  async close(): Promise<void> {
    await this.routes.close();
    const servers = [this.server, this.https];
    const closed = Promise.all(servers.map((s) => closeServer(s)));
    for (const s of servers) s?.closeAllConnections();
    await closed;
  }
}
