import type { KeyObject } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import type { SecureContextOptions, Server as TlsServer } from 'node:tls';
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
  type Transport,
  type WireProtocol,
  WsTransport,
} from '../connection/index.js';
import type { CryptoError } from '../crypto/index.js';
import { type Cipher, RsaDecryptor, RsaServerCipher } from '../crypto/index.js';
import type { Logger } from '../log.js';
import type { JsonPacket, Packet, ProtocolError } from '../protocol/index.js';
import { closeServer, listenOn, tlsListener } from '../util/listen.js';
import { TimerWheel } from '../util/timer-wheel.js';
import { dispatchJson, dispatchPacket, rejectInput } from './dispatch.js';
import {
  type ConnectionServerEvents,
  type ConnectionStats,
  ServerHandlerContext,
} from './handler-context.js';
import type { LocalRouter } from './local-router.js';

export type { ConnectionServerEvents, ConnectionStats } from './handler-context.js';

export interface ConnectionServerOptions {
  config: Config;
  privateKey: KeyObject;
  sessions: SessionStore;
  log: Logger;
  /** Time source for the timer wheel and the handshake token bucket (tests). */
  clock?: () => number;
}

/**
 * The connection server: accepts devices over TCP and TLS (MPush binary protocol) and WebSocket
 * (JSON, or binary frames), enforces the limits, and dispatches packets to one handler per
 * command. The handlers see its {@link ServerHandlerContext} (router, sessions, stats, events),
 * never the server.
 */
export class ConnectionServer implements ConnectionHandler {
  readonly config: Config;
  readonly sessions: SessionStore;
  readonly log: Logger;
  /** What the dispatcher and the handlers see: one object for every connection of this server. */
  readonly context: ServerHandlerContext;
  readonly router: LocalRouter;
  readonly events: EventEmitter<ConnectionServerEvents>;
  readonly stats: ConnectionStats;
  readonly connections = new Map<number, Connection>();

  private readonly rsa: Cipher;
  private readonly ctx: ConnectionContext;
  private readonly wheel: TimerWheel<Connection>;
  private tcp: Server | undefined;
  private tls: TlsServer | undefined;
  /** TLS handshakes that failed (bad client hello, no shared cipher, timeout). */
  private tlsFailures = 0;
  private nextId = 1;

  constructor(opts: ConnectionServerOptions) {
    this.config = opts.config;
    this.sessions = opts.sessions;
    this.log = opts.log;
    this.context = new ServerHandlerContext({
      config: opts.config,
      log: opts.log,
      sessions: opts.sessions,
      ...(opts.clock ? { clock: opts.clock } : {}),
    });
    this.router = this.context.router;
    this.events = this.context.events;
    this.stats = this.context.stats;
    this.rsa = new RsaServerCipher(new RsaDecryptor(opts.privateKey));
    const c = opts.config;
    this.wheel = new TimerWheel<Connection>(c.heartbeat.tickMs, checkConnection, opts.clock);
    this.ctx = {
      handler: this,
      wheel: this.wheel,
      maxPacketSize: c.limits.maxPacketSize,
      maxInflatedSize: c.limits.maxInflatedSize,
      outbound: {
        maxBytes: c.limits.maxOutboundBytes,
        drainTimeoutMs: c.limits.drainTimeoutMs,
      },
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
    return listenOn(server, port, host, this.config.server.backlog, (err) =>
      this.log.error('tcp server error', { err: err.message }),
    );
  }

  /**
   * Listens for devices over TLS (the same binary protocol inside, a 'tls' transport); resolves
   * with the bound port. The handshake must finish within limits.handshakeTimeoutMs; one that
   * fails closes that socket only, and is logged at debug, rate-limited.
   */
  listenTls(
    secure: SecureContextOptions,
    port = this.config.tls.port,
    host = this.config.server.host,
  ): Promise<number> {
    const server = tlsListener(
      { ...secure, handshakeTimeout: this.config.limits.handshakeTimeoutMs },
      (socket) => this.acceptSocket(socket, 'tls'),
      (err) => {
        if (++this.tlsFailures === 1 || this.tlsFailures % 1000 === 0)
          this.log.debug('tls handshake failed', { err: err.message, failures: this.tlsFailures });
      },
    );
    // Sockets still in their TLS handshake are not connections yet (admit() counts those): the
    // server's own cap keeps a flood of handshakes that never finish within the same limit.
    server.maxConnections = this.config.limits.maxConnections;
    this.tls = server;
    return listenOn(server, port, host, this.config.server.backlog, (err) =>
      this.log.error('tls server error', { err: err.message }),
    );
  }

  /** New certificates for the TLS port: later handshakes use them, open connections stay. */
  setSecureContext(secure: SecureContextOptions): void {
    this.tls?.setSecureContext(secure);
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
    const transport = new TcpTransport(socket, kind);
    const conn = this.accept(transport, 'binary');
    if (!conn) {
      socket.destroy();
      return undefined;
    }
    transport.attach(conn);
    return conn;
  }

  /** Takes an upgraded WebSocket. */
  acceptWebSocket(ws: WebSocket, req: IncomingMessage): Connection | undefined {
    const transport = new WsTransport(ws, `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? 0}`);
    const conn = this.accept(transport, 'json');
    if (!conn) {
      ws.close(Disconnect.TOO_MANY_CONNECTIONS.wsCode, Disconnect.TOO_MANY_CONNECTIONS.name);
      return undefined;
    }
    transport.attach(conn);
    return conn;
  }

  /**
   * Makes and registers a connection over `transport` (TCP, WebSocket, or a test's in-memory
   * one); the caller wires the transport's reads to it. Undefined when `limits.maxConnections`
   * is reached: the caller then refuses the transport its own way. The cipher starts as RSA
   * (mpush-wire §5), also on WebSocket, where it serves only a device that speaks the binary
   * protocol in binary frames.
   */
  accept(transport: Transport, protocol: WireProtocol): Connection | undefined {
    if (!this.admit()) return undefined;
    const conn = new Connection(this.nextId++, transport, protocol, this.ctx);
    conn.cipher = this.rsa;
    this.connections.set(conn.id, conn);
    this.stats.accepted++;
    const open = this.stats.open;
    open[transport.kind] = (open[transport.kind] ?? 0) + 1;
    // Guarded: the remote address is a getpeername() call, per connection, for a line rarely printed.
    if (this.log.enabled('debug')) {
      this.log.debug('connection accepted', {
        conn: conn.id,
        transport: transport.kind,
        remote: transport.remoteAddress,
      });
    }
    return conn;
  }

  // ---- ConnectionHandler ------------------------------------------------------------------------

  onPacket(conn: Connection, packet: Packet): void {
    dispatchPacket(this.context, conn, packet);
  }

  onJsonPacket(conn: Connection, packet: JsonPacket): void {
    dispatchJson(this.context, conn, packet);
  }

  onHeartbeat(conn: Connection): void {
    conn.sendHeartbeat();
  }

  onProtocolError(conn: Connection, err: ProtocolError | CryptoError): void {
    // Undecodable framing: answered as any bad input, with no command to name (mpush-wire §12).
    rejectInput(this.context, conn, 0, 0, err);
  }

  onClose(conn: Connection, reason: DisconnectReason): void {
    this.connections.delete(conn.id);
    this.stats.closed[reason.name] = (this.stats.closed[reason.name] ?? 0) + 1;
    this.stats.open[conn.transport.kind]!--;
    if (this.log.enabled('debug')) {
      this.log.debug('connection closed', { conn: conn.id, userId: conn.userId, reason: reason.name });
    }
    this.context.unbind(conn);
    this.events.emit('close', conn, reason);
  }

  // ---- lifecycle ------------------------------------------------------------------------------

  /** Stops accepting, closes every connection, stops the timers. */
  async close(): Promise<void> {
    const closed = Promise.all([closeServer(this.tcp), closeServer(this.tls)]);
    this.tcp = undefined;
    this.tls = undefined;
    for (const conn of [...this.connections.values()]) conn.close(Disconnect.SHUTDOWN);
    this.context.httpProxy?.close();
    this.wheel.stop();
    await closed;
  }
}

function checkConnection(conn: Connection, now: number): void {
  conn.check(now);
}
