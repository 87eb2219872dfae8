import { connect, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { signGatewayAuth } from '../../crypto/gateway-mac.js';
import {
  decodeHelloReply,
  ExtCommand,
  encodePacket,
  FrameDecoder,
  type FrameHandler,
  GATEWAY_EXT_VERSION,
  GatewayAuthCodec,
  GatewayHelloCodec,
  HEARTBEAT_FRAME,
  type Packet,
} from '../../protocol/index.js';
import { Deadline, type DeadlineQueue } from '../../util/deadline-queue.js';
import { IntMap } from '../../util/int-map.js';
import type { OutboundLimit, OutboundOwner, OutboundWriter } from '../../util/outbound-writer.js';
import { streamWriter } from '../../util/stream-sink.js';
import { type ClientTlsOptions, tlsConnectOptions } from '../tls.js';
import { decodeReply } from './gateway-reply.js';
import type { PushLogger } from './types.js';

/** Receives the reply to one gateway request, or learns the request ended without one. */
export interface ReplyHandler {
  /** The reply naming this request. May throw: the request is then failed with the error. */
  onReply(packet: Packet): void;
  /** No reply will come: the connection dropped, or the reply could not be read. */
  onChannelClosed(reason: string): void;
}

export interface GatewayChannelOptions {
  secret?: string;
  clientId?: string;
  /** Connect with TLS (a gateway with gateway.tls): the connect is done once the handshake is. */
  tls?: ClientTlsOptions;
  /** A connect (and its authentication) not done in this long fails, ms. */
  connectTimeoutMs: number;
  /** Largest reply body accepted. */
  maxPacketSize: number;
  /**
   * Request bytes queued to a gateway that is not reading them before the channel is dropped
   * (its pending requests fail).
   */
  maxOutboundBytes: number;
  /** How long a backpressured connection may take to drain before it is dropped, ms. */
  drainTimeoutMs: number;
  /** A connection that read nothing for this long is sent a heartbeat, ms (0: none). */
  heartbeatMs: number;
  /** A connection that read nothing (heartbeat echoes included) for this long is dropped, ms. */
  heartbeatTimeoutMs: number;
  /** False: GATEWAY_HELLO asks the gateway to leave the time points out of its push replies. */
  timePoints?: boolean;
}

/** What a channel reports to, and keeps its deadline in (its pool). */
export interface ChannelHost {
  readonly deadlines: DeadlineQueue;
  readonly log: PushLogger;
  /** Connected (and authenticated): the channel carries requests. */
  /** `ch` can take requests: it came up, or it drained what it had queued. */
  channelUp(ch: GatewayChannel): void;
  /** A connect attempt failed, or a connection that was up dropped. */
  channelDown(ch: GatewayChannel, reason: string, wasUp: boolean): void;
}

type State = 'idle' | 'connecting' | 'up' | 'backoff' | 'closed';

/** Lanes of the deadline queue that are not request timeouts (see DeadlineQueue.add). */
const LANE_CONNECT = -1;
const HELLO_BODY = GatewayHelloCodec.encode({ version: GATEWAY_EXT_VERSION });
const HELLO_NO_TIME_POINTS = GatewayHelloCodec.encode({ version: GATEWAY_EXT_VERSION, timePoints: false });
const LANE_HEARTBEAT = -2;
const LANE_BACKOFF = -3;

/**
 * One TCP connection from a push client to a gateway, multiplexing requests by sessionId (the
 * request bus). Its pool opens it ({@link connect}), and parks it between attempts
 * ({@link backoff}); the channel reports each change to the pool. Each request learns its fate
 * once: by its reply, or by {@link ReplyHandler.onChannelClosed} when the connection drops.
 *
 * A reply that cannot be read fails the one request it names; a reply that names no pending
 * request is dropped (a late answer to a request that already ended). Only a stream that cannot
 * be cut into packets drops the connection, since no later reply could then be trusted.
 *
 * Health: a connection that has read nothing for `heartbeatMs` sends a heartbeat (the gateway
 * echoes it), and one that read nothing for `heartbeatTimeoutMs` is dropped as dead.
 */
export class GatewayChannel extends Deadline implements FrameHandler, OutboundOwner {
  private socket: Socket | null = null;
  private writer: OutboundWriter | null = null;
  private decoder: FrameDecoder | null = null;
  /** Requests awaiting their reply, by sessionId (an IntMap: see util/int-map.ts). */
  private readonly pending = new IntMap<ReplyHandler>();
  private seq = 0;
  private stateName: State = 'idle';
  private lastRead = 0;
  /** Consecutive failed attempts: the pool's backoff grows with it. */
  failures = 0;
  /** Replies that named no pending request (late, or answered twice). */
  strayReplies = 0;
  /** The gateway accepted GATEWAY_HELLO: it answers with mpush-ts's replies. */
  extended = false;
  /** Why the gateway refused the hello, if it did: the reason a close that follows is given. */
  private refusal = '';

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly opts: GatewayChannelOptions,
    private readonly owner: ChannelHost,
  ) {
    super();
  }

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  private helloBody(): Buffer {
    return this.opts.timePoints === false ? HELLO_NO_TIME_POINTS : HELLO_BODY;
  }

  get state(): State {
    return this.stateName;
  }

  /** Up: connected, authenticated, writable. */
  get connected(): boolean {
    return this.stateName === 'up';
  }

  /** Requests written and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * More than half of `maxOutboundBytes` waits to leave for the gateway: the pool writes no new
   * request here until it drains. A large batch (or a slow gateway) then holds requests back, each
   * within its own deadline, instead of queueing past the bound, which drops the connection and
   * fails everything it carried.
   */
  get congested(): boolean {
    const s = this.socket;
    return s !== null && s.writableLength > this.opts.maxOutboundBytes / 2;
  }

  /** Starts a connect attempt, when idle or parked; its outcome goes to the pool. */
  connect(): void {
    if (this.stateName !== 'idle' && this.stateName !== 'backoff') return;
    this.stateName = 'connecting';
    this.extended = false;
    this.refusal = '';
    const deadlines = this.owner.deadlines;
    deadlines.add(this, deadlines.clock() + this.opts.connectTimeoutMs, LANE_CONNECT);
    const tls = this.opts.tls;
    const socket = tls
      ? connectTls(tlsConnectOptions(this.host, this.port, tls)).setNoDelay(true)
      : connect({ host: this.host, port: this.port, noDelay: true });
    this.socket = socket;
    socket.on('error', (err) => {
      if (this.socket !== socket) return;
      if (this.stateName === 'connecting') this.attemptFailed(`gateway ${this.address}: ${err.message}`);
      // TLS 1.3 finishes the client's handshake before the gateway checks its certificate: a
      // refused one arrives as an alert on a connection that is up. Its close says why.
      else if (tls && !this.refusal) this.refusal = err.message;
    });
    socket.on('close', () => this.dropped(socket));
    // What was queued went out: requests held back while `congested` may be written.
    socket.on('drain', () => {
      if (this.socket === socket && this.stateName === 'up') this.owner.channelUp(this);
    });
    socket.once(tls ? 'secureConnect' : 'connect', () => {
      if (this.socket !== socket) return;
      this.lastRead = Date.now();
      this.writer = streamWriter(socket, this, {
        maxBytes: this.opts.maxOutboundBytes,
        drainTimeoutMs: this.opts.drainTimeoutMs,
      });
      this.decoder = new FrameDecoder(this, { maxBodyLength: this.opts.maxPacketSize });
      socket.on('data', (chunk: Buffer) => this.read(socket, chunk));
      if (this.opts.secret) this.login(this.opts.secret);
      else this.up(true);
    });
  }

  private read(socket: Socket, chunk: Buffer): void {
    if (this.socket !== socket) return;
    this.lastRead = Date.now();
    try {
      this.decoder?.push(chunk);
    } catch (err) {
      // Only a stream that cannot be framed gets here: every later byte is suspect.
      const reason = `gateway ${this.address} sent an undecodable stream: ${(err as Error).message}`;
      this.owner.log.error(reason);
      this.drop(reason);
    }
  }

  /**
   * With a gateway secret: GATEWAY_HELLO first, whose reply carries this connection's challenge
   * (a fresh nonce), then GATEWAY_AUTH over it. A gateway with no secret sends no nonce: the
   * channel is up at once.
   */
  private login(secret: string): void {
    this.write(ExtCommand.GATEWAY_HELLO, 0, this.helloBody(), {
      onReply: (p) => {
        if (this.stateName !== 'connecting') return;
        const r = decodeReply(p);
        if (!r.ok) return this.attemptFailed(`gateway ${this.address} refused hello: ${r.reason}`);
        this.extended = true;
        // A reply that cannot be read throws: the channel fails this attempt with the reason.
        const { nonce } = decodeHelloReply(r.data);
        if (nonce) this.authenticate(secret, nonce);
        else this.up(false);
      },
      onChannelClosed: (reason) => {
        if (this.stateName === 'connecting') this.attemptFailed(reason);
      },
    });
  }

  private authenticate(secret: string, nonce: Buffer): void {
    const body = GatewayAuthCodec.encode(signGatewayAuth(secret, this.opts.clientId ?? 'push-sender', nonce));
    this.write(ExtCommand.GATEWAY_AUTH, 0, body, {
      onReply: (p) => {
        if (this.stateName !== 'connecting') return;
        const r = decodeReply(p);
        if (r.ok) this.up(false);
        else this.attemptFailed(`gateway ${this.address} refused auth: ${r.reason}`);
      },
      onChannelClosed: (reason) => {
        if (this.stateName === 'connecting') this.attemptFailed(reason);
      },
    });
  }

  /** Up; `sayHello` when the login did not already say GATEWAY_HELLO. */
  private up(sayHello: boolean): void {
    this.stateName = 'up';
    this.failures = 0;
    // Ask for mpush-ts's replies (ERROR 4 on an ack timeout, named time points). Pipelined, not
    // awaited: the gateway reads it before any request written after it. A gateway that does not
    // know it (MPush's own) answers with MPush's replies, which the requests read as well.
    if (sayHello) {
      this.write(ExtCommand.GATEWAY_HELLO, 0, this.helloBody(), {
        onReply: (p) => {
          const r = decodeReply(p);
          this.extended = r.ok;
          // Refused (a gateway secret we lack): if the gateway then closes, the requests behind
          // the hello fail with its reason, not a bare "connection lost".
          this.refusal = r.ok ? '' : r.reason;
        },
        onChannelClosed: () => {},
      });
    }
    const deadlines = this.owner.deadlines;
    if (this.opts.heartbeatMs > 0) {
      deadlines.add(this, deadlines.clock() + this.opts.heartbeatMs, LANE_HEARTBEAT);
    } else {
      deadlines.remove(this);
    }
    this.owner.channelUp(this);
  }

  private attemptFailed(reason: string): void {
    this.failures++;
    this.detach();
    this.owner.deadlines.remove(this);
    this.stateName = 'idle'; // before failPending: the auth handler must see the attempt over
    this.failPending(reason);
    this.owner.channelDown(this, reason, false);
  }

  /** Parks the channel until `atMs`; then it is idle again and the pool may connect it. */
  backoff(atMs: number): void {
    if (this.stateName !== 'idle') return;
    this.stateName = 'backoff';
    this.owner.deadlines.add(this, atMs, LANE_BACKOFF);
  }

  /** @internal Deadline: the connect, heartbeat or backoff deadline passed. */
  expire(now: number): void {
    switch (this.stateName) {
      case 'connecting':
        this.attemptFailed(`connect to gateway ${this.address} timed out`);
        return;
      case 'up': {
        const silent = now - this.lastRead;
        if (silent >= this.opts.heartbeatTimeoutMs) {
          const reason = `gateway ${this.address} answered no heartbeat within heartbeatTimeoutMs`;
          this.owner.log.warn(reason);
          this.drop(reason);
          return;
        }
        if (silent >= this.opts.heartbeatMs) this.writer?.write(HEARTBEAT_FRAME);
        const next = Math.min(this.opts.heartbeatMs, this.opts.heartbeatTimeoutMs - silent);
        this.owner.deadlines.add(this, now + Math.max(1, next), LANE_HEARTBEAT);
        return;
      }
      case 'backoff':
        this.stateName = 'idle';
        this.owner.channelDown(this, '', false); // the pool decides whether to connect now
        return;
      default:
    }
  }

  /**
   * Sends one request; the reply (matched by sessionId) goes to `handler`.
   * @returns the sessionId, or -1 when the channel is not up (nothing was written: the request
   *   may go elsewhere).
   */
  send(cmd: number, flags: number, body: Buffer, handler: ReplyHandler): number {
    if (this.stateName !== 'up') return -1;
    return this.write(cmd, flags, body, handler);
  }

  private write(cmd: number, flags: number, body: Buffer, handler: ReplyHandler): number {
    const writer = this.writer;
    if (!writer || !this.socket || this.socket.destroyed) return -1;
    this.seq = (this.seq + 1) & 0x7fffffff || 1;
    const sessionId = this.seq;
    this.pending.set(sessionId, handler);
    // Past a limit the channel is dropped (on the next tick): this request is pending with the
    // others and fails with them. It was (partly) written, so it is not sent again elsewhere.
    writer.write(encodePacket({ cmd, flags, sessionId, body }));
    return sessionId;
  }

  /** @internal OutboundOwner: the gateway stopped reading what this channel writes. */
  onOutboundLimit(limit: OutboundLimit): void {
    const reason =
      limit === 'outbound-limit'
        ? `gateway ${this.address} not reading: more than maxOutboundBytes queued`
        : `gateway ${this.address} not reading: not drained within drainTimeoutMs`;
    // Not inside the send() whose write passed the limit: its caller is mid-call.
    process.nextTick(() => this.drop(reason));
  }

  /** Forgets a request (it ended otherwise): a late reply to it is then dropped here. */
  forget(sessionId: number): void {
    this.pending.delete(sessionId);
  }

  /** @internal FrameHandler */
  onPacket(p: Packet): void {
    const handler = this.pending.get(p.sessionId);
    if (!handler) {
      // A late reply to a request that already ended, or a second reply: the first one counted.
      this.strayReplies++;
      this.owner.log.debug?.('gateway reply names no pending request', {
        gateway: this.address,
        sessionId: p.sessionId,
      });
      return;
    }
    this.pending.delete(p.sessionId);
    try {
      handler.onReply(p);
    } catch (err) {
      // A reply its handler cannot read ends that request alone, as a failure: it was already
      // taken off `pending`, so nothing else would ever settle it.
      const reason = `${(err as Error).message} (gateway ${this.address})`;
      this.owner.log.warn(reason, { sessionId: p.sessionId });
      handler.onChannelClosed(reason);
    }
  }

  /** @internal FrameHandler */
  onHeartbeat(): void {}

  /** @internal FrameHandler: a reply larger than maxPacketSize was skipped; its request fails. */
  onOversized(_cmd: number, sessionId: number, length: number): void {
    const handler = this.pending.get(sessionId);
    const reason = `gateway ${this.address} reply of ${length} bytes exceeds maxPacketSize`;
    this.owner.log.warn(reason, { sessionId });
    if (!handler) return;
    this.pending.delete(sessionId);
    handler.onChannelClosed(reason);
  }

  private dropped(socket: Socket): void {
    if (this.socket !== socket) return;
    if (this.stateName === 'connecting')
      return this.attemptFailed(`gateway ${this.address} closed the connection`);
    this.drop(
      this.refusal
        ? `gateway ${this.address} refused: ${this.refusal}`
        : `gateway ${this.address} connection lost`,
    );
  }

  /** Drops a connection that was up: its pending requests fail, the pool hears of it. */
  private drop(reason: string): void {
    if (this.stateName === 'connecting') return this.attemptFailed(reason);
    if (this.stateName !== 'up') return;
    this.failures++;
    this.detach();
    this.owner.deadlines.remove(this);
    this.stateName = 'idle';
    this.failPending(reason);
    this.owner.channelDown(this, reason, true);
  }

  private detach(): void {
    const socket = this.socket;
    this.socket = null;
    this.decoder = null;
    this.writer?.stop();
    this.writer = null;
    socket?.destroy();
  }

  private failPending(reason: string): void {
    if (this.pending.size === 0) return;
    const handlers = [...this.pending.values()];
    this.pending.clear();
    for (const h of handlers) h.onChannelClosed(reason);
  }

  /** Closes for good: pending requests fail now, with `reason`. */
  close(reason = 'push sender stopped'): void {
    this.stateName = 'closed';
    this.owner.deadlines.remove(this);
    this.detach();
    this.failPending(reason);
  }
}
