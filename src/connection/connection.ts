import type { Cipher } from '../crypto/index.js';
import { type CryptoError, inflate } from '../crypto/index.js';
import { Disconnect, type DisconnectReason } from '../protocol/disconnect.js';
import {
  decodeJsonPacket,
  Flags,
  FrameDecoder,
  type FrameHandler,
  HEARTBEAT_FRAME,
  type JsonPacket,
  type Packet,
  ProtocolError,
} from '../protocol/index.js';
import {
  type DeadlineScheduler,
  type OutboundLimit,
  type OutboundLimits,
  type OutboundOwner,
  OutboundWriter,
} from '../util/outbound-writer.js';
import type { TimerWheel } from '../util/timer-wheel.js';
import { encodeBinary, encodeJson, type Outbound } from './outbound.js';
import type { Transport } from './transport.js';

/** What the server does with what a connection reads. Called synchronously, in wire order. */
export interface ConnectionHandler {
  onPacket(conn: Connection, packet: Packet): void;
  onJsonPacket(conn: Connection, packet: JsonPacket): void;
  onHeartbeat(conn: Connection): void;
  /** Undecodable input. The handler answers (ERROR) and closes. */
  onProtocolError(conn: Connection, err: ProtocolError | CryptoError): void;
  onClose(conn: Connection, reason: DisconnectReason): void;
}

/** Limits and services shared by all connections of a server (one object, not one per connection). */
export interface ConnectionContext {
  readonly handler: ConnectionHandler;
  readonly wheel: TimerWheel<Connection>;
  maxPacketSize: number;
  maxInflatedSize: number;
  /**
   * `limits.maxOutboundBytes` and `limits.drainTimeoutMs`, one object for every connection's writer
   * (each connection files its writer's drain deadline on the wheel).
   */
  readonly outbound: OutboundLimits;
  handshakeTimeoutMs: number;
  heartbeatGraceMs: number;
  maxHeartbeatTimeouts: number;
  compressThreshold: number;
}

export type WireProtocol = 'binary' | 'json';

/**
 * One device connection: its cipher, session, heartbeat and client info, and the single path
 * every write goes through: the {@link OutboundWriter} (corked per tick, bounded by
 * `limits.maxOutboundBytes`, drain deadline `limits.drainTimeoutMs` kept on the timer wheel).
 */
export class Connection implements FrameHandler, OutboundOwner, DeadlineScheduler {
  readonly id: number;
  readonly transport: Transport;
  private readonly writer: OutboundWriter;
  readonly ctx: ConnectionContext;
  protocol: WireProtocol;
  /** Only while a frame straddles reads: between frames a connection keeps no decoder. */
  private decoder: FrameDecoder | null = null;

  /** Current cipher: RSA before the handshake, AES after; null on WebSocket JSON. */
  cipher: Cipher | null = null;
  handshaked = false;
  deviceId = '';
  osName = '';
  osVersion = '';
  clientVersion = '';
  clientType = -1;
  /** The fast-connect session id given at handshake. */
  sessionId = '';
  /** Bound user, '' when unbound. */
  userId = '';
  tags = '';
  heartbeatMs = 0;
  /**
   * Packets the dispatcher holds while an asynchronous handler (fast connect) runs, replayed in
   * order after it; null when nothing is being held.
   */
  held: Packet[] | null = null;

  /** When the connection was accepted, exact (the wheel's clock read then): it orders connections across nodes. */
  readonly createdAt: number;
  /** Coarse time of the last read (the wheel's clock). */
  lastReadAt: number;
  /**
   * Set by every read, cleared by every check: a read the coarse clock dates to the check's own
   * tick (a pong answering the ping sent then) still counts.
   */
  private readSinceCheck = false;
  misses = 0;
  private nextCheckAt = Number.POSITIVE_INFINITY;
  closed = false;
  closeReason: DisconnectReason | null = null;
  private drainWaiters: Array<() => void> | null = null;

  constructor(id: number, transport: Transport, protocol: WireProtocol, ctx: ConnectionContext) {
    this.id = id;
    this.transport = transport;
    this.protocol = protocol;
    this.ctx = ctx;
    this.writer = new OutboundWriter(transport, this, ctx.outbound, this);
    this.createdAt = ctx.wheel.exactNow();
    this.lastReadAt = ctx.wheel.now;
    this.scheduleCheck(this.createdAt + ctx.handshakeTimeoutMs);
  }

  // ---- reading -------------------------------------------------------------------------------

  /** Bytes from the transport (TCP, or a binary WebSocket frame). */
  receive(chunk: Buffer): void {
    if (this.closed) return;
    this.lastReadAt = this.ctx.wheel.now;
    this.readSinceCheck = true;
    // Bodies are copied: a TCP transport reads into one buffer it reuses (tcp-transport.ts), and a
    // handler may keep a body past its call (fast connect holds packets, HTTP proxy bodies).
    const decoder =
      this.decoder ?? new FrameDecoder(this, { maxBodyLength: this.ctx.maxPacketSize, copyBodies: true });
    this.decoder = decoder;
    try {
      decoder.push(chunk);
    } catch (err) {
      if (err instanceof ProtocolError) return this.ctx.handler.onProtocolError(this, err);
      throw err;
    }
    // An idle device's reads end on a frame boundary: a decoder (about 170 bytes) per held
    // connection would wait for a frame that may come once a heartbeat. A handler that closed
    // the connection has dropped it already.
    if (this.decoder === decoder && decoder.atBoundary) this.decoder = null;
  }

  /** @internal True while a partial frame is held between reads. */
  get holdsDecoder(): boolean {
    return this.decoder !== null;
  }

  /** A WebSocket text frame. */
  receiveText(text: string): void {
    if (this.closed) return;
    this.lastReadAt = this.ctx.wheel.now;
    this.readSinceCheck = true;
    let packet: JsonPacket;
    try {
      packet = decodeJsonPacket(text);
    } catch (err) {
      if (err instanceof ProtocolError) return this.ctx.handler.onProtocolError(this, err);
      throw err;
    }
    this.ctx.handler.onJsonPacket(this, packet);
  }

  /** Anything read that is not a packet (a WebSocket pong) still proves the peer alive. */
  touch(): void {
    this.lastReadAt = this.ctx.wheel.now;
    this.readSinceCheck = true;
  }

  /** @internal FrameHandler */
  onPacket(packet: Packet): void {
    if (!this.closed) this.ctx.handler.onPacket(this, packet);
  }

  /** @internal FrameHandler */
  onHeartbeat(): void {
    if (!this.closed) this.ctx.handler.onHeartbeat(this);
  }

  /**
   * The plain body of a packet: decrypted when CRYPTO is set (with the current cipher) and
   * inflated, within `limits.maxInflatedSize`, when COMPRESS is set.
   * @throws CryptoError or ProtocolError on bad input.
   */
  openBody(packet: Packet): Buffer {
    let body = packet.body;
    if (packet.flags & Flags.CRYPTO) {
      if (!this.cipher) throw new ProtocolError('MPUSH_ERR_BAD_FIELD', 'encrypted packet before any cipher');
      body = this.cipher.decrypt(body);
      // Devices send encrypted packets rarely (bind, unbind, their own pushes; acks and heartbeats
      // travel raw): keeping a decrypt context per idle connection costs more than re-creating it.
      this.cipher.releaseDecrypt?.();
    }
    if (packet.flags & Flags.COMPRESS) body = inflate(body, this.ctx.maxInflatedSize);
    return body;
  }

  // ---- writing: the only write path ------------------------------------------------------------

  /** Encodes and queues one message. False when the connection is closed or now closing. */
  send(out: Outbound): boolean {
    if (this.closed) return false;
    const data =
      this.protocol === 'json' ? encodeJson(out) : encodeBinary(out, this.cipher, this.ctx.compressThreshold);
    return this.write(data);
  }

  /** Echoes a heartbeat (binary protocol). */
  sendHeartbeat(): boolean {
    return this.closed ? false : this.write(HEARTBEAT_FRAME);
  }

  private write(data: Buffer | string): boolean {
    if (this.writer.write(data)) return true;
    // Not written and not closed by a limit: the peer is gone but its close has not been
    // processed yet. Fail this write now.
    if (!this.closed) this.close(Disconnect.TRANSPORT_ERROR, true);
    return false;
  }

  /** The transport flushed its queue. */
  drained(): void {
    this.writer.drained();
    this.runDrainWaiters();
  }

  /** True while writes wait for the transport to drain: a bulk writer should pause. */
  get backpressured(): boolean {
    return this.writer.backpressured;
  }

  /** Runs `fn` once the transport has drained (at once if it is not backpressured), or closed. */
  whenDrained(fn: () => void): void {
    if (this.closed || !this.writer.backpressured) return fn();
    if (this.drainWaiters) this.drainWaiters.push(fn);
    else this.drainWaiters = [fn];
  }

  private runDrainWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = null;
    if (waiters) for (const fn of waiters) fn();
  }

  /** @internal OutboundOwner: the writer passed one of its limits. */
  onOutboundLimit(limit: OutboundLimit): void {
    this.close(limit === 'outbound-limit' ? Disconnect.SLOW_READER : Disconnect.DRAIN_TIMEOUT, true);
  }

  /** @internal DeadlineScheduler: the drain deadline runs on the wheel's coarse clock. */
  now(): number {
    return this.ctx.wheel.now;
  }

  // ---- liveness ---------------------------------------------------------------------------------

  /** Files a check with the shared wheel, unless an earlier one is already filed. */
  scheduleCheck(at: number): void {
    if (at >= this.nextCheckAt) return;
    this.nextCheckAt = at;
    this.ctx.wheel.schedule(this, at);
  }

  /**
   * Called by the wheel: enforces the handshake deadline, the heartbeat read timeout
   * (mpush-wire §7: `heartbeat + grace` with nothing read is a miss; more than
   * `maxHeartbeatTimeouts` misses in a row closes) and the drain deadline.
   */
  check(now: number): void {
    if (this.closed || now < this.nextCheckAt) return; // stale entry: a later one is filed
    this.nextCheckAt = Number.POSITIVE_INFINITY;
    const ctx = this.ctx;
    if (this.writer.checkDeadline(now)) return; // closed for drain-timeout
    if (!this.handshaked) {
      if (now - this.createdAt >= ctx.handshakeTimeoutMs) return this.close(Disconnect.HANDSHAKE_TIMEOUT);
      return this.scheduleCheck(this.createdAt + ctx.handshakeTimeoutMs);
    }
    const limit = this.heartbeatMs + ctx.heartbeatGraceMs;
    const read = this.readSinceCheck;
    this.readSinceCheck = false;
    if (!read && now - this.lastReadAt >= limit) {
      if (++this.misses > ctx.maxHeartbeatTimeouts) return this.close(Disconnect.HEARTBEAT_TIMEOUT);
      this.transport.ping?.();
      this.scheduleCheck(now + limit);
    } else {
      this.misses = 0;
      this.scheduleCheck(this.lastReadAt + limit);
    }
    // Checked once per heartbeat: an idle device's cipher need not hold its native contexts.
    this.cipher?.release?.();
  }

  /** Starts heartbeat checking once the handshake set `heartbeatMs`. */
  startHeartbeat(heartbeatMs: number): void {
    this.heartbeatMs = heartbeatMs;
    this.handshaked = true;
    this.misses = 0;
    this.nextCheckAt = Number.POSITIVE_INFINITY; // the pending handshake-deadline entry is now stale
    this.scheduleCheck(this.lastReadAt + heartbeatMs + this.ctx.heartbeatGraceMs);
  }

  // ---- closing ----------------------------------------------------------------------------------

  /**
   * Closes the connection: queued bytes (an ERROR just sent) are flushed unless `now` is set.
   * The handler's cleanup runs after the transport is told to close.
   */
  close(reason: DisconnectReason, now = false): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    this.writer.stop();
    if (now) this.transport.destroy();
    else this.transport.close(reason.wsCode, reason.name);
    this.decoder = null;
    this.runDrainWaiters();
    this.ctx.handler.onClose(this, reason);
  }

  /** The transport reports the peer gone (or failed). */
  transportClosed(error: boolean): void {
    this.close(error ? Disconnect.TRANSPORT_ERROR : Disconnect.REMOTE_CLOSED, true);
  }
}
