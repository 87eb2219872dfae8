import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { formatServerList } from '../client/device/allocator.js';
import { PushSender } from '../client/push/push-sender.js';
import { StoreRouteSource } from '../client/push/route-source.js';
import type { PushContext, PushResult } from '../client/push/types.js';
import { isLiveNow, type NodeInfo } from '../cluster/node-registry.js';
import { clientTypeName } from '../protocol/index.js';
import { readJsonBody } from './body.js';
import { ConsoleRoutes } from './console.js';
import { NodeGateway } from './node-gateway.js';
import type { HttpNodeView } from './node-view.js';
import { decodeSegment, HttpError, sendJson, sendText } from './reply.js';
import { broadcastSchema, parsePushBody } from './schemas.js';
import { validate } from './validate.js';

/**
 * The handlers of the HTTP port: the open routes (public key, health, allocator) and the push API
 * (`/api/*`, behind the bearer check), which pushes through an in-process PushSender exactly as
 * a business server would, but for the users of this node: those it hands to this node's push
 * center directly (NodeGateway), with the same results. A refusal is thrown (HttpError,
 * ValidationError) for the server to answer.
 */
export class ApiRoutes {
  private sender: PushSender | undefined;
  private readonly console: ConsoleRoutes;

  constructor(private readonly node: HttpNodeView) {
    this.console = new ConsoleRoutes(node);
  }

  /** GET /public-key, GET /health, GET /alloc and the admin console's page; anything else is a 404. */
  async open(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const node = this.node;
    if (req.method === 'GET' && path === '/public-key') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`${node.publicKeyBase64}\n`);
      return;
    }
    if (req.method === 'GET' && path === '/health') {
      const { node: id, connections, onlineUsers } = node.stats();
      return sendJson(res, 200, { status: 'ok', node: id, connections, onlineUsers });
    }
    if (req.method === 'GET' && path === '/alloc') return this.alloc(req, res);
    if (ConsoleRoutes.isAssetPath(path)) return this.console.asset(req, res, path);
    throw new HttpError(404, 'not found');
  }

  /**
   * GET /alloc, MPush's allocator (the SDKs' `allotServer`): the device addresses of the live nodes
   * of the cluster (any node answers for all: they come from the registry), least connections
   * first, at most alloc.maxServers, as `host:port,host:port` with no newline (MPush's Java SDK
   * does not trim). Open like /public-key: a device asks before it has anything to show. No live
   * node, or a registry that cannot answer: 503.
   */
  private async alloc(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let nodes: NodeInfo[];
    try {
      nodes = await this.node.registry.list();
    } catch (err) {
      this.node.log.debug('alloc: node registry failed', { err: (err as Error).message });
      return sendText(res, 503, 'node registry unavailable');
    }
    // `?tls=1`: the nodes' device TLS ports instead (mpush-ts's SDK with `tls`; MPush's speak none).
    const tls = new URLSearchParams((req.url ?? '').split('?')[1] ?? '').get('tls') === '1';
    if (tls) nodes = nodes.map((n) => ({ ...n, port: n.tlsPort }));
    const listed = nodes
      .filter((n) => n.host !== '' && n.port > 0)
      .sort((a, b) => a.connections - b.connections || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .slice(0, this.node.config.alloc.maxServers);
    if (listed.length === 0) return sendText(res, 503, 'no live node');
    sendText(res, 200, formatServerList(listed));
  }

  /** The push API under `/api/`; the caller has checked the bearer secret. */
  async api(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const node = this.node;
    const method = req.method ?? 'GET';
    // The console's routes are all GETs: a push does not wait on them.
    if (method === 'GET' && (await this.console.api(req, res, path))) return;
    if (method === 'POST' && path === '/api/push') {
      const results = await this.push(parsePushBody(await this.body(req)));
      return sendJson(res, 200, { results });
    }
    if (method === 'POST' && path === '/api/broadcast') {
      const { wait, ...ctx } = validate(broadcastSchema, await this.body(req));
      const taskId = ctx.taskId || `bc-${randomBytes(8).toString('hex')}`;
      const run = this.pushSender().broadcast({ ...ctx, taskId });
      if (wait) return sendJson(res, 200, await run);
      run.catch((err: Error) => node.log.warn('broadcast failed', { taskId, err: err.message }));
      return sendJson(res, 202, { taskId, status: 'running' });
    }
    const task = /^\/api\/broadcast\/([^/]+)$/.exec(path);
    if (task) {
      const taskId = decodeSegment(task[1]!);
      if (method === 'GET') return sendJson(res, 200, await this.pushSender().broadcastStatus(taskId));
      if (method === 'DELETE') return sendJson(res, 200, await this.pushSender().cancelBroadcast(taskId));
    }
    const user = /^\/api\/users\/([^/]+)$/.exec(path);
    if (user && method === 'GET') {
      const userId = decodeSegment(user[1]!);
      const routes = await node.routes.lookup(userId);
      const devices = [...routes].map(([clientType, r]) => ({
        clientType,
        clientTypeName: clientTypeName(clientType),
        deviceId: r.deviceId,
        osName: r.osName,
        clientVersion: r.clientVersion,
        gateway: `${r.host}:${r.port}`,
        connId: r.connId,
        ...node.routeOwner(r.connId),
      }));
      return sendJson(res, 200, { userId, online: devices.length > 0, devices });
    }
    const message = /^\/api\/messages\/([^/]+)$/.exec(path);
    if (message && method === 'GET') {
      const messageId = decodeSegment(message[1]!);
      let receipt: Awaited<ReturnType<typeof node.inbox.receipt>>;
      try {
        receipt = await node.inbox.receipt(messageId);
      } catch (err) {
        throw new HttpError(503, `receipt store: ${(err as Error).message}`);
      }
      if (!receipt) throw new HttpError(404, 'unknown message (or its receipt expired)');
      return sendJson(res, 200, receipt);
    }
    if (method === 'GET' && path === '/api/stats') return sendJson(res, 200, node.stats());
    throw new HttpError(404, 'not found');
  }

  /**
   * POST /api/push: one messageId for the push (the caller's msgId, else msg.msgId, else
   * generated), for every user of it, carried to the device in the PushMsg JSON (`msgId`) when
   * sent as `msg`, and named in every result. `store` / `ttl` go with the push (PushContext): the
   * node that answers it keeps what a device type missed (push/inbox.ts), and the result says
   * `stored`. The node's other test pushes (the telnet console's) come the same way.
   */
  async push(b: PushContext): Promise<PushResult[]> {
    const results = await this.pushSender().send(b);
    // "No route" is decided by the sender before any gateway sees the push: this node counts it, as
    // a gateway (this node's or another's) counts every push it ends.
    const meter = this.node.push.meter;
    for (const r of results) if (r.result === 'offline' && r.gateway === undefined) meter.stats.offline++;
    return results;
  }

  /** Stops the API's PushSender, if it ever started. */
  async close(): Promise<void> {
    await this.sender?.stop();
  }

  private body(req: IncomingMessage): Promise<unknown> {
    return readJsonBody(req, this.node.config.api.maxBodyBytes);
  }

  private pushSender(): PushSender {
    if (!this.sender) {
      const { config, routes, registry } = this.node;
      const gateway = this.node.gatewayAddress();
      this.sender = PushSender.create({
        gateways: [gateway],
        localGateway: new NodeGateway(this.node, gateway),
        routeSource: new StoreRouteSource(routes, (host, port) => isLiveNow(registry, host, port)),
        broadcastTargets: async () =>
          (await registry.list()).map((n) => ({ host: n.gatewayHost, port: n.gatewayPort })),
        ...(config.gateway.secret ? { gatewaySecret: config.gateway.secret } : {}),
        ...(this.node.gatewayTls ? { tls: this.node.gatewayTls } : {}),
        clientId: `http-api@${this.node.id()}`,
        logger: this.node.log,
        timeout: config.push.defaultTimeoutMs,
        maxRedirects: config.push.maxRedirects,
      });
    }
    return this.sender;
  }
}
