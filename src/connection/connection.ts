import type { Cipher } from '../crypto/index.js';
import { type CryptoError, inflate } from '../crypto/index.js';
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
import { Disconnect, type DisconnectReason } from './disconnect.js';
import { encodeBinary, encodeJson, type Outbound } from './outbound.js';
import type { TimerWheel } from './timer-wheel.js';
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
  maxOutboundBytes: number;
  drainTimeoutMs: number;
  handshakeTimeoutMs: number;
  heartbeatGraceMs: number;
  maxHeartbeatTimeouts: number;
  compressThreshold: number;
}

export type WireProtocol = 'binary' | 'json';

/** Connections corked this tick, uncorked together on the next one. */
let corked: Connection[] = [];

function uncorkAll(): void {
  const list = corked;
  corked = [];
  for (const c of list) {
    c.corked = false;
    c.transport.uncork();
  }
}

/**
 * One device connection: its cipher, session, heartbeat and client info, and the single path
 * every write goes through (batched per tick, bounded in bytes, slow readers disconnected).
 */
export class Connection implements FrameHandler {
  readonly id: number;
  readonly transport: Transport;
  readonly ctx: ConnectionContext;
  protocol: WireProtocol;
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
  private blockedSince = 0;
  corked = false;
  closed = false;
  closeReason: DisconnectReason | null = null;

  constructor(id: number, transport: Transport, protocol: WireProtocol, ctx: ConnectionContext) {
    this.id = id;
    this.transport = transport;
    this.protocol = protocol;
    this.ctx = ctx;
    this.createdAt = this.lastReadAt = ctx.wheel.now;
    this.scheduleCheck(this.createdAt + ctx.handshakeTimeoutMs);
  }

  // ---- reading -------------------------------------------------------------------------------

  /** Bytes from the transport (TCP, or a binary WebSocket frame). */
  receive(chunk: Buffer): void {
    if (this.closed) return;
    this.lastReadAt = this.ctx.wheel.now;
    this.readSinceCheck = true;
    if (!this.decoder) this.decoder = new FrameDecoder(this, { maxBodyLength: this.ctx.maxPacketSize });
    try {
      this.decoder.push(chunk);
    } catch (err) {
      if (err instanceof ProtocolError) this.ctx.handler.onProtocolError(this, err);
      else throw err;
    }
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
    if (!this.transport.writable) {
      // The peer is gone but its close has not been processed yet: fail this write now.
      this.close(Disconnect.TRANSPORT_ERROR, true);
      return false;
    }
    if (!this.corked) {
      this.corked = true;
      this.transport.cork();
      if (corked.push(this) === 1) process.nextTick(uncorkAll);
    }
    const ok = this.transport.write(data);
    if (this.transport.bufferedBytes > this.ctx.maxOutboundBytes) {
      // A reader that cannot keep up: drop it rather than buffer without bound.
      this.close(Disconnect.SLOW_READER, true);
      return false;
    }
    if (!ok && this.blockedSince === 0) {
      this.blockedSince = this.ctx.wheel.now;
      this.scheduleCheck(this.blockedSince + this.ctx.drainTimeoutMs);
    }
    return true;
  }

  /** The transport flushed its queue. */
  drained(): void {
    this.blockedSince = 0;
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
    if (this.blockedSince !== 0) {
      if (now - this.blockedSince >= ctx.drainTimeoutMs) return this.close(Disconnect.SLOW_READER, true);
      this.scheduleCheck(this.blockedSince + ctx.drainTimeoutMs);
    }
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
    if (now) this.transport.destroy();
    else this.transport.close(reason.wsCode, reason.name);
    this.decoder = null;
    this.ctx.handler.onClose(this, reason);
  }

  /** The transport reports the peer gone (or failed). */
  transportClosed(error: boolean): void {
    this.close(error ? Disconnect.TRANSPORT_ERROR : Disconnect.REMOTE_CLOSED, true);
  }
}
