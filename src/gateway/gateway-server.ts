import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { SecureContextOptions, Server as TlsServer } from 'node:tls';
import type { RouteStore } from '../cluster/route-store.js';
import type { Config } from '../config/index.js';
import { gatewayNonce, verifyGatewayAuth } from '../crypto/gateway-mac.js';
import type { Logger } from '../log.js';
import {
  BroadcastAction,
  BroadcastControlCodec,
  Command,
  ErrorCode,
  ErrorCodec,
  ExtCommand,
  encodeHelloReply,
  encodeOkFrame,
  encodePacket,
  errorReply,
  FrameDecoder,
  type FrameHandler,
  GATEWAY_EXT_VERSION,
  GatewayAuthCodec,
  GatewayHelloCodec,
  GatewayKickCodec,
  GatewayPushCodec,
  type GatewayPushMessage,
  HEARTBEAT_FRAME,
  MessageStatusCodec,
  MPUSH_END_POINTS,
  MPUSH_REASONS,
  mpushPushResult,
  type Packet,
  pushOkData,
  RouteQueryCodec,
} from '../protocol/index.js';
import type { Inbox } from '../push/inbox.js';
import { keptUnicast } from '../push/kept-unicast.js';
import type { PushOutcome } from '../push/outcome.js';
import type { PushCenter, UnicastJob, UnicastListener } from '../push/push-center.js';
import type { KickTarget } from '../server/handler-context.js';
import { closeServer, listenOn, tlsListener } from '../util/listen.js';
import type { OutboundLimit, OutboundOwner, OutboundWriter } from '../util/outbound-writer.js';
import { streamWriter } from '../util/stream-sink.js';

/**
 * One push client (or peer node) on the gateway port. Replies go through its outbound writer,
 * bounded by `gateway.maxOutboundBytes` and `gateway.drainTimeoutMs`: a client that stops
 * reading its replies is dropped, not buffered for.
 */
class GatewayConnection implements FrameHandler, OutboundOwner, UnicastListener {
  readonly decoder: FrameDecoder;
  readonly writer: OutboundWriter;
  authed: boolean;
  /**
   * The login challenge (gateway.secret set): made at the first GATEWAY_HELLO, sent in its reply,
   * spent by the GATEWAY_AUTH that follows, whatever its outcome. Never shared between connections.
   */
  nonce: Buffer | undefined;
  /** Said GATEWAY_HELLO: gets mpush-ts's replies; until then, exactly MPush's. */
  extended = false;
  /** Its push replies carry the time points (it did not say otherwise in GATEWAY_HELLO). */
  timePoints = true;
  closed = false;

  constructor(
    readonly socket: Socket,
    private readonly gw: GatewayServer,
  ) {
    const config = gw.config.gateway;
    this.authed = config.secret === '';
    this.decoder = new FrameDecoder(this, { maxBodyLength: config.maxPacketSize });
    this.writer = streamWriter(socket, this, {
      maxBytes: config.maxOutboundBytes,
      drainTimeoutMs: config.drainTimeoutMs,
    });
    // A connection that never proves it holds the secret does not get to stay open.
    if (!this.authed) {
      this.authTimer = setTimeout(() => {
        this.authTimer = undefined;
        if (this.authed || this.closed) return;
        gw.stats.authTimeouts++;
        this.close();
      }, config.authTimeoutMs);
      this.authTimer.unref();
    }
  }

  private authTimer: NodeJS.Timeout | undefined;

  /** Authenticated (or no secret is set): the auth deadline no longer applies. */
  authenticated(): void {
    this.authed = true;
    this.nonce = undefined;
    clearTimeout(this.authTimer);
    this.authTimer = undefined;
  }

  onPacket(p: Packet): void {
    if (!this.closed) this.gw.handle(this, p);
  }

  onHeartbeat(): void {
    // Not before auth: a heartbeat must not keep an unauthenticated connection in answers.
    if (this.authed) this.write(HEARTBEAT_FRAME);
  }

  onOversized(cmd: number, sessionId: number, length: number): void {
    this.gw.stats.oversized++;
    this.error(
      cmd,
      sessionId,
      ErrorCode.PUSH_CLIENT_FAILURE,
      `packet of ${length} bytes exceeds gateway.maxPacketSize`,
    );
  }

  write(frame: Buffer): void {
    if (!this.closed) this.writer.write(frame);
  }

  /** @internal OutboundOwner: a push client that stopped reading its replies. */
  onOutboundLimit(limit: OutboundLimit): void {
    if (limit === 'outbound-limit') this.gw.stats.slowClients++;
    else this.gw.stats.drainTimeouts++;
    this.closed = true;
    this.socket.destroy();
  }

  ok(cmd: number, sessionId: number, data: string): void {
    this.write(encodeOkFrame(cmd, sessionId, data));
  }

  /** @internal UnicastListener: a push of this connection ended (`sessionId`: the request's). */
  unicastDone(o: PushOutcome, sessionId: number, push: UnicastJob): void {
    if (!this.closed) this.gw.pushDone(this, sessionId, push, o);
  }

  error(cmd: number, sessionId: number, code: number, reason: string, data = ''): void {
    this.write(
      encodePacket({
        cmd: Command.ERROR,
        flags: 0,
        sessionId,
        body: ErrorCodec.encode({ cmd, code, reason, data }),
      }),
    );
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.authTimer);
    this.writer.stop();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }
}

export interface GatewayServerOptions {
  config: Config;
  log: Logger;
  server: KickTarget;
  push: PushCenter;
  inbox: Inbox;
  routes: RouteStore;
}

/**
 * The gateway: the packet protocol push clients (and other nodes) speak to push through this
 * node (mpush-wire §9). GATEWAY_PUSH in; OK, or ERROR 1 offline / 2 failure / 3 route change /
 * 4 ack timeout, out, with the request's sessionId. A connection that has not said GATEWAY_HELLO
 * is answered exactly as MPush answers (no ERROR 4, MPush's result JSON). Its own packet-size limit; an oversize push
 * gets an ERROR, not a silent close.
 */
export class GatewayServer {
  readonly config: Config;
  readonly stats = {
    pushes: 0,
    broadcasts: 0,
    oversized: 0,
    authFailures: 0,
    /** Connections closed for not authenticating within gateway.authTimeoutMs. */
    authTimeouts: 0,
    slowClients: 0,
    drainTimeouts: 0,
    /** Ack timeouts not answered: MPush's own push clients time out by themselves. */
    silentTimeouts: 0,
    /** TLS handshakes that failed (gateway.tls): no client certificate, or one tls.ca did not sign. */
    tlsFailures: 0,
    /** Connections closed at accept: gateway.maxConnections were open. */
    refused: 0,
  };
  private tcp: Server | undefined;
  private tls: TlsServer | undefined;
  private readonly conns = new Set<GatewayConnection>();

  constructor(private readonly opts: GatewayServerOptions) {
    this.config = opts.config;
  }

  /** Push clients (and peer nodes) connected now. */
  get clients(): number {
    return this.conns.size;
  }

  /**
   * Listens for push clients; resolves with the bound port. With `tls` (gateway.tls), over TLS;
   * with `tls.clientCertificates` (tls.ca set), a client must present a certificate that chains
   * to tls.ca, or its handshake fails and it never reaches a handler.
   */
  listen(
    port = this.config.gateway.port,
    host = this.config.gateway.host,
    tls?: { secure: SecureContextOptions; clientCertificates: boolean },
  ): Promise<number> {
    let server: Server;
    if (tls) {
      const verify = tls.clientCertificates;
      const t = tlsListener(
        {
          ...tls.secure,
          requestCert: verify,
          rejectUnauthorized: verify,
          handshakeTimeout: this.config.gateway.authTimeoutMs,
        },
        (s) => this.accept(s),
        () => this.stats.tlsFailures++,
      );
      this.tls = t;
      server = t;
    } else {
      server = createServer({ noDelay: true }, (s) => this.accept(s));
    }
    this.tcp = server;
    // Counted before login, so a flood of sockets that never authenticate is bounded too.
    server.maxConnections = this.config.gateway.maxConnections;
    server.on('drop', () => this.stats.refused++);
    return listenOn(server, port, host, this.config.server.backlog, (err) =>
      this.opts.log.error('gateway server error', { err: err.message }),
    );
  }

  /** New certificates (and client CAs) for a TLS gateway: later handshakes use them, open connections stay. */
  setSecureContext(secure: SecureContextOptions): void {
    this.tls?.setSecureContext(secure);
  }

  private accept(socket: Socket): void {
    const conn = new GatewayConnection(socket, this);
    this.conns.add(conn);
    socket.on('data', (chunk: Buffer) => {
      try {
        conn.decoder.push(chunk);
      } catch (err) {
        // Only a negative length gets here (oversize frames are skipped): the stream is lost.
        const r = errorReply(err);
        conn.error(0, 0, r.code, r.reason);
        conn.close();
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      conn.closed = true;
      conn.writer.stop();
      this.conns.delete(conn);
    });
  }

  /** One switch for every gateway command. */
  handle(c: GatewayConnection, p: Packet): void {
    try {
      if (p.cmd === ExtCommand.GATEWAY_AUTH) return this.auth(c, p);
      // Before auth too: its reply carries the challenge GATEWAY_AUTH answers.
      if (p.cmd === ExtCommand.GATEWAY_HELLO) return this.hello(c, p);
      if (!c.authed) {
        this.stats.authFailures++;
        c.error(p.cmd, p.sessionId, ErrorCode.UNKNOWN, 'gateway secret required');
        return c.close();
      }
      switch (p.cmd) {
        case Command.GATEWAY_PUSH:
          return this.push(c, p);
        case Command.GATEWAY_KICK:
          return this.kick(p);
        case ExtCommand.GATEWAY_ROUTE_QUERY:
          return void this.routeQuery(c, p);
        case ExtCommand.GATEWAY_BROADCAST_CONTROL:
          return this.broadcastControl(c, p);
        case ExtCommand.GATEWAY_MESSAGE_STATUS:
          return void this.messageStatus(c, p, MessageStatusCodec.decode(p.body).messageId);
        default:
          c.error(p.cmd, p.sessionId, ErrorCode.UNSUPPORTED_CMD, 'unsupported command');
          return c.close();
      }
    } catch (err) {
      // Bad input is answered as on the device port (protocol/errors.ts); the connection stays.
      const r = errorReply(err);
      if (!r.badInput)
        this.opts.log.error('gateway handler failed', { cmd: p.cmd, err: (err as Error).stack });
      c.error(p.cmd, p.sessionId, r.code, r.reason);
    }
  }

  /**
   * GATEWAY_AUTH: the MAC must cover the nonce this connection was sent (GATEWAY_HELLO). The nonce
   * is spent here, so a proof is good once, on its own connection: one captured elsewhere, or sent
   * before any challenge (a version-1 client's timestamped proof), is refused and the connection closed.
   */
  private auth(c: GatewayConnection, p: Packet): void {
    const secret = this.config.gateway.secret;
    if (secret) {
      const nonce = c.nonce;
      c.nonce = undefined;
      let check: ReturnType<typeof verifyGatewayAuth>;
      if (!nonce) {
        check = { ok: false, reason: 'gateway auth needs the challenge of GATEWAY_HELLO first' };
      } else {
        try {
          check = verifyGatewayAuth(secret, nonce, GatewayAuthCodec.decode(p.body));
        } catch {
          check = { ok: false, reason: 'malformed gateway auth' };
        }
      }
      if (!check.ok) {
        this.stats.authFailures++;
        c.error(p.cmd, p.sessionId, ErrorCode.UNKNOWN, check.reason);
        return c.close();
      }
    }
    c.authenticated();
    c.ok(p.cmd, p.sessionId, '');
  }

  private hello(c: GatewayConnection, p: Packet): void {
    const { version, timePoints } = GatewayHelloCodec.decode(p.body);
    // Any version ≥ 1 speaks at least ours; the reply says which one we speak.
    c.extended = version >= 1;
    c.timePoints = timePoints ?? true;
    // Not yet authenticated (a secret is set): the challenge, made once per connection.
    if (!c.authed) c.nonce ??= gatewayNonce();
    c.ok(
      p.cmd,
      p.sessionId,
      encodeHelloReply({ version: GATEWAY_EXT_VERSION, ...(c.nonce ? { nonce: c.nonce } : {}) }),
    );
  }

  private push(c: GatewayConnection, p: Packet): void {
    const m = GatewayPushCodec.decode(p.body);
    const sessionId = p.sessionId;
    if (m.userId === '') {
      this.stats.broadcasts++;
      const task = this.opts.push.broadcast(m, p.flags, m.taskId || randomUUID());
      // MPush answers a finished broadcast with an OK and no data.
      task.onFinish((t) =>
        c.ok(Command.GATEWAY_PUSH, sessionId, c.extended ? JSON.stringify(t.report()) : ''),
      );
      return;
    }
    this.stats.pushes++;
    if (m.ext) return this.pushWithExt(c, sessionId, p.flags, m);
    this.opts.push.unicastTo(m, p.flags, c, sessionId);
  }

  /** @internal A unicast of `c` ended: its reply, as the connection said it speaks (GATEWAY_HELLO). */
  pushDone(c: GatewayConnection, sessionId: number, push: UnicastJob, o: PushOutcome): void {
    // A plain MPush client gets the receipt time back (its push-center-begin).
    if (!c.extended) return this.replyAsMPush(c, sessionId, push.userId, push.clientType, push.received, o);
    if (o.kind === 'ok') {
      c.ok(
        Command.GATEWAY_PUSH,
        sessionId,
        pushOkData(o.userId, o.clientType, c.timePoints ? o.timePoints : undefined),
      );
    } else {
      c.error(Command.GATEWAY_PUSH, sessionId, o.code, o.reason);
    }
  }

  /**
   * A push result as MPush 0.8.1's server sends it (mpush-wire §9), for a push client that did not
   * say GATEWAY_HELLO: MPush's reason texts, its GatewayPushResult JSON with MPush's time-point
   * names in every reply, and nothing at all on an ack timeout. MPush's PushClient drops a request
   * on any ERROR and handles only codes 1–3, so an ERROR 4 would leave it with no result; given
   * silence, its own timer ends the request as a timeout.
   */
  private replyAsMPush(
    c: GatewayConnection,
    sessionId: number,
    userId: string,
    clientType: number,
    received: number,
    o: PushOutcome,
  ): void {
    if (o.kind === 'ok') {
      const t = o.timePoints;
      const written = t.written ?? received;
      const points: Array<string | number> = [
        'push-center-begin',
        t.received ?? received,
        'before-send',
        written,
      ];
      if (t.acked === undefined) points.push('success-end', written);
      else points.push('waiting-ack', written, 'success-end', t.acked);
      return c.ok(Command.GATEWAY_PUSH, sessionId, mpushPushResult(o.userId, o.clientType, points));
    }
    if (o.code === ErrorCode.ACK_TIMEOUT) {
      this.stats.silentTimeouts++;
      return;
    }
    const points = ['push-center-begin', received, MPUSH_END_POINTS[o.code] ?? 'failure-end', Date.now()];
    c.error(
      Command.GATEWAY_PUSH,
      sessionId,
      o.code,
      MPUSH_REASONS[o.code] ?? o.reason,
      mpushPushResult(userId, clientType, points),
    );
  }

  /** A unicast with the inbox extension: a reply that names the message and says whether it was kept. */
  private pushWithExt(c: GatewayConnection, sessionId: number, flags: number, m: GatewayPushMessage): void {
    keptUnicast(this.opts.push, this.opts.inbox, m, flags, (o, info) => {
      if (o.kind === 'ok') {
        c.ok(
          Command.GATEWAY_PUSH,
          sessionId,
          pushOkData(o.userId, o.clientType, c.timePoints ? o.timePoints : undefined, JSON.stringify(info)),
        );
      } else {
        c.error(Command.GATEWAY_PUSH, sessionId, o.code, o.reason, JSON.stringify(info));
      }
    });
  }

  private kick(p: Packet): void {
    const m = GatewayKickCodec.decode(p.body);
    const conn = this.opts.server.router.get(m.userId, m.clientType);
    if (!conn) return;
    if (m.deviceId && conn.deviceId !== m.deviceId) return;
    this.opts.server.unbindAndKick(conn);
  }

  private async routeQuery(c: GatewayConnection, p: Packet): Promise<void> {
    let userIds: readonly string[] | null;
    try {
      userIds = RouteQueryCodec.decode(p.body).userIds;
    } catch {
      userIds = null;
    }
    const max = this.config.gateway.maxRouteQueryUsers;
    if (!userIds || userIds.length > max) {
      return c.error(
        p.cmd,
        p.sessionId,
        ErrorCode.UNKNOWN,
        `route query needs a JSON array of up to ${max} user ids (gateway.maxRouteQueryUsers)`,
      );
    }
    try {
      const out: Record<string, Array<Record<string, unknown>>> = {};
      await Promise.all(
        userIds.map(async (u) => {
          const routes = await this.opts.routes.lookup(u);
          out[u] = [...routes].map(([clientType, route]) => ({ clientType, ...route }));
        }),
      );
      c.ok(p.cmd, p.sessionId, JSON.stringify(out));
    } catch (err) {
      c.error(p.cmd, p.sessionId, ErrorCode.PUSH_CLIENT_FAILURE, `route store: ${(err as Error).message}`);
    }
  }

  private broadcastControl(c: GatewayConnection, p: Packet): void {
    const { taskId, action } = BroadcastControlCodec.decode(p.body);
    const task = this.opts.push.task(taskId);
    if (!task) return c.error(p.cmd, p.sessionId, ErrorCode.UNKNOWN, 'unknown task');
    if (action === BroadcastAction.CANCEL) task.cancel();
    c.ok(p.cmd, p.sessionId, JSON.stringify(task.report()));
  }

  private async messageStatus(c: GatewayConnection, p: Packet, messageId: string): Promise<void> {
    try {
      const receipt = await this.opts.inbox.receipt(messageId);
      if (!receipt) return c.error(p.cmd, p.sessionId, ErrorCode.UNKNOWN, 'unknown message');
      c.ok(p.cmd, p.sessionId, JSON.stringify(receipt));
    } catch (err) {
      c.error(p.cmd, p.sessionId, ErrorCode.PUSH_CLIENT_FAILURE, (err as Error).message);
    }
  }

  async close(): Promise<void> {
    const tcp = this.tcp;
    this.tcp = undefined;
    this.tls = undefined;
    for (const c of this.conns) c.close();
    await closeServer(tcp);
  }
}
