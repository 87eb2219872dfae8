import { readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NodeInfo } from '../cluster/node-registry.js';
import { clientTypeName } from '../protocol/index.js';
import type { HttpNodeView } from './node-view.js';
import { decodeSegment, HttpError, sendJson } from './reply.js';
import { overviewQuerySchema, userPathSchema } from './schemas.js';
import { validate } from './validate.js';

/**
 * The package's `web/` folder, found from this module (dist/src/api/console.js → the package root),
 * never from the working directory: an installed package serves its own copy.
 */
const WEB_DIR = fileURLToPath(new URL('../../../web/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** The page talks to its own origin only; nothing may frame it (the secret is typed into it). */
const ASSET_HEADERS = {
  'content-security-policy':
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

/** Recent disconnects an overview lists unless asked otherwise. */
const DEFAULT_DISCONNECTS = 50;

/**
 * The admin web console: its page (`/admin/`, the files of `web/`, open like /public-key: they
 * hold nothing secret) and its API (`/api/console/overview`, `/api/users/:userId/inbox`, behind
 * the bearer like the rest of `/api/`). Pushes and broadcasts from the page go through the
 * push API itself (POST /api/push, /api/broadcast), not through here.
 */
export class ConsoleRoutes {
  private assets: Map<string, { type: string; body: Buffer }> | undefined;

  constructor(private readonly node: HttpNodeView) {}

  /** True for the paths the page is served at. */
  static isAssetPath(path: string): boolean {
    return path === '/admin' || path.startsWith('/admin/');
  }

  /** GET /admin/ and the files next to it; `/admin` is redirected so relative URLs resolve. */
  asset(req: IncomingMessage, res: ServerResponse, path: string): void {
    if (req.method !== 'GET' && req.method !== 'HEAD')
      throw new HttpError(405, 'the console is read with GET');
    if (path === '/admin') {
      res.writeHead(308, { location: '/admin/' });
      res.end();
      return;
    }
    const name = path === '/admin/' ? 'index.html' : path.slice('/admin/'.length);
    const file = this.files().get(name);
    if (!file) throw new HttpError(404, 'not found');
    res.writeHead(200, { ...ASSET_HEADERS, 'content-type': file.type, 'content-length': file.body.length });
    res.end(req.method === 'HEAD' ? undefined : file.body);
  }

  /** The files of web/ by name, read once: only what is there is ever served (no path is joined from a URL). */
  private files(): Map<string, { type: string; body: Buffer }> {
    if (!this.assets) {
      this.assets = new Map();
      try {
        for (const name of readdirSync(WEB_DIR)) {
          const type = TYPES[extname(name)];
          if (type) this.assets.set(name, { type, body: readFileSync(join(WEB_DIR, name)) });
        }
      } catch (err) {
        this.node.log.warn('admin console assets not found', { dir: WEB_DIR, err: (err as Error).message });
      }
    }
    return this.assets;
  }

  /** The console's API; false when `path` is not one of its routes. The caller checked the bearer. */
  async api(req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
    if (req.method !== 'GET') return false;
    if (path === '/api/console/overview') {
      sendJson(res, 200, await this.overview(req));
      return true;
    }
    const inbox = /^\/api\/users\/([^/]+)\/inbox$/.exec(path);
    if (inbox) {
      const { userId } = validate(userPathSchema, { userId: decodeSegment(inbox[1]!) });
      sendJson(res, 200, await this.inbox(userId));
      return true;
    }
    return false;
  }

  /**
   * Every live node of the cluster with its load (from the registry, as each node last published
   * it, every cluster.registryRefreshMs; this node's connections live), this node's ack latency (null when not measured) and
   * its recent disconnects.
   */
  private async overview(req: IncomingMessage) {
    const query = Object.fromEntries(new URL(req.url ?? '/', 'http://host').searchParams);
    const { disconnects = DEFAULT_DISCONNECTS } = validate(overviewQuerySchema, query);
    const node = this.node;
    const self = node.id();
    let nodes: NodeInfo[] = [];
    let registryError: string | undefined;
    try {
      nodes = await node.registry.list();
    } catch (err) {
      registryError = (err as Error).message;
    }
    const stats = node.stats();
    const recent = node.recentDisconnects();
    return {
      node: self,
      at: Date.now(),
      nodes: nodes
        .map((n) => ({
          id: n.id,
          self: n.id === self,
          device: n.host ? `${n.host}:${n.port}` : '',
          gateway: `${n.gatewayHost}:${n.gatewayPort}`,
          // This node's own counts are read live; the others' as they last published them.
          connections: n.id === self ? stats.connections : n.connections,
          onlineUsers: n.id === self ? stats.onlineUsers : n.onlineUsers,
          pushRate: n.pushRate ?? null,
        }))
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
      ...(registryError ? { registryError } : {}),
      ackLatency: node.ackLatency?.() ?? null,
      pendingAcks: stats.pendingAcks,
      disconnects: {
        byReason: stats.connection.closed,
        recent: recent.slice(0, disconnects),
      },
    };
  }

  /** What the user's inbox holds for later, with the device types each message still waits for. */
  private async inbox(userId: string) {
    let held: Awaited<ReturnType<HttpNodeView['inbox']['peek']>>;
    try {
      held = await this.node.inbox.peek(userId);
    } catch (err) {
      throw new HttpError(503, `inbox store: ${(err as Error).message}`);
    }
    return {
      userId,
      messages: held.map(({ entry, pendingFor }) => ({
        messageId: entry.messageId,
        storedAt: entry.storedAt,
        expiresAt: entry.expiresAt,
        bytes: entry.content.length,
        preview: entry.content.subarray(0, 120).toString('utf8'),
        pendingFor: pendingFor.map((t) => clientTypeName(t)),
      })),
    };
  }
}
