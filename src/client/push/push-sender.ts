import { randomUUID } from 'node:crypto';
import {
  BroadcastAction,
  BroadcastControlCodec,
  Command,
  ErrorCodec,
  ExtCommand,
  GatewayPushCodec,
  OkCodec,
  type Packet,
} from '../../protocol/index.js';
import { GatewayChannel } from './gateway-channel.js';
import { ackFlagsOf, PushRequest, type RequestHost } from './push-request.js';
import { GatewayRouteSource, type RouteEntry, type RouteSource } from './route-source.js';
import type { BroadcastResult, PushCallback, PushContext, PushResult } from './types.js';

export interface GatewayAddress {
  host: string;
  port: number;
}

export interface PushSenderOptions {
  /** Gateways to start from: route queries and (by default) broadcasts go here. */
  gateways: GatewayAddress[];
  /** Where routes come from; default: ask the first reachable gateway. */
  routeSource?: RouteSource;
  /** Gateways a broadcast goes to; default: `gateways`. A cluster passes its live nodes. */
  broadcastTargets?: () => Promise<GatewayAddress[]>;
  /** The nodes' `gateway.secret`, when set. */
  gatewaySecret?: string;
  clientId?: string;
  /** Default per-request timeout, ms. */
  timeout?: number;
  /** Route changes followed before a request fails. */
  maxRedirects?: number;
  /** How long a looked-up route is reused, ms (0: always look up). */
  routeCacheMs?: number;
  connectTimeoutMs?: number;
  /**
   * Request bytes queued to one gateway that is not reading them before its connection is
   * dropped and the requests on it fail. Default 16 MiB.
   */
  maxOutboundBytes?: number;
  /**
   * How long a backpressured gateway connection may take to drain before it is dropped and the
   * requests on it fail, ms. Default 10 s.
   */
  drainTimeoutMs?: number;
}

interface Queued {
  request: PushRequest;
  result: PushResult;
}

/**
 * The push client SDK for business servers (MPush's PushSender): push to one user, many users,
 * or everyone, and get exactly one result per (user, device type).
 */
export class PushSender implements RequestHost {
  readonly maxRedirects: number;
  private readonly channels = new Map<string, GatewayChannel>();
  private readonly routeCache = new Map<string, { routes: RouteEntry[]; until: number }>();
  private readonly routeSource: RouteSource;
  private readonly waiting = new Map<PushRequest, (r: PushResult) => void>();
  private queue: Queued[] = [];

  private constructor(private readonly opts: PushSenderOptions) {
    if (opts.gateways.length === 0) throw new Error('PushSender needs at least one gateway address');
    this.maxRedirects = opts.maxRedirects ?? 3;
    this.routeSource = opts.routeSource ?? new GatewayRouteSource(() => this.seedChannel());
  }

  static create(options: PushSenderOptions): PushSender {
    return new PushSender(options);
  }

  /** Connects to the first gateway (failing early on a wrong address or secret). */
  async start(): Promise<void> {
    await this.seedChannel();
  }

  /** Closes every gateway connection; requests still waiting end as failures. */
  async stop(): Promise<void> {
    for (const ch of this.channels.values()) ch.close();
    this.channels.clear();
  }

  /** @internal RequestHost: one pooled channel per gateway address. */
  channel(host: string, port: number): GatewayChannel {
    const key = `${host}:${port}`;
    let ch = this.channels.get(key);
    if (!ch) {
      ch = new GatewayChannel(host, port, {
        ...(this.opts.gatewaySecret ? { secret: this.opts.gatewaySecret } : {}),
        ...(this.opts.clientId ? { clientId: this.opts.clientId } : {}),
        connectTimeoutMs: this.opts.connectTimeoutMs ?? 3000,
        maxOutboundBytes: this.opts.maxOutboundBytes,
        drainTimeoutMs: this.opts.drainTimeoutMs,
      });
      this.channels.set(key, ch);
    }
    return ch;
  }

  private async seedChannel(): Promise<GatewayChannel> {
    let last: Error | undefined;
    for (const g of this.opts.gateways) {
      const ch = this.channel(g.host, g.port);
      try {
        await ch.connect();
        return ch;
      } catch (err) {
        last = err as Error;
      }
    }
    throw last ?? new Error('no gateway reachable');
  }

  // ---- routes -----------------------------------------------------------------------------------

  private async routesOf(userIds: readonly string[]): Promise<Map<string, RouteEntry[]>> {
    const ttl = this.opts.routeCacheMs ?? 5000;
    const now = Date.now();
    const out = new Map<string, RouteEntry[]>();
    const missing: string[] = [];
    for (const u of userIds) {
      const c = ttl > 0 ? this.routeCache.get(u) : undefined;
      if (c && c.until > now) out.set(u, c.routes);
      else missing.push(u);
    }
    if (missing.length > 0) {
      const found = await this.routeSource.lookup(missing);
      for (const u of missing) {
        const routes = found.get(u) ?? [];
        out.set(u, routes);
        if (ttl > 0 && routes.length > 0) this.routeCache.set(u, { routes, until: now + ttl });
      }
    }
    return out;
  }

  /** @internal RequestHost */
  dropRoute(userId: string): void {
    this.routeCache.delete(userId);
  }

  /** @internal RequestHost */
  async relookup(userId: string, clientType: number): Promise<RouteEntry | undefined> {
    this.routeCache.delete(userId);
    const routes = (await this.routesOf([userId])).get(userId) ?? [];
    return routes.find((r) => r.clientType === clientType);
  }

  // ---- results: never delivered inside the I/O callback that produced them ------------------------

  /** @internal RequestHost */
  complete(request: PushRequest, result: PushResult): void {
    if (this.queue.push({ request, result }) === 1) setImmediate(() => this.flush());
  }

  private flush(): void {
    const batch = this.queue;
    this.queue = [];
    for (const { request, result } of batch) {
      const resolve = this.waiting.get(request);
      this.waiting.delete(request);
      resolve?.(result);
    }
  }

  // ---- sending ------------------------------------------------------------------------------------

  /**
   * Pushes to `ctx.userId` / `ctx.userIds`: one request, and one result, per (user, device type);
   * a user with no route gets one `offline` result. Also calls `ctx.callback` for each result.
   */
  async send(ctx: PushContext): Promise<PushResult[]> {
    if (ctx.broadcast || ctx.tags || ctx.condition) {
      throw new Error('send() pushes to users; use broadcast() for broadcast, tags or condition');
    }
    const users = ctx.userIds ?? (ctx.userId !== undefined ? [ctx.userId] : []);
    if (users.length === 0) throw new Error('PushContext needs userId or userIds');
    const content = contentOf(ctx);
    const timeout = ctx.timeout && ctx.timeout > 0 ? ctx.timeout : (this.opts.timeout ?? 3000);
    const ackFlags = ackFlagsOf(ctx.ackModel);
    const begin = Date.now();
    let routes: Map<string, RouteEntry[]>;
    try {
      routes = await this.routesOf(users);
    } catch (err) {
      const reason = `route lookup: ${(err as Error).message}`;
      return users.map((u) => notify(ctx.callback, failed(u, 'failure', reason, begin)));
    }
    const pending: Array<Promise<PushResult>> = [];
    for (const u of users) {
      const rs = routes.get(u) ?? [];
      if (rs.length === 0) {
        pending.push(Promise.resolve(failed(u, 'offline', 'no route', begin)));
        continue;
      }
      for (const r of rs) {
        const req = new PushRequest(this, u, r.clientType, r, content, ackFlags, timeout);
        pending.push(new Promise<PushResult>((resolve) => this.waiting.set(req, resolve)));
        req.start();
      }
    }
    const results = await Promise.all(pending);
    for (const r of results) notify(ctx.callback, r);
    return results;
  }

  /**
   * Pushes to every connected device of every node (or those with any of `ctx.tags`, or for
   * which `ctx.condition` holds), and returns the counts once every node has written its share.
   */
  async broadcast(ctx: PushContext): Promise<BroadcastResult> {
    const taskId = ctx.taskId || randomUUID();
    const body = GatewayPushCodec.encode({
      userId: '',
      clientType: 0,
      timeout: ctx.timeout ?? 0,
      content: contentOf(ctx),
      taskId,
      tags: ctx.tags ?? null, // an empty list reaches nobody, as in MPush
      condition: ctx.condition ?? '',
      broadcastRate: ctx.broadcastRate ?? 0,
      broadcastMax: ctx.broadcastMax ?? 0,
    });
    const targets = await this.broadcastTargets();
    const nodes = await Promise.all(
      targets.map((g) => this.request(g, Command.GATEWAY_PUSH, ackFlagsOf(ctx.ackModel), body, 0)),
    );
    return aggregate(taskId, targets, nodes);
  }

  /** Live counts of a broadcast, summed over the nodes. */
  async broadcastStatus(taskId: string): Promise<BroadcastResult> {
    return this.control(taskId, BroadcastAction.QUERY);
  }

  /** Cancels a broadcast on every node; returns the counts at the cancel. */
  async cancelBroadcast(taskId: string): Promise<BroadcastResult> {
    return this.control(taskId, BroadcastAction.CANCEL);
  }

  private async control(taskId: string, action: number): Promise<BroadcastResult> {
    const body = BroadcastControlCodec.encode({ taskId, action });
    const targets = await this.broadcastTargets();
    const nodes = await Promise.all(
      targets.map((g) =>
        this.request(g, ExtCommand.GATEWAY_BROADCAST_CONTROL, 0, body, this.opts.timeout ?? 3000),
      ),
    );
    return aggregate(taskId, targets, nodes);
  }

  private async broadcastTargets(): Promise<GatewayAddress[]> {
    return this.opts.broadcastTargets ? this.opts.broadcastTargets() : this.opts.gateways;
  }

  /** One request/reply on a gateway, as data or error text. timeoutMs 0 = wait for the reply. */
  private async request(
    g: GatewayAddress,
    cmd: number,
    flags: number,
    body: Buffer,
    timeoutMs: number,
  ): Promise<{ data?: string; error?: string }> {
    const ch = this.channel(g.host, g.port);
    try {
      await ch.connect();
    } catch (err) {
      return { error: (err as Error).message };
    }
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const sid = ch.send(cmd, flags, body, {
        onReply: (p: Packet) => {
          clearTimeout(timer);
          resolve(
            p.cmd === Command.OK
              ? { data: OkCodec.decode(p.body).data }
              : { error: ErrorCodec.decode(p.body).reason },
          );
        },
        onChannelClosed: (reason) => {
          clearTimeout(timer);
          resolve({ error: reason });
        },
      });
      if (sid < 0) return resolve({ error: `gateway ${ch.address} not writable` });
      if (timeoutMs > 0) {
        timer = setTimeout(() => {
          ch.forget(sid);
          resolve({ error: 'timeout' });
        }, timeoutMs);
      }
    });
  }
}

function contentOf(ctx: PushContext): Buffer {
  if (ctx.msg) return Buffer.from(JSON.stringify(ctx.msg), 'utf8');
  if (ctx.content === undefined) throw new Error('PushContext needs content or msg');
  return typeof ctx.content === 'string' ? Buffer.from(ctx.content, 'utf8') : ctx.content;
}

function failed(userId: string, result: 'offline' | 'failure', reason: string, begin: number): PushResult {
  return {
    userId,
    clientType: -1,
    result,
    code: result === 'offline' ? 3 : 2,
    reason,
    redirects: 0,
    timeline: { begin, end: Date.now() },
  };
}

function notify(cb: PushCallback | undefined, r: PushResult): PushResult {
  if (!cb) return r;
  try {
    cb.onResult?.(r);
    if (r.result === 'success') cb.onSuccess?.(r);
    else if (r.result === 'failure') cb.onFailure?.(r);
    else if (r.result === 'offline') cb.onOffline?.(r);
    else cb.onTimeout?.(r);
  } catch (err) {
    // A throwing callback must not hide the other results.
    process.nextTick(() => {
      throw err;
    });
  }
  return r;
}

function aggregate(
  taskId: string,
  targets: GatewayAddress[],
  replies: Array<{ data?: string; error?: string }>,
): BroadcastResult {
  const out: BroadcastResult = {
    taskId,
    result: 'success',
    matched: 0,
    sent: 0,
    acked: 0,
    failed: 0,
    nodes: [],
  };
  replies.forEach((r, i) => {
    const gateway = `${targets[i]!.host}:${targets[i]!.port}`;
    if (r.error !== undefined || !r.data) {
      out.result = 'failure';
      out.reason = r.error ?? 'empty reply';
      out.nodes.push({
        gateway,
        status: 'error',
        matched: 0,
        sent: 0,
        acked: 0,
        failed: 0,
        error: r.error ?? 'empty reply',
      });
      return;
    }
    const c = JSON.parse(r.data) as {
      status: string;
      matched: number;
      sent: number;
      acked: number;
      failed: number;
    };
    out.matched += c.matched;
    out.sent += c.sent;
    out.acked += c.acked;
    out.failed += c.failed;
    out.nodes.push({
      gateway,
      status: c.status,
      matched: c.matched,
      sent: c.sent,
      acked: c.acked,
      failed: c.failed,
    });
  });
  return out;
}
