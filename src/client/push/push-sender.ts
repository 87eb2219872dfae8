import { randomUUID } from 'node:crypto';
import {
  BroadcastAction,
  BroadcastControlCodec,
  Command,
  ErrorCode,
  ExtCommand,
  GatewayPushCodec,
  MAX_MESSAGE_ID_LENGTH,
  MessageStatusCodec,
  type PushExt,
} from '../../protocol/index.js';
import { Deadline, DeadlineQueue } from '../../util/deadline-queue.js';
import type { ClientTlsOptions } from '../tls.js';
import { type CallOutcome, GatewayCall } from './gateway-call.js';
import type { GatewayChannel } from './gateway-channel.js';
import { GatewayPool, type GatewayPoolOptions } from './gateway-pool.js';
import { decodeReceipt, decodeTaskReport } from './gateway-reply.js';
import type { LocalGateway } from './local-gateway.js';
import { ackFlagsOf, PushRequest, type RequestHost } from './push-request.js';
import { RouteCache } from './route-cache.js';
import {
  GatewayRouteSource,
  type RouteEntry,
  type RouteQueryHost,
  type RouteSource,
} from './route-source.js';
import {
  type BroadcastResult,
  type MessageReceipt,
  MessageStatusError,
  type PushCallback,
  type PushContext,
  type PushLogger,
  type PushResult,
  ResultCode,
  stderrLogger,
} from './types.js';

export interface GatewayAddress {
  host: string;
  port: number;
}

export interface PushSenderOptions {
  /** Gateways to start from: route queries and (by default) broadcasts go here. */
  gateways: GatewayAddress[];
  /** Where routes come from; default: ask the gateways (GATEWAY_ROUTE_QUERY). */
  routeSource?: RouteSource;
  /** Gateways a broadcast goes to; default: `gateways`. A cluster passes its live nodes. */
  broadcastTargets?: () => Promise<GatewayAddress[]>;
  /** The nodes' `gateway.secret`, when set. */
  gatewaySecret?: string;
  /**
   * Connect to the gateways with TLS (nodes with `gateway.tls`): `{}` trusts the system's CAs;
   * `ca` pins the node's CA (or its self-signed certificate); `cert` and `key` are the client
   * certificate a gateway with `tls.ca` requires. Every gateway, routed-to ones included, is
   * reached this way.
   */
  tls?: ClientTlsOptions;
  clientId?: string;
  /** Default timeout of a call, ms (3000): it bounds the call, route lookup included. */
  timeout?: number;
  /** Route changes followed before a request fails. */
  maxRedirects?: number;
  /** How long a looked-up route is reused, ms (0: always look up). Refreshed ahead of expiry. */
  routeCacheMs?: number;
  /**
   * Most users in one route query: the gateways' `gateway.maxRouteQueryUsers` (10000). A larger
   * lookup is cut into queries of this size.
   */
  maxRouteQueryUsers?: number;
  /** Connections kept to each gateway (1); requests spread over those that are up. */
  connectionsPerGateway?: number;
  /** A connect (and authentication) not done in this long fails, ms (3000). */
  connectTimeoutMs?: number;
  /** A gateway connection that read nothing for this long sends a heartbeat, ms (10000; 0: none). */
  heartbeatMs?: number;
  /** A gateway connection that read nothing for this long is dropped as dead, ms (3 × heartbeatMs). */
  heartbeatTimeoutMs?: number;
  /** First reconnect delay after a connection fails, ms (100); doubles per failure. */
  reconnectMinMs?: number;
  /** Longest reconnect delay, ms (5000). */
  reconnectMaxMs?: number;
  /** How long a broadcast may take on the nodes before its result is in, ms (600000). */
  broadcastTimeoutMs?: number;
  /** Largest gateway reply body accepted (16 MiB). */
  maxPacketSize?: number;
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
  /** Where lost connections, unreadable replies and throwing callbacks are reported (stderr). */
  logger?: PushLogger;
  /**
   * A gateway in this process (the node's own HTTP API passes its node's): requests routed to it
   * are handed over as calls, with the same results, and no socket in between.
   */
  localGateway?: LocalGateway;
  /**
   * The node's time points in each result (true). False: the gateways leave them out of their
   * push replies (a little less work per push); results from the local gateway keep them.
   */
  timePoints?: boolean;
}

/** What is in flight in a sender (all zero after {@link PushSender.stop}). */
export interface PushSenderPending {
  /** send() calls not yet answered. */
  calls: number;
  /** Push requests not yet ended. */
  requests: number;
  /** Users whose routes are being looked up. */
  routeLookups: number;
  /** Deadlines kept (requests, calls, connects, heartbeats, backoffs). */
  deadlines: number;
  /** Gateway connections open or opening. */
  connections: number;
}

/** How often deadlines are swept: a request times out at most this late. */
const DEADLINE_TICK_MS = 10;

/** A result waiting to be handed over, after the I/O callback that produced it. */
interface Settled {
  call: unknown;
  slot: number;
  part: number;
  result: PushResult | null;
}

/**
 * One send(): its users, in the caller's order, and one result per (user, device type). It is in
 * the deadline queue while routes are looked up; its requests carry the same deadline after.
 */
class SendCall extends Deadline {
  /**
   * Per user: undefined until its routes are known; then its result (null until it is in) when it
   * has one route, or one slot per route. (No array for the usual single route: a call in flight is
   * as few objects as it can be, since in-flight objects are what the GC copies and promotes.)
   */
  private readonly got: Array<PushResult | Array<PushResult | undefined> | null | undefined>;
  /** Results still to come (one per user until its routes are known). */
  private left: number;
  resolve!: (results: PushResult[]) => void;

  constructor(
    private readonly sender: PushSender,
    readonly users: readonly string[],
    readonly content: Buffer,
    readonly ackFlags: number,
    readonly timeoutMs: number,
    readonly begin: number,
    readonly callback: PushCallback | undefined,
    /** The call's message id, named in every result. */
    readonly messageId: string,
    /** The inbox extension of a `store: true` call (its requests carry it); null otherwise. */
    readonly ext: PushExt | null,
  ) {
    super();
    this.deadline = begin + timeoutMs;
    this.got = new Array(users.length);
    this.left = users.length;
  }

  /** The routes of user `i` are known: one request per route, or one `offline` result. */
  dispatch(i: number, found: readonly RouteEntry[]): void {
    if (this.got[i] !== undefined) return;
    const u = this.users[i]!;
    let routes = found;
    if (routes.length === 0) {
      if (!this.ext) return this.whole(i, 'offline', 'no route');
      // No gateway has the user: any one stores it (client type -1 is answered offline, and kept).
      routes = [this.sender.storeRoute()];
    }
    this.got[i] = routes.length === 1 ? null : new Array(routes.length);
    this.left += routes.length - 1;
    for (let j = 0; j < routes.length; j++) {
      const r = routes[j]!;
      const req = new PushRequest(
        this.sender,
        u,
        r.clientType,
        r,
        this.content,
        this.ackFlags,
        this.timeoutMs,
        this.messageId,
        this.ext,
        this.deadline,
      );
      req.call = this;
      req.slot = i;
      req.part = j;
      this.sender.started();
      req.start();
    }
  }

  /** Users whose routes were not had: one result each (timeout, or failure). */
  undispatched(result: 'timeout' | 'failure', reason: string, only?: readonly number[]): void {
    if (only) {
      for (const i of only) if (this.got[i] === undefined) this.whole(i, result, reason);
    } else {
      for (let i = 0; i < this.users.length; i++)
        if (this.got[i] === undefined) this.whole(i, result, reason);
    }
  }

  private whole(i: number, result: 'offline' | 'failure' | 'timeout', reason: string): void {
    this.got[i] = null;
    const r: PushResult = {
      userId: this.users[i]!,
      clientType: -1,
      result,
      code: ResultCode[result],
      reason,
      redirects: 0,
      timeline: { begin: this.begin, end: Date.now() },
      messageId: this.messageId,
      stored: false,
    };
    if (this.ext) r.storeError = `not stored: ${reason}`;
    this.sender.queue({ call: this, slot: i, part: 0, result: r });
  }

  /** @internal Deadline: routes not had in time. */
  expire(): void {
    this.undispatched('timeout', 'routes not found within the timeout');
  }

  /** One result is handed over (outside I/O); true when it was the call's last. */
  settle(i: number, j: number, r: PushResult, log: PushLogger): void {
    const slot = this.got[i];
    // Exactly one result per (user, device type): a second one for a slot is dropped.
    if (slot === null) this.got[i] = r;
    else if (Array.isArray(slot) && slot[j] === undefined) slot[j] = r;
    else return;
    if (this.callback) notify(this.callback, r, log);
    if (--this.left > 0) return;
    this.sender.callDone(this);
    const out: PushResult[] = [];
    for (const g of this.got) {
      if (Array.isArray(g)) for (const p of g) out.push(p!);
      else out.push(g!);
    }
    this.resolve(out);
  }
}

/**
 * The push client SDK for business servers (MPush's PushSender): push to one user, many users,
 * or everyone, and get exactly one result per (user, device type), always within the call's
 * timeout. Keeps a pool of connections per gateway (heartbeats, reconnect with backoff), a route
 * cache refreshed ahead of expiry, and one deadline sweep for every request.
 */
export class PushSender implements RequestHost, RouteQueryHost {
  readonly maxRedirects: number;
  readonly timeoutMs: number;
  readonly deadlines = new DeadlineQueue(DEADLINE_TICK_MS);
  readonly log: PushLogger;
  readonly local: LocalGateway | undefined;
  /** By host, then port: no key string built per push. */
  private readonly pools = new Map<string, Map<number, GatewayPool>>();
  private readonly routes: RouteCache;
  private readonly poolOptions: GatewayPoolOptions;
  private queued: Settled[] = [];
  private calls = 0;
  private requests = 0;
  private readonly broadcastTimeoutMs: number;

  private constructor(private readonly opts: PushSenderOptions) {
    if (opts.gateways.length === 0) throw new Error('PushSender needs at least one gateway address');
    this.maxRedirects = opts.maxRedirects ?? 3;
    this.timeoutMs = opts.timeout ?? 3000;
    this.broadcastTimeoutMs = opts.broadcastTimeoutMs ?? 600_000;
    this.log = opts.logger ?? stderrLogger;
    this.local = opts.localGateway;
    const heartbeatMs = opts.heartbeatMs ?? 10_000;
    this.poolOptions = {
      ...(opts.gatewaySecret ? { secret: opts.gatewaySecret } : {}),
      ...(opts.clientId ? { clientId: opts.clientId } : {}),
      ...(opts.tls ? { tls: opts.tls } : {}),
      ...(opts.timePoints === false ? { timePoints: false } : {}),
      connectTimeoutMs: opts.connectTimeoutMs ?? 3000,
      maxPacketSize: opts.maxPacketSize ?? 16 * 1024 * 1024,
      maxOutboundBytes: opts.maxOutboundBytes ?? 16 * 1024 * 1024,
      drainTimeoutMs: opts.drainTimeoutMs ?? 10_000,
      heartbeatMs,
      heartbeatTimeoutMs: opts.heartbeatTimeoutMs ?? 3 * heartbeatMs,
      connectionsPerGateway: opts.connectionsPerGateway ?? 1,
      reconnectMinMs: opts.reconnectMinMs ?? 100,
      reconnectMaxMs: opts.reconnectMaxMs ?? 5000,
    };
    const source = opts.routeSource ?? new GatewayRouteSource(this, opts.maxRouteQueryUsers ?? 10_000);
    this.routes = new RouteCache(source, opts.routeCacheMs ?? 5000, this.timeoutMs, this.log);
  }

  static create(options: PushSenderOptions): PushSender {
    return new PushSender(options);
  }

  /**
   * Connects to the configured gateways and resolves once one is up (failing early on a wrong
   * address or secret, with the last gateway's reason).
   */
  async start(): Promise<void> {
    const pools = this.opts.gateways.map((g) => this.pool(g.host, g.port));
    let left = pools.length;
    await new Promise<void>((resolve, reject) => {
      for (const p of pools) {
        p.open();
        p.acquire({
          onChannel: () => resolve(),
          onUnavailable: (reason) => {
            if (--left === 0) reject(new Error(reason));
          },
        });
      }
    });
  }

  /**
   * Closes every gateway connection. Everything in flight ends now (as a failure, "push sender
   * stopped") and every pending call is answered before this resolves; no timer or socket is left.
   * The sender may be used again afterwards (it reconnects).
   */
  async stop(): Promise<void> {
    const pools = [...this.pools.values()].flatMap((m) => [...m.values()]);
    this.pools.clear();
    for (const p of pools) p.close();
    for (const item of this.deadlines.drain()) {
      if (item instanceof SendCall) item.undispatched('failure', 'push sender stopped');
      else if (item instanceof PushRequest || item instanceof GatewayCall) item.abort('push sender stopped');
    }
    this.routes.clear();
    // Hand over what stopping ended, so no call is left waiting on a later tick.
    while (this.queued.length > 0) this.flush();
  }

  /** What is in flight (see {@link PushSenderPending}). */
  pending(): PushSenderPending {
    let connections = 0;
    for (const m of this.pools.values()) {
      for (const ch of [...m.values()].flatMap((p) => p.channels))
        if (ch.state === 'up' || ch.state === 'connecting') connections++;
    }
    return {
      calls: this.calls,
      requests: this.requests,
      routeLookups: this.routes.lookingUp,
      deadlines: this.deadlines.size,
      connections,
    };
  }

  /** @internal RequestHost: the pool of one gateway address (created on first use). */
  pool(host: string, port: number): GatewayPool {
    let byPort = this.pools.get(host);
    if (!byPort) {
      byPort = new Map();
      this.pools.set(host, byPort);
    }
    let p = byPort.get(port);
    if (!p) {
      const configured = this.opts.gateways.some((g) => g.host === host && g.port === port);
      p = new GatewayPool(host, port, this.poolOptions, this, configured);
      byPort.set(port, p);
    }
    return p;
  }

  /** The first connection to a gateway (its pool's), for tests and diagnostics. */
  channel(host: string, port: number): GatewayChannel {
    return this.pool(host, port).channels[0]!;
  }

  /** @internal RouteQueryHost */
  routeGateways(): GatewayPool[] {
    return this.opts.gateways.map((g) => this.pool(g.host, g.port));
  }

  /** A configured gateway, one that is up first: for what any node answers (store, status). */
  private anyGateway(): GatewayPool {
    const all = this.routeGateways();
    return all.find((p) => p.live) ?? all[0]!;
  }

  /** @internal SendCall: where a store push for a user with no route goes (client type -1). */
  storeRoute(): RouteEntry {
    const p = this.anyGateway();
    return { clientType: -1, host: p.host, port: p.port, connId: '' };
  }

  // ---- routes -----------------------------------------------------------------------------------

  /** @internal RequestHost */
  dropRoute(userId: string): void {
    this.routes.drop(userId);
  }

  /** @internal RequestHost */
  async relookup(userId: string, clientType: number, deadline: number): Promise<RouteEntry | undefined> {
    this.routes.drop(userId);
    const routes = (await this.routes.load([userId], deadline, true)).get(userId) ?? [];
    return routes.find((r) => r.clientType === clientType);
  }

  // ---- results: never delivered inside the I/O callback that produced them ------------------------

  /** @internal */
  started(): void {
    this.requests++;
  }

  /** @internal RequestHost */
  complete(request: PushRequest, result: PushResult): void {
    this.requests--;
    request.result = result;
    this.queue(request);
  }

  /** @internal */
  queue(s: Settled): void {
    if (this.queued.push(s) === 1) setImmediate(() => this.flush());
  }

  /** @internal */
  callDone(_call: SendCall): void {
    this.calls--;
  }

  private flush(): void {
    const batch = this.queued;
    this.queued = [];
    for (const s of batch) (s.call as SendCall | null)?.settle(s.slot, s.part, s.result!, this.log);
  }

  // ---- sending ------------------------------------------------------------------------------------

  /**
   * Pushes to `ctx.userId` / `ctx.userIds`: one request, and one result, per (user, device type),
   * in the order of the users; a user with no route gets one `offline` result, one whose routes
   * were not had in time one `timeout`. Every result is in within `ctx.timeout`. Also calls
   * `ctx.callback` for each result as it comes.
   */
  send(ctx: PushContext): Promise<PushResult[]> {
    let call: SendCall;
    try {
      if (ctx.broadcast || ctx.tags || ctx.condition) {
        throw new Error('send() pushes to users; use broadcast() for broadcast, tags or condition');
      }
      const users = ctx.userIds ?? (ctx.userId !== undefined ? [ctx.userId] : []);
      if (users.length === 0) throw new Error('PushContext needs userId or userIds');
      const timeout = ctx.timeout && ctx.timeout > 0 ? ctx.timeout : this.timeoutMs;
      const messageId = messageIdOf(ctx);
      const ext = ctx.store ? storeExt(ctx, messageId) : null;
      if (!ctx.store && ctx.ttl !== undefined) throw new Error('PushContext ttl needs store: true');
      call = new SendCall(
        this,
        users,
        contentOf(ctx, messageId),
        ackFlagsOf(ctx.ackModel),
        timeout,
        Date.now(),
        ctx.callback,
        messageId,
        ext,
      );
    } catch (err) {
      return Promise.reject(err);
    }
    this.calls++;
    const promise = new Promise<PushResult[]>((resolve) => {
      call.resolve = resolve;
    });
    const users = call.users;
    const now = call.begin;
    let missing: number[] | undefined;
    for (let i = 0; i < users.length; i++) {
      const rs = this.routes.get(users[i]!, now);
      if (rs) call.dispatch(i, rs);
      else if (missing) missing.push(i);
      else missing = [i];
    }
    if (missing) this.lookup(call, missing);
    return promise;
  }

  private lookup(call: SendCall, missing: number[]): void {
    this.deadlines.add(call, call.deadline, call.timeoutMs);
    const ids = missing.map((i) => call.users[i]!);
    this.routes.load(ids, call.deadline).then(
      (found) => {
        for (const i of missing) call.dispatch(i, found.get(call.users[i]!) ?? []);
        this.deadlines.remove(call);
      },
      (err: Error & { timeout?: boolean }) => {
        this.deadlines.remove(call);
        call.undispatched('failure', `route lookup: ${err.message}`, missing);
      },
    );
  }

  /**
   * Pushes to every connected device of every node (or those with any of `ctx.tags`, or for
   * which `ctx.condition` holds), and returns the counts once every node has written its share
   * (or `broadcastTimeoutMs` passed: those nodes are reported as errors).
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
    const flags = ackFlagsOf(ctx.ackModel);
    const replies = await Promise.all(
      targets.map((g) => this.request(g, Command.GATEWAY_PUSH, flags, body, this.broadcastTimeoutMs)),
    );
    return aggregate(taskId, targets, replies);
  }

  /**
   * The receipt of a message pushed with `store: true` (the same JSON as GET /api/messages/:id),
   * from any gateway that is up, within `options.timeout` ms (default the sender's `timeout`).
   * @throws MessageStatusError `unknown` for a message never stored (or whose receipt expired),
   *   `timeout`, or `failure` (no gateway, the receipt store failed, a malformed answer).
   */
  async status(messageId: string, options: { timeout?: number } = {}): Promise<MessageReceipt> {
    checkMessageId(messageId, 'messageId');
    const timeout = options.timeout && options.timeout > 0 ? options.timeout : this.timeoutMs;
    const p = this.anyGateway();
    const body = MessageStatusCodec.encode({ messageId });
    const r = await this.request(p, ExtCommand.GATEWAY_MESSAGE_STATUS, 0, body, timeout);
    if (r.ok) {
      try {
        return decodeReceipt(r.data);
      } catch (err) {
        throw new MessageStatusError('failure', `message status: ${(err as Error).message}`);
      }
    }
    if (r.code === ErrorCode.UNKNOWN)
      throw new MessageStatusError(
        'unknown',
        `unknown message ${JSON.stringify(messageId)} (never stored, or its receipt expired)`,
      );
    if (r.timeout)
      throw new MessageStatusError(
        'timeout',
        `message status: no reply from ${p.address} within ${timeout} ms`,
      );
    throw new MessageStatusError('failure', `message status: ${r.reason}`);
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
    const replies = await Promise.all(
      targets.map((g) => this.request(g, ExtCommand.GATEWAY_BROADCAST_CONTROL, 0, body, this.timeoutMs)),
    );
    return aggregate(taskId, targets, replies);
  }

  /**
   * Where a broadcast goes. The caller's `broadcastTargets()` is bounded by the sender's timeout:
   * when it fails or is late, the configured gateways are used (each node forwards a broadcast to
   * the live nodes it knows), so a slow registry never leaves a broadcast waiting.
   */
  private async broadcastTargets(): Promise<GatewayAddress[]> {
    const lookup = this.opts.broadcastTargets;
    if (!lookup) return this.opts.gateways;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    try {
      return await Promise.race([lookup(), late]);
    } catch (err) {
      this.log.warn('broadcastTargets failed; using the configured gateways', {
        err: (err as Error).message,
      });
      return this.opts.gateways;
    } finally {
      clearTimeout(timer);
    }
  }

  /** One request/reply on a gateway, bounded by `timeoutMs` from now. */
  private request(
    g: GatewayAddress,
    cmd: number,
    flags: number,
    body: Buffer,
    timeoutMs: number,
  ): Promise<CallOutcome> {
    return new Promise((resolve) => {
      const c = new GatewayCall(this.deadlines, this.pool(g.host, g.port), cmd, flags, body, resolve);
      c.start(this.deadlines.clock() + timeoutMs, timeoutMs);
    });
  }
}

/** A call's message id: the caller's `msgId` or `msg.msgId` (which must agree), else generated. */
function messageIdOf(ctx: PushContext): string {
  const own = ctx.msg?.msgId;
  if (ctx.msgId !== undefined) checkMessageId(ctx.msgId, 'msgId');
  if (own !== undefined) checkMessageId(own, 'msg.msgId');
  if (ctx.msgId !== undefined && own !== undefined && own !== ctx.msgId)
    throw new Error('PushContext msgId and msg.msgId differ');
  return ctx.msgId ?? own ?? randomUUID();
}

/**
 * The inbox extension of a `store: true` call. Only such a call sends it: the node keeps nothing
 * for another push, so its requests stay as they were (the extension costs the push client and
 * the node a JSON encode and parse per request).
 */
function storeExt(ctx: PushContext, messageId: string): PushExt {
  if (ctx.ttl === undefined) return { messageId, store: true };
  if (!Number.isInteger(ctx.ttl) || ctx.ttl < 1)
    throw new Error('PushContext ttl must be a positive integer (seconds)');
  return { messageId, store: true, ttl: ctx.ttl };
}

function checkMessageId(id: unknown, what: string): void {
  if (typeof id !== 'string' || id === '' || id.length > MAX_MESSAGE_ID_LENGTH)
    throw new Error(`${what} must be a string of 1 to ${MAX_MESSAGE_ID_LENGTH} characters`);
}

/** The PUSH body: `content`, or the PushMsg JSON, which carries the message's id as `msgId`. */
function contentOf(ctx: PushContext, messageId?: string): Buffer {
  if (ctx.msg) {
    const msg =
      messageId === undefined || ctx.msg.msgId === messageId ? ctx.msg : { ...ctx.msg, msgId: messageId };
    return Buffer.from(JSON.stringify(msg), 'utf8');
  }
  if (ctx.content === undefined) throw new Error('PushContext needs content or msg');
  return typeof ctx.content === 'string' ? Buffer.from(ctx.content, 'utf8') : ctx.content;
}

/** Calls the caller's callbacks for one result; one that throws is reported, and changes nothing. */
function notify(cb: PushCallback, r: PushResult, log: PushLogger): void {
  try {
    cb.onResult?.(r);
    if (r.result === 'success') cb.onSuccess?.(r);
    else if (r.result === 'failure') cb.onFailure?.(r);
    else if (r.result === 'offline') cb.onOffline?.(r);
    else cb.onTimeout?.(r);
  } catch (err) {
    log.error('push callback threw', {
      userId: r.userId,
      result: r.result,
      err: err instanceof Error ? (err.stack ?? err.message) : String(err),
    });
  }
}

function aggregate(taskId: string, targets: GatewayAddress[], replies: CallOutcome[]): BroadcastResult {
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
    let error: string | undefined;
    if (!r.ok) error = r.reason;
    else if (r.data === '') error = 'empty reply';
    else {
      try {
        const c = decodeTaskReport(r.data);
        out.matched += c.matched;
        out.sent += c.sent;
        out.acked += c.acked;
        out.failed += c.failed;
        out.nodes.push({ gateway, ...c });
        return;
      } catch (err) {
        error = (err as Error).message;
      }
    }
    out.result = 'failure';
    out.reason = error;
    out.nodes.push({ gateway, status: 'error', matched: 0, sent: 0, acked: 0, failed: 0, error });
  });
  return out;
}
