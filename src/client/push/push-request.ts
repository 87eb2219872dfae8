import {
  Command,
  ErrorCode,
  Flags,
  GatewayPushCodec,
  type Packet,
  type PushExt,
} from '../../protocol/index.js';
import { Deadline, type DeadlineQueue } from '../../util/deadline-queue.js';
import type { GatewayChannel, ReplyHandler } from './gateway-channel.js';
import type { GatewayPool, PoolWaiter } from './gateway-pool.js';
import { decodePushOk, decodePushReply, decodeReply, type PushReplyInfo } from './gateway-reply.js';
import type { LocalGateway, PushAnswer } from './local-gateway.js';
import type { RouteEntry } from './route-source.js';
import { type PushResult, ResultCode, type ResultName, type Timeline } from './types.js';

/** What a request needs from its sender. */
export interface RequestHost {
  /** Where the request's deadline is kept (one sweep for every request of the sender). */
  readonly deadlines: DeadlineQueue;
  /** The connections to one gateway. */
  pool(host: string, port: number): GatewayPool;
  /** Looks the route of (user, client type) up again, bypassing the cache. */
  relookup(userId: string, clientType: number, deadline: number): Promise<RouteEntry | undefined>;
  dropRoute(userId: string): void;
  /** Queues the completion to run after the current I/O callback. */
  complete(request: PushRequest, result: PushResult): void;
  readonly maxRedirects: number;
  /** The gateway in this process, if any: requests routed to it are handed over, not sent. */
  readonly local?: LocalGateway | undefined;
}

const GATEWAY_MARGIN_MS = 500;

/** A store push written to a node that never answered: it may have kept the message, or not. */
const UNKNOWN_STORE = 'no reply from the gateway: whether it was stored is unknown';
/** A store push that never reached a gateway. */
const NOT_STORED = 'not stored: the push reached no gateway';

/**
 * One push to one (user, client type): the state machine of DESIGN.md. It ends in exactly one
 * result (success, failure, offline, timeout), by compare-and-set from `init`; a late reply
 * after a timeout, or a second reply, is dropped. Its deadline is the call's (set when the caller
 * called), kept in the sender's deadline queue: no timer of its own. Redirects (ERROR 3) follow
 * the user to its new node with a new sessionId, at most `maxRedirects` times, within the same
 * deadline.
 *
 * A request goes to a connection of its gateway's pool that is up; one not yet written when that
 * connection went down is written on another. Once written it is never sent again (but on a
 * redirect, which the node answered without delivering): a lost connection fails it.
 *
 * Its result names the call's messageId. A `store: true` call's requests carry the inbox
 * extension (push-ext.ts: messageId, store, ttl; one object shared by the call's requests), and
 * the reply says whether the node kept the message; other requests are sent and read exactly as
 * before the inbox (the node keeps nothing for them, so there is nothing to tell it). Client type
 * -1 is the store push for a user with no route at all: the node answers it `offline` and keeps
 * the message (gateway-server.ts, pushWithExt).
 */
export class PushRequest extends Deadline implements ReplyHandler, PoolWaiter {
  private state: 'init' | 'done' = 'init';
  private readonly timeline: Timeline;
  private redirects = 0;
  private channelRef: GatewayChannel | null = null;
  private poolRef: GatewayPool | null = null;
  private sessionId = -1;
  /** Handed to a gateway (written to its connection, or to the local gateway) since the last route. */
  private handedOver = false;
  private tries = 0;
  /** Kept while a redirect may still need to resend it; dropped once no resend can happen. */
  private content: Buffer | null;
  /** @internal where the sender files the result: the call, and the result's place in it */
  call: unknown = null;
  /** @internal */
  slot = 0;
  /** @internal */
  part = 0;
  /** @internal the result, once handed to the sender */
  result: PushResult | null = null;

  /**
   * @param timeoutMs the call's timeout: with `deadlineMs`, the lane of the deadline queue.
   * @param deadlineMs when the call must be answered (default: now + timeoutMs).
   */
  constructor(
    private readonly host: RequestHost,
    readonly userId: string,
    readonly clientType: number,
    private route: RouteEntry,
    content: Buffer,
    private readonly ackFlags: number,
    readonly timeoutMs: number,
    private readonly messageId: string,
    /** The inbox extension of a `store: true` call; null otherwise. */
    private readonly ext: PushExt | null,
    deadlineMs?: number,
  ) {
    super();
    this.content = content;
    const now = Date.now();
    this.timeline = { begin: now };
    this.deadline = deadlineMs ?? now + timeoutMs;
  }

  get done(): boolean {
    return this.state === 'done';
  }

  start(): void {
    this.host.deadlines.add(this, this.deadline, this.timeoutMs);
    this.acquire();
  }

  private acquire(): void {
    this.timeline['check-gateway-conn'] = Date.now();
    const local = this.host.local;
    if (local?.serves(this.route.host, this.route.port)) return this.handOver(local);
    const pool = this.host.pool(this.route.host, this.route.port);
    this.poolRef = pool;
    pool.acquire(this);
  }

  /** @internal PoolWaiter: a connection that is up. */
  onChannel(ch: GatewayChannel): void {
    if (this.done || !this.content) return;
    const left = this.deadline - Date.now();
    const body = GatewayPushCodec.encode({
      userId: this.userId,
      clientType: this.clientType,
      // The node gives up first, so its answer (ack timeout) beats our own deadline.
      timeout: Math.max(1, left - GATEWAY_MARGIN_MS),
      content: this.content,
      taskId: '',
      tags: null,
      condition: '',
      ext: this.ext ?? undefined,
    });
    this.timeline['send-to-gateway-begin'] = Date.now();
    const sid = ch.send(Command.GATEWAY_PUSH, this.ackFlags, body, this);
    if (sid < 0) {
      // Nothing written: another connection of the pool may carry it.
      if (++this.tries < (this.poolRef?.channels.length ?? 1)) return this.poolRef?.acquire(this);
      return this.finish('failure', `gateway ${ch.address} not writable`);
    }
    this.channelRef = ch;
    this.sessionId = sid;
    this.handedOver = true;
    this.timeline['send-to-gateway-end'] = Date.now();
    if (this.redirects >= this.host.maxRedirects) this.content = null;
  }

  /** The route is this process's gateway: the same push, handed over with no socket in between. */
  private handOver(local: LocalGateway): void {
    this.poolRef = null;
    const content = this.content;
    if (!content) return;
    const now = Date.now();
    // As on a connection, the node gives up first (see onChannel).
    const timeout = Math.max(1, this.deadline - now - GATEWAY_MARGIN_MS);
    this.timeline['send-to-gateway-begin'] = now;
    this.timeline['send-to-gateway-end'] = now;
    this.handedOver = true;
    if (this.redirects >= this.host.maxRedirects) this.content = null;
    const p = {
      userId: this.userId,
      clientType: this.clientType,
      timeout,
      content,
      ackFlags: this.ackFlags,
      ext: this.ext,
    };
    local.push(p, (a) => {
      if (!this.done) this.onAnswer(a);
    });
  }

  /** @internal PoolWaiter: no connection to the gateway could be had. */
  onUnavailable(reason: string): void {
    // The node may be gone: the next push looks the route up again instead of reusing this one.
    this.host.dropRoute(this.userId);
    this.finish('failure', reason);
  }

  /** @internal ReplyHandler. Throws on a reply that does not decode: the channel fails us then. */
  onReply(p: Packet): void {
    if (this.done) return;
    const r = decodeReply(p);
    const ext = this.ext !== null;
    if (r.ok) {
      if (!ext) return this.onAnswer({ ok: true, timePoints: decodePushOk(r.data) });
      const info = decodePushReply(r.data, this.messageId, true);
      return this.onAnswer({ ok: true, timePoints: info.timePoints, info });
    }
    // A redirect is not stored by the node (its data is not read): the node the user moved to decides.
    if (r.code === ErrorCode.ROUTER_CHANGE) return this.redirect();
    const info = ext ? decodePushReply(r.data, this.messageId, false) : undefined;
    this.onAnswer({ ok: false, code: r.code, reason: r.reason, info });
  }

  /** What the gateway answered (read from its connection, or from the local gateway). */
  private onAnswer(a: PushAnswer): void {
    if (a.ok) return this.finish('success', undefined, a.info, a.timePoints);
    switch (a.code) {
      case ErrorCode.ROUTER_CHANGE:
        return this.redirect();
      case ErrorCode.OFFLINE:
        this.host.dropRoute(this.userId);
        return this.finish('offline', a.reason, a.info);
      case ErrorCode.ACK_TIMEOUT:
        return this.finish('timeout', a.reason, a.info);
      default:
        return this.finish('failure', a.reason, a.info);
    }
  }

  /** @internal ReplyHandler */
  onChannelClosed(reason: string): void {
    this.finish('failure', reason);
  }

  /** @internal Deadline */
  expire(): void {
    this.finish('timeout', 'no reply within the timeout');
  }

  /** Ends the request now as a failure (the sender is stopping). */
  abort(reason: string): void {
    this.finish('failure', reason);
  }

  private redirect(): void {
    this.host.dropRoute(this.userId);
    if (this.redirects >= this.host.maxRedirects) {
      return this.finish('failure', `route changed ${this.redirects + 1} times: redirect bound reached`);
    }
    this.redirects++;
    this.channelRef = null;
    this.sessionId = -1;
    this.handedOver = false;
    this.tries = 0;
    this.host.relookup(this.userId, this.clientType, this.deadline).then(
      (route) => {
        if (this.done) return;
        if (!route) return this.finish('offline', 'offline after route change');
        this.route = route;
        this.acquire();
      },
      (err: Error) => this.finish('failure', `route lookup: ${err.message}`),
    );
  }

  private finish(
    result: ResultName,
    reason?: string,
    info?: PushReplyInfo,
    timePoints?: Record<string, number>,
  ): void {
    if (this.state !== 'init') return; // compare-and-set: the first outcome wins
    this.state = 'done';
    this.host.deadlines.remove(this);
    this.poolRef?.release(this);
    if (this.channelRef && this.sessionId > 0) this.channelRef.forget(this.sessionId);
    this.content = null;
    this.timeline.end = Date.now();
    const out: PushResult = {
      userId: this.userId,
      clientType: this.clientType,
      result,
      code: ResultCode[result],
      gateway: this.poolRef ? this.poolRef.address : `${this.route.host}:${this.route.port}`,
      redirects: this.redirects,
      timeline: this.timeline,
      messageId: this.messageId,
      stored: info?.stored ?? false,
    };
    if (reason !== undefined) out.reason = reason;
    if (timePoints !== undefined) out.timePoints = timePoints;
    if (info?.storeError !== undefined) out.storeError = info.storeError;
    else if (this.ext && !info) out.storeError = this.handedOver ? UNKNOWN_STORE : NOT_STORED;
    this.host.complete(this, out);
  }
}

/** Packet flags of an ack model. */
export function ackFlagsOf(model: string | undefined): number {
  switch (model) {
    case 'AUTO_ACK':
      return Flags.AUTO_ACK;
    case 'BIZ_ACK':
      return Flags.BIZ_ACK;
    default:
      return 0;
  }
}
