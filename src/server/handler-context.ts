import { EventEmitter } from 'node:events';
import type { SessionStore } from '../cluster/session-store.js';
import type { Config } from '../config/index.js';
import { type Connection, Disconnect, type DisconnectReason } from '../connection/index.js';
import type { Logger } from '../log.js';
import { Command, ErrorCode } from '../protocol/index.js';
import { TokenBucket } from '../util/token-bucket.js';
import { HttpProxy } from './handlers/http-proxy.js';
import { replyError } from './handlers/reply.js';
import { LocalRouter } from './local-router.js';

/** Counters for /api/stats and metrics. */
export interface ConnectionStats {
  accepted: number;
  refused: number;
  /** Connections open now, by transport kind (`tcp`, `ws`, `tls`, …). */
  open: Record<string, number>;
  handshakes: number;
  fastConnects: number;
  /** Fast connects answered with an error (session expired, another device's session). */
  fastConnectsRefused: number;
  handshakesThrottled: number;
  binds: number;
  bindsRefused: number;
  /** Binds answered before their route was written (`cluster.bindWaitMs` passed, or the write failed). */
  bindsUnrouted: number;
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
  /**
   * A binding ended; `conn.userId` may already be cleared. `reason`: `unbind` (the device asked),
   * `kicked`, or the name of the connection's close reason.
   */
  offline: [conn: Connection, userId: string, reason: string];
  kick: [conn: Connection, userId: string];
  devicePush: [conn: Connection, content: Buffer, sessionId: number];
  close: [conn: Connection, reason: DisconnectReason];
}

/** Told of every ACK a device sends (the push center matches it to what it pushed). */
export type AckListener = (conn: Connection, sessionId: number) => void;

/**
 * Records a new binding where every node looks it up (the cluster's route store). Returns what the
 * BIND's OK waits for, which settles and never rejects (a failure is the recorder's to log and
 * retry), or undefined to answer at once.
 */
export type BindRecorder = (conn: Connection) => Promise<void> | undefined;

/** The configuration the dispatcher and the handlers read: only these groups. */
export type HandlerConfig = Pick<Config, 'heartbeat' | 'session' | 'auth' | 'limits' | 'httpProxy'>;

/**
 * What the dispatcher and the command handlers see of the connection server: the router, the
 * session store, the counters and events, the slices of config they read, and the few
 * operations on bindings they share. Not the server itself: a handler cannot reach the sockets,
 * the listening port or the other connections but through the router.
 */
export interface HandlerContext {
  readonly config: HandlerConfig;
  readonly log: Logger;
  /** Bound users on this node (mpush-wire §8). */
  readonly router: LocalRouter;
  /** Fast-connect sessions (mpush-wire §6). */
  readonly sessions: SessionStore;
  readonly stats: ConnectionStats;
  readonly events: EventEmitter<ConnectionServerEvents>;
  /** The HTTP proxy (mpush-wire §11); undefined when `httpProxy.enabled` is off. */
  readonly httpProxy: HttpProxy | undefined;
  /** Set by the push center: called for every ACK a device sends. */
  ackListener: AckListener | undefined;
  /** Set by the node: the BIND reply waits for it (see handleBind). Unset, binds are answered at once. */
  bindRecorder: BindRecorder | undefined;
  /** One handshake token (full or fast); when the rate is exceeded, answers ERROR, closes, and returns false. */
  takeHandshakeToken(conn: Connection, sessionId: number): boolean;
  /** The next sessionId for a packet the server originates (pushes): its own counter (mpush-wire §12). */
  nextPushSessionId(): number;
  /** Sends KICK to a displaced connection and clears its binding, leaving it connected (mpush-wire §8, §12). */
  kick(conn: Connection): void;
  /** Removes `conn`'s binding, if it holds one. */
  unbind(conn: Connection): void;
  /** Removes `conn` from the router, then kicks it (a GATEWAY_KICK, or a kick from another node). */
  unbindAndKick(conn: Connection): void;
}

/**
 * What the gateway needs of the connection server to serve GATEWAY_KICK (mpush-wire §8): find
 * the bound connection, unbind and kick it.
 */
export interface KickTarget {
  readonly router: Pick<LocalRouter, 'get'>;
  unbindAndKick(conn: Connection): void;
}

export interface ServerHandlerContextOptions {
  config: HandlerConfig;
  log: Logger;
  sessions: SessionStore;
  /** Time source for the handshake token bucket (tests). */
  clock?: () => number;
}

/**
 * The connection server's {@link HandlerContext}: one object per server, shared by all its
 * connections. It owns the router, the counters, the events and the push sessionId counter.
 */
export class ServerHandlerContext implements HandlerContext {
  readonly config: HandlerConfig;
  readonly log: Logger;
  readonly sessions: SessionStore;
  readonly router = new LocalRouter();
  readonly events = new EventEmitter<ConnectionServerEvents>();
  readonly stats: ConnectionStats = {
    accepted: 0,
    refused: 0,
    open: { tcp: 0, tls: 0, ws: 0 },
    handshakes: 0,
    fastConnects: 0,
    fastConnectsRefused: 0,
    handshakesThrottled: 0,
    binds: 0,
    bindsRefused: 0,
    bindsUnrouted: 0,
    kicks: 0,
    acks: 0,
    devicePushes: 0,
    unsupported: 0,
    protocolErrors: 0,
    closed: {},
  };
  readonly httpProxy: HttpProxy | undefined;
  ackListener: AckListener | undefined;
  bindRecorder: BindRecorder | undefined;
  private readonly handshakes: TokenBucket;
  private pushSeq = 0;

  constructor(opts: ServerHandlerContextOptions) {
    this.config = opts.config;
    this.log = opts.log;
    this.sessions = opts.sessions;
    const { handshakesPerSecond, handshakeBurst } = opts.config.limits;
    this.handshakes = new TokenBucket(handshakesPerSecond, handshakeBurst, opts.clock);
    if (opts.config.httpProxy.enabled) {
      const proxy = new HttpProxy(opts.config.httpProxy, opts.log);
      this.httpProxy = proxy;
      // A closed connection's proxied requests are dropped: nobody is left to read their answers.
      this.events.on('close', (conn) => proxy.dropConnection(conn));
    }
  }

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

  nextPushSessionId(): number {
    this.pushSeq = (this.pushSeq + 1) & 0x7fffffff || 1;
    return this.pushSeq;
  }

  kick(conn: Connection): void {
    const userId = conn.userId;
    conn.send({ cmd: Command.KICK, sessionId: 0, body: { deviceId: conn.deviceId, userId } });
    conn.userId = '';
    conn.tags = '';
    this.stats.kicks++;
    this.log.debug('kicked', { conn: conn.id, userId });
    this.events.emit('kick', conn, userId);
    this.events.emit('offline', conn, userId, Disconnect.KICKED.name);
  }

  unbind(conn: Connection): void {
    const userId = conn.userId;
    if (!userId) return;
    conn.userId = '';
    if (this.router.unbind(conn, userId)) {
      const reason = conn.closeReason?.name ?? 'unbind';
      this.log.debug('unbound', { conn: conn.id, userId, reason });
      this.events.emit('offline', conn, userId, reason);
    }
  }

  unbindAndKick(conn: Connection): void {
    if (!conn.userId) return;
    this.router.unbind(conn, conn.userId);
    this.kick(conn);
  }
}
