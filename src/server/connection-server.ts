import type { KeyObject } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { SessionStore } from '../cluster/session-store.js';
import type { Config } from '../config/index.js';
import {
  Connection,
  type ConnectionContext,
  type ConnectionHandler,
  Disconnect,
  type DisconnectReason,
  TcpTransport,
  WsTransport,
} from '../connection/index.js';
import type { CryptoError } from '../crypto/index.js';
import { type Cipher, RsaDecryptor, RsaServerCipher } from '../crypto/index.js';
import type { Logger } from '../log.js';
import { Command, ErrorCode, type JsonPacket, type Packet, type ProtocolError } from '../protocol/index.js';
import { TimerWheel } from '../util/timer-wheel.js';
import { TokenBucket } from '../util/token-bucket.js';
import { dispatchJson, dispatchPacket } from './dispatch.js';
import { replyError } from './handlers/reply.js';
import { LocalRouter } from './local-router.js';

export interface ConnectionServerOptions {
  config: Config;
  privateKey: KeyObject;
  sessions: SessionStore;
  log: Logger;
  /** Time source for the timer wheel (tests). */
  clock?: () => number;
}

/** Counters for /api/stats and metrics. */
export interface ConnectionStats {
  accepted: number;
  refused: number;
  handshakes: number;
  fastConnects: number;
  handshakesThrottled: number;
  binds: number;
  bindsRefused: number;
  kicks: number;
  acks: number;
  devicePushes: number;
  unsupported: number;
  protocolErrors: number;
  closed: Record<string, number>;
}

export interface ConnectionServerEvents {
  /** A connection bound a user. */
  online: [conn: Connection];
  /** A binding ended (unbind, kick, close); `conn.userId` may already be cleared. */
  offline: [conn: Connection, userId: string];
  kick: [conn: Connection, userId: string];
  devicePush: [conn: Connection, content: Buffer, sessionId: number];
  close: [conn: Connection, reason: DisconnectReason];
}

/**
 * The connection server: accepts devices over TCP (MPush binary protocol) and WebSocket
 * (JSON, or binary frames), enforces the limits, and dispatches packets to one handler per
 * command. Holds the local router of bound users.
 */
export class ConnectionServer implements ConnectionHandler {
  readonly config: Config;
  readonly sessions: SessionStore;
  readonly log: Logger;
  readonly router = new LocalRouter();
  readonly events = new EventEmitter<ConnectionServerEvents>();
  readonly connections = new Map<number, Connection>();
  readonly stats: ConnectionStats = {
    accepted: 0,
    refused: 0,
    handshakes: 0,
    fastConnects: 0,
    handshakesThrottled: 0,
    binds: 0,
    bindsRefused: 0,
    kicks: 0,
    acks: 0,
    devicePushes: 0,
    unsupported: 0,
    protocolErrors: 0,
    closed: {},
  };
  /** Set by the push center: called for every ACK a device sends. */
  ackListener: ((conn: Connection, sessionId: number) => void) | undefined;

  private readonly rsa: Cipher;
  private readonly ctx: ConnectionContext;
  private readonly wheel: TimerWheel<Connection>;
  private readonly handshakes: TokenBucket;
  private tcp: Server | undefined;
  private nextId = 1;
  private pushSeq = 0;

  constructor(opts: ConnectionServerOptions) {
    this.config = opts.config;
    this.sessions = opts.sessions;
    this.log = opts.log;
    this.rsa = new RsaServerCipher(new RsaDecryptor(opts.privateKey));
    const c = opts.config;
    this.wheel = new TimerWheel<Connection>(c.heartbeat.tickMs, checkConnection, opts.clock);
    this.handshakes = new TokenBucket(c.limits.handshakesPerSecond, c.limits.handshakeBurst, opts.clock);
    this.ctx = {
      handler: this,
      wheel: this.wheel,
      maxPacketSize: c.limits.maxPacketSize,
      maxInflatedSize: c.limits.maxInflatedSize,
      maxOutboundBytes: c.limits.maxOutboundBytes,
      drainTimeoutMs: c.limits.drainTimeoutMs,
      handshakeTimeoutMs: c.limits.handshakeTimeoutMs,
      heartbeatGraceMs: c.heartbeat.graceMs,
      maxHeartbeatTimeouts: c.heartbeat.maxTimeouts,
      compressThreshold: c.compress.thresholdBytes,
    };
    this.wheel.start();
  }

  // ---- accepting ----------------------------------------------------------------------------

  /** Listens for TCP devices; resolves with the bound port. */
  listen(port = this.config.server.port, host = this.config.server.host): Promise<number> {
    const server = createServer({ noDelay: true }, (socket) => this.acceptSocket(socket));
    this.tcp = server;
    server.on('error', (err) => this.log.error('tcp server error', { err: err.message }));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host, backlog: this.config.server.backlog }, () => {
        server.off('error', reject);
        const addr = server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : port);
      });
    });
  }

  private admit(): boolean {
    if (this.connections.size < this.config.limits.maxConnections) return true;
    this.stats.refused++;
    if (this.stats.refused === 1 || this.stats.refused % 1000 === 0) {
      this.log.warn('connection refused: limits.maxConnections reached', {
        max: this.config.limits.maxConnections,
        refused: this.stats.refused,
      });
    }
    return false;
  }

  /** Takes a TCP socket (from {@link listen}, or a TLS server). */
  acceptSocket(socket: Socket, kind: 'tcp' | 'tls' = 'tcp'): Connection | undefined {
    if (!this.admit()) {
      socket.destroy();
      return undefined;
    }
    const transport = new TcpTransport(socket, kind);
    const conn = new Connection(this.nextId++, transport, 'binary', this.ctx);
    conn.cipher = this.rsa;
    transport.attach(conn);
    this.register(conn);
    return conn;
  }

  /** Takes an upgraded WebSocket. */
  acceptWebSocket(ws: WebSocket, req: IncomingMessage): Connection | undefined {
    if (!this.admit()) {
      ws.close(Disconnect.TOO_MANY_CONNECTIONS.wsCode, Disconnect.TOO_MANY_CONNECTIONS.name);
      return undefined;
    }
    const transport = new WsTransport(ws, `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? 0}`);
    const conn = new Connection(this.nextId++, transport, 'json', this.ctx);
    conn.cipher = this.rsa; // used only if the device speaks the binary protocol in binary frames
    transport.attach(conn);
    this.register(conn);
    return conn;
  }

  private register(conn: Connection): void {
    this.connections.set(conn.id, conn);
    this.stats.accepted++;
  }

  /** One handshake token (full or fast); refuses and closes when the rate is exceeded. */
  takeHandshakeToken(conn: Connection, sessionId: number): boolean {
    if (this.handshakes.take()) return true;
    this.stats.handshakesThrottled++;
    replyError(
      conn,
      Command.HANDSHAKE,
      sessionId,
      ErrorCode.UNKNOWN,
      'handshake rate exceeded',
      Disconnect.HANDSHAKE_RATE,
    );
    return false;
  }

  /** The next sessionId for a packet the server originates (pushes): its own counter (mpush-wire §12). */
  nextPushSessionId(): number {
    this.pushSeq = (this.pushSeq + 1) & 0x7fffffff || 1;
    return this.pushSeq;
  }

  // ---- binding --------------------------------------------------------------------------------

  /** Sends KICK to a displaced connection and unbinds it, leaving it connected (mpush-wire §8, §12). */
  kick(conn: Connection): void {
    const userId = conn.userId;
    conn.send({ cmd: Command.KICK, sessionId: 0, body: { deviceId: conn.deviceId, userId } });
    conn.userId = '';
    conn.tags = '';
    this.stats.kicks++;
    this.events.emit('kick', conn, userId);
    this.events.emit('offline', conn, userId);
  }

  /** Removes `conn` from the router, then kicks it (a GATEWAY_KICK from another node). */
  unbindAndKick(conn: Connection): void {
    if (!conn.userId) return;
    this.router.unbind(conn, conn.userId);
    this.kick(conn);
  }

  /** Removes `conn`'s binding, if it holds one. */
  unbind(conn: Connection): void {
    const userId = conn.userId;
    if (!userId) return;
    conn.userId = '';
    if (this.router.unbind(conn, userId)) this.events.emit('offline', conn, userId);
  }

  // ---- ConnectionHandler ------------------------------------------------------------------------

  onPacket(conn: Connection, packet: Packet): void {
    dispatchPacket(this, conn, packet);
  }

  onJsonPacket(conn: Connection, packet: JsonPacket): void {
    dispatchJson(this, conn, packet);
  }

  onHeartbeat(conn: Connection): void {
    conn.sendHeartbeat();
  }

  onProtocolError(conn: Connection, err: ProtocolError | CryptoError): void {
    this.stats.protocolErrors++;
    this.log.debug('protocol error', {
      conn: conn.id,
      remote: conn.transport.remoteAddress,
      err: err.message,
    });
    replyError(conn, 0, 0, ErrorCode.UNKNOWN, err.message, Disconnect.PROTOCOL_ERROR);
  }

  onClose(conn: Connection, reason: DisconnectReason): void {
    this.connections.delete(conn.id);
    this.stats.closed[reason.name] = (this.stats.closed[reason.name] ?? 0) + 1;
    this.unbind(conn);
    this.events.emit('close', conn, reason);
  }

  // ---- lifecycle ------------------------------------------------------------------------------

  /** Stops accepting, closes every connection, stops the timers. */
  async close(): Promise<void> {
    const tcp = this.tcp;
    this.tcp = undefined;
    const closed = tcp ? new Promise<void>((r) => tcp.close(() => r())) : Promise.resolve();
    for (const conn of [...this.connections.values()]) conn.close(Disconnect.SHUTDOWN);
    this.wheel.stop();
    await closed;
  }
}

function checkConnection(conn: Connection, now: number): void {
  conn.check(now);
}
