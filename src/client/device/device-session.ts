// A device's session across connections: the one state machine under the TCP client and the WebSocket
// client. It owns what DeviceProtocol leaves to its owner (which connection is current, the connect
// deadline and heartbeat timer, the reconnect policy, the bound user, requests and their timeouts,
// duplicate pushes) and leaves to its transport only what differs: how a connection is opened, written
// and closed. Whether to reconnect is read from the disconnect catalogue (protocol/disconnect.ts): a
// reason that cannot get better by coming back (a protocol error, a refused handshake or bind, a kick)
// ends the session; the others reconnect with backoff. Browser-safe: no Node module, no Buffer.

import { Command, Flags } from '../../protocol/command.js';
import { Disconnect, type DisconnectReason, disconnectByWsCode } from '../../protocol/disconnect.js';
import {
  backoffDelay,
  type ReconnectOptions,
  type ResolvedReconnectOptions,
  resolveReconnectOptions,
} from './backoff.js';
import {
  type DeviceHandshake,
  type DeviceHost,
  DeviceProtocol,
  type DevicePush,
  type DeviceWire,
  joinTags,
  type KickEvent,
  type OkEvent,
  type ResumeSession,
  type ServerErrorEvent,
  type WireHttpRequest,
  type WireHttpResponse,
  type WireTypes,
} from './device-protocol.js';
import { DeviceClientError, type DeviceClientErrorCode, ServerReplyError } from './errors.js';
import {
  fromWireResponse,
  type HttpProxyRequest,
  type HttpProxyResponse,
  toWireRequest,
} from './http-request.js';
import { PendingRequests, Waiters } from './requests.js';

/** Where a device client is. */
export type DeviceSessionState = 'idle' | 'connecting' | 'handshaking' | 'ready' | 'reconnecting' | 'closed';

/** A connection ended (`disconnected` event of both device clients). */
export interface DisconnectedEvent {
  /** For humans: the close frame's reason, the error's message, or what the client did. */
  reason: string;
  /** The error that ended the connection, when there was one. */
  error?: Error;
  /** The WebSocket close code the server sent (WebSocket client only). */
  code?: number;
  /**
   * The catalogue reason that decided what comes next: what closed the connection, or the kick or
   * refused bind that ended the session before it did.
   */
  disconnect: DisconnectReason;
  /** True when the client reconnects (a `reconnecting` event follows). */
  willReconnect: boolean;
}

/** A reconnect is scheduled (`reconnecting` event). */
export interface ReconnectingEvent {
  /** 1 for the first retry after a success. */
  attempt: number;
  delayMs: number;
}

/** A push dropped because a push with the same PushMsg `msgId` was already delivered. */
export interface DuplicatePushEvent {
  msgId: string;
  /** The packet's sessionId (a `'biz'` duplicate was acked by the client: the app saw it once). */
  sessionId: number;
}

/** The events a session emits through its transport: shared by both device clients. */
export type DeviceSessionEvents<T extends WireTypes> = {
  bind: [{ userId: string }];
  unbind: [{ userId: string }];
  push: [DevicePush<T['content']>];
  /** A push whose PushMsg msgId was delivered before: not delivered again. */
  duplicate: [DuplicatePushEvent];
  /**
   * Another device of the same type bound this user. The connection stays up, unbound (mpush-wire
   * §12); the user is forgotten and, when the connection goes, the client does not reconnect
   * (reason {@link Disconnect.KICKED}) until `connect` or `bindUser` is called again.
   */
  kick: [KickEvent];
  /** Every ERROR packet, also those that reject a request. */
  serverError: [ServerErrorEvent];
  /** A command this client does not handle (e.g. CHAT). */
  packet: [T['packet']];
  disconnected: [DisconnectedEvent];
  reconnecting: [ReconnectingEvent];
  /** Emitted only when someone listens: the client never throws for want of a listener. */
  error: [Error];
};

/**
 * What differs between the clients: how a connection (`C`, any handle) is opened, written and closed.
 * The transport reports back with {@link DeviceSession.opened}, {@link DeviceSession.receive},
 * {@link DeviceSession.transportError} and {@link DeviceSession.transportClosed}, naming the
 * connection; reports about a connection that is no longer current are ignored (ioredis
 * `connectionEpoch`).
 */
export interface SessionTransport<T extends WireTypes, C> {
  /** Opens a new connection. Throwing counts as a failed attempt. */
  open(): C;
  write(conn: C, frame: T['frame']): void;
  /**
   * The session is done with `conn` (called once per connection): close it with `reason`'s close
   * code where the transport has one. `handshaken`: whether it got as far as a handshake.
   */
  discard(conn: C, reason: DisconnectReason, handshaken: boolean): void;
  /** The connection's far end for messages: `host:port`, the URL. */
  describe(conn: C): string;
  /** The handshake was accepted, the session is ready: emit the client's own `handshake` event. */
  handshaken(conn: C, handshake: DeviceHandshake): void;
  /** The server refused the fast connect of `session`. */
  fastConnectFailed?(session: ResumeSession): void;
  /** Push content as text, to read a PushMsg `msgId` from; undefined when it cannot be JSON. */
  contentText(content: T['content']): string | undefined;
  /** Emits to the application; must never throw (and skip `error` when no one listens). */
  emit<K extends keyof DeviceSessionEvents<T>>(event: K, ...args: DeviceSessionEvents<T>[K]): void;
}

/** The options a session runs with, defaults applied by the client. */
export interface DeviceSessionOptions {
  userId: string | undefined;
  tags: string;
  bindData: string;
  autoReconnect: boolean;
  reconnect: ResolvedReconnectOptions;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  /** How many recently delivered PushMsg ids are remembered to drop duplicates; 0 turns it off. */
  dedupWindow: number;
}

/** The default of `dedupWindow`: how many recent PushMsg ids a client remembers. */
export const DEFAULT_DEDUP_WINDOW = 1000;

/** Checks a `dedupWindow` option. */
export function resolveDedupWindow(n: number | undefined): number {
  if (n === undefined) return DEFAULT_DEDUP_WINDOW;
  if (!Number.isInteger(n) || n < 0) throw new TypeError(`dedupWindow must be an integer ≥ 0, got ${n}`);
  return n;
}

/** The session options every device client takes, as its caller gives them. */
export interface SessionOptionsInput {
  userId?: string | undefined;
  tags?: string | ReadonlyArray<string> | undefined;
  bindData?: string | undefined;
  autoReconnect?: boolean | undefined;
  reconnect?: ReconnectOptions | undefined;
  connectTimeoutMs?: number | undefined;
  requestTimeoutMs?: number | undefined;
  dedupWindow?: number | undefined;
}

/** A client's options with the defaults applied: one place for both clients. */
export function resolveSessionOptions(o: SessionOptionsInput): DeviceSessionOptions {
  return {
    userId: o.userId || undefined,
    tags: joinTags(o.tags),
    bindData: o.bindData ?? '',
    autoReconnect: o.autoReconnect ?? true,
    reconnect: resolveReconnectOptions(o.reconnect),
    connectTimeoutMs: o.connectTimeoutMs ?? 10_000,
    requestTimeoutMs: o.requestTimeoutMs ?? 10_000,
    dedupWindow: resolveDedupWindow(o.dedupWindow),
  };
}

/**
 * The `msgId` of MPush's PushMsg JSON (`{msgType, msgId, content}`), or undefined when `text` is not
 * such an object. A cheap test comes first: most contents are never parsed.
 */
export function pushMsgId(text: string): string | undefined {
  if (text.charCodeAt(0) !== 0x7b || !text.includes('"msgId"')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const id = (parsed as { msgId?: unknown }).msgId;
  if (typeof id === 'string') return id === '' ? undefined : id;
  return typeof id === 'number' && Number.isFinite(id) ? String(id) : undefined;
}

/** The reason a fatal protocol error closes the connection with. */
const FATAL: Partial<Record<DeviceClientErrorCode, DisconnectReason>> = {
  MPUSH_ERR_PROTOCOL: Disconnect.PROTOCOL_ERROR,
  MPUSH_ERR_HANDSHAKE: Disconnect.BAD_HANDSHAKE,
  MPUSH_ERR_HEARTBEAT_TIMEOUT: Disconnect.HEARTBEAT_TIMEOUT,
  MPUSH_ERR_CONNECT_TIMEOUT: Disconnect.HANDSHAKE_TIMEOUT,
};

/** Timers never fire sooner than this (ms). */
const MIN_TICK = 5;

function onConnectionTimer(session: DeviceSession<WireTypes, unknown>): void {
  session.connectionTimerFired();
}
function onReconnectTimer(session: DeviceSession<WireTypes, unknown>): void {
  session.reconnectTimerFired();
}
function noop(): void {}
/** Node's timers keep the process alive; a browser's are numbers. */
function unref(timer: ReturnType<typeof setTimeout>): void {
  (timer as { unref?: () => void }).unref?.();
}

/**
 * One device's session over successive connections: `idle` → `connecting` → `handshaking` → `ready`,
 * and after a lost connection `reconnecting` (backoff) or, when the catalogue reason says coming back
 * cannot help, `idle` for good; `closed` after {@link close}. The user is re-bound after every
 * handshake (as MPush's SDK does). Pushes whose PushMsg msgId was delivered already are dropped.
 *
 * The clients ({@link DeviceClient}, {@link WsDeviceClient}) are this plus a transport.
 */
export class DeviceSession<T extends WireTypes, C> {
  readonly protocol: DeviceProtocol<T>;
  private readonly transport: SessionTransport<T, C>;
  private readonly options: DeviceSessionOptions;

  private userId: string | undefined;
  private tags: string;
  private bindData: string;
  private bound: string | undefined;

  private current: C | undefined;
  private currentError: Error | undefined;
  private epoch = 0;
  private clientState: DeviceSessionState = 'idle';
  private stopped = true;
  /** Set by a kick or a refused bind: the session ends with the connection. */
  private ended: DisconnectReason | undefined;
  private attempt = 0;
  private connectionTimer: ReturnType<typeof setTimeout> | undefined;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly requests: PendingRequests;
  private readonly readyWaiters = new Waiters();
  private readonly bindWaiters = new Waiters();
  /** Recently delivered PushMsg ids, oldest first (a Set iterates in insertion order). */
  private readonly delivered = new Set<string>();

  constructor(
    wire: DeviceWire<T>,
    deviceId: string,
    profile: ConstructorParameters<typeof DeviceProtocol<T>>[3],
    options: DeviceSessionOptions,
    transport: SessionTransport<T, C>,
  ) {
    this.options = options;
    this.transport = transport;
    this.userId = options.userId;
    this.tags = options.tags;
    this.bindData = options.bindData;
    this.requests = new PendingRequests(options.requestTimeoutMs);
    this.protocol = new DeviceProtocol(wire, this.protocolHost(), deviceId, profile);
  }

  /** Where the protocol's frames and events go: one host per session, fed by the current connection. */
  private protocolHost(): DeviceHost<T> {
    return {
      write: (frame) => {
        const conn = this.current;
        if (conn !== undefined) this.transport.write(conn, frame);
      },
      onHandshake: (h) => this.onHandshake(h),
      onError: (err, fatal) => this.onError(err, fatal),
      onFastConnectFailed: (_e, session) => this.transport.fastConnectFailed?.(session),
      onServerError: (e) => this.onServerError(e),
      onOk: (r) => this.onOk(r),
      onAck: (sessionId) => this.onAck(sessionId),
      onPush: (p) => this.onPush(p),
      onKick: (k) => this.onKick(k),
      onHttpResponse: (id, r) => this.onHttpResponse(id, r),
      onPacket: (p) => this.transport.emit('packet', p),
    };
  }

  // -------------------------------------------------------------------------------------------
  // What the clients expose
  // -------------------------------------------------------------------------------------------

  get state(): DeviceSessionState {
    return this.clientState;
  }

  /** The current connection, if any. */
  get connection(): C | undefined {
    return this.current;
  }

  /** Incremented for every new connection. */
  get connectionEpoch(): number {
    return this.epoch;
  }

  /** True while a connection is handshaken. */
  get ready(): boolean {
    return this.current !== undefined && this.protocol.ready;
  }

  /** The user the server confirmed on this connection, if any. */
  get boundUserId(): string | undefined {
    return this.bound;
  }

  /** See DeviceClient.connect. */
  connect(): Promise<void> {
    if (this.ready) return Promise.resolve();
    const p = this.readyWaiters.add();
    // The client may be used through events alone: an ignored rejection must not crash the process.
    p.catch(noop);
    this.stopped = false;
    this.ended = undefined;
    if (this.current === undefined && this.reconnectTimer === undefined) {
      this.attempt = 0;
      this.openConnection();
    }
    return p;
  }

  /** Stops reconnecting and closes the connection (the transport's close completes it). */
  close(): void {
    this.stopped = true;
    if (this.reconnectTimer !== undefined) {
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = undefined;
    }
    const closedError = new DeviceClientError('MPUSH_ERR_CLOSED', 'the client was closed');
    this.readyWaiters.settle(closedError);
    this.bindWaiters.settle(closedError);
    const conn = this.current;
    if (conn !== undefined) this.drop(conn, Disconnect.REMOTE_CLOSED, 'closed by the client');
    this.clientState = 'closed';
  }

  /** See DeviceClient.bindUser. */
  bindUser(userId: string, tags?: string | ReadonlyArray<string>, data?: string): Promise<void> {
    if (!userId) return Promise.reject(new TypeError('bindUser needs a userId'));
    this.userId = userId;
    this.ended = undefined;
    if (tags !== undefined) this.tags = joinTags(tags);
    if (data !== undefined) this.bindData = data;
    if (this.ready) return this.request(Command.BIND, userId);
    if (this.stopped) {
      return Promise.reject(
        new DeviceClientError('MPUSH_ERR_NOT_CONNECTED', 'not connected: call connect() first'),
      );
    }
    // Connecting: settled by the bind that follows the next handshake.
    return this.bindWaiters.addWithTimeout(
      this.options.requestTimeoutMs,
      'no handshake and bind within the request timeout',
    );
  }

  /** See DeviceClient.unbindUser. */
  unbindUser(): Promise<void> {
    const userId = this.userId ?? this.bound;
    this.userId = undefined;
    if (userId === undefined || !this.ready) {
      this.bound = undefined;
      return Promise.resolve();
    }
    return this.request(Command.UNBIND, userId);
  }

  /** Acks push `sessionId`; false when not handshaken. */
  ack(sessionId: number): boolean {
    if (!this.ready) return false;
    this.protocol.ack(sessionId);
    return true;
  }

  /** A device-originated PUSH; with `ack`, resolves on the server's ACK. */
  push(content: T['content'], ack: boolean): Promise<void> {
    if (!this.ready) {
      return Promise.reject(new DeviceClientError('MPUSH_ERR_NOT_CONNECTED', 'not connected'));
    }
    if (!ack) {
      this.protocol.push(content);
      return Promise.resolve();
    }
    const id = this.protocol.nextId();
    const done = this.requests.add(id, Command.PUSH, '');
    this.protocol.push(content, Flags.AUTO_ACK, id);
    return done;
  }

  /**
   * An HTTP request performed by the server (HTTP_PROXY, mpush-wire §11), `body` resolved by the
   * client. Resolves with the response, whatever its status; rejects with `MPUSH_ERR_TIMEOUT` when
   * nothing came back within the timeout, `MPUSH_ERR_NOT_CONNECTED` / `MPUSH_ERR_DISCONNECTED`
   * without a connection, and a {@link ServerReplyError} when the server answers ERROR (an MPush server
   * with its proxy off answers 101).
   */
  httpRequest(
    request: HttpProxyRequest<T['content']>,
    body: T['content'],
  ): Promise<HttpProxyResponse<T['content']>> {
    const timeoutMs = request.timeoutMs ?? this.options.requestTimeoutMs;
    let wire: WireHttpRequest<T['content']>;
    try {
      wire = toWireRequest(request, body, timeoutMs);
    } catch (err) {
      return Promise.reject(err);
    }
    if (!this.ready) {
      return Promise.reject(new DeviceClientError('MPUSH_ERR_NOT_CONNECTED', 'not connected'));
    }
    const id = this.protocol.nextId();
    const done = this.requests.add<HttpProxyResponse<T['content']>>(id, Command.HTTP_PROXY, '', timeoutMs);
    this.protocol.httpRequest(wire, id);
    return done;
  }

  /** Writes a heartbeat now; false without a connection or on a wire without heartbeats. */
  heartbeat(): boolean {
    return this.current !== undefined && this.protocol.heartbeat();
  }

  /** Writes a frame as given (tests, tools); false without a connection. */
  writeRaw(frame: T['frame']): boolean {
    if (this.current === undefined) return false;
    this.protocol.write(frame);
    return true;
  }

  // -------------------------------------------------------------------------------------------
  // From the transport
  // -------------------------------------------------------------------------------------------

  /** `conn` is open. False when it is not the current connection (the caller then does nothing). */
  opened(conn: C): boolean {
    if (conn !== this.current) return false;
    this.clientState = 'handshaking';
    return true;
  }

  /** Starts the handshake on `conn`, or a fast connect with `resume`. */
  start(conn: C, resume?: ResumeSession): void {
    if (conn !== this.current) return;
    try {
      this.protocol.start(resume);
    } catch (err) {
      this.fail(
        conn,
        new DeviceClientError('MPUSH_ERR_HANDSHAKE', `cannot start the handshake: ${err}`, { cause: err }),
      );
    }
  }

  /** Input on `conn`. */
  receive(conn: C, frame: T['frame']): void {
    if (conn === this.current) this.protocol.receive(frame);
  }

  /** The transport reported an error on `conn`; its close follows. */
  transportError(conn: C, err: Error): void {
    if (conn !== this.current) return;
    this.currentError ??= err;
    this.emitError(err);
  }

  /**
   * `conn` closed. `code`: the WebSocket close code, read in the catalogue (a code it does not name,
   * such as 1006, is a transport failure); without one, a clean close or the reported error.
   */
  transportClosed(conn: C, code?: number, text?: string): void {
    if (conn !== this.current) return;
    const error = this.currentError;
    const reason =
      code !== undefined
        ? (disconnectByWsCode(code) ?? Disconnect.TRANSPORT_ERROR)
        : error !== undefined
          ? Disconnect.TRANSPORT_ERROR
          : Disconnect.REMOTE_CLOSED;
    this.drop(conn, reason, text || error?.message || 'connection closed by the server', error, code);
  }

  /** @internal The connect deadline or the heartbeat timer of the current connection. */
  connectionTimerFired(): void {
    this.connectionTimer = undefined;
    const conn = this.current;
    if (conn === undefined) return;
    if (!this.protocol.ready) {
      this.fail(
        conn,
        new DeviceClientError(
          'MPUSH_ERR_CONNECT_TIMEOUT',
          `no handshake with ${this.transport.describe(conn)} within ${this.options.connectTimeoutMs} ms`,
        ),
      );
      return;
    }
    // A heartbeat timeout fails the connection through onError and returns -1.
    const due = this.protocol.handleTimeout();
    if (due >= 0 && conn === this.current) this.armAt(due);
  }

  /** @internal */
  reconnectTimerFired(): void {
    this.reconnectTimer = undefined;
    if (!this.stopped && this.current === undefined) this.openConnection();
  }

  // -------------------------------------------------------------------------------------------
  // Connection life cycle
  // -------------------------------------------------------------------------------------------

  private openConnection(): void {
    this.epoch++;
    this.clientState = 'connecting';
    this.currentError = undefined;
    let conn: C;
    try {
      conn = this.transport.open();
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      this.emitError(error);
      this.afterDrop(Disconnect.TRANSPORT_ERROR, `cannot connect: ${error.message}`, error);
      return;
    }
    this.current = conn;
    this.connectionTimer = setTimeout(onConnectionTimer, this.options.connectTimeoutMs, this);
  }

  /** Closes `conn` for a reason of our own (bad input, timeouts). */
  private fail(conn: C, err: DeviceClientError): void {
    if (conn !== this.current) return;
    this.emitError(err);
    this.drop(conn, FATAL[err.code] ?? Disconnect.PROTOCOL_ERROR, err.message, err);
  }

  /** Forgets `conn`, fails what waited on it and decides what comes next. */
  private drop(conn: C, reason: DisconnectReason, text: string, error?: Error, code?: number): void {
    if (conn !== this.current) return;
    this.current = undefined;
    this.clearConnectionTimer();
    const handshaken = this.protocol.ready;
    this.protocol.reset();
    this.bound = undefined;
    this.transport.discard(conn, reason, handshaken);
    this.requests.rejectAll(
      this.stopped
        ? new DeviceClientError('MPUSH_ERR_CLOSED', 'the client was closed')
        : new DeviceClientError('MPUSH_ERR_DISCONNECTED', `connection lost: ${text}`, { cause: error }),
    );
    this.afterDrop(reason, text, error, code);
  }

  private afterDrop(reason: DisconnectReason, text: string, error?: Error, code?: number): void {
    const decisive = this.ended ?? reason;
    const willReconnect = !this.stopped && this.options.autoReconnect && decisive.reconnect;
    this.clientState = this.stopped ? 'closed' : 'idle';
    const event: DisconnectedEvent = { reason: text, disconnect: decisive, willReconnect };
    if (error !== undefined) event.error = error;
    if (code !== undefined) event.code = code;
    this.transport.emit('disconnected', event);
    if (this.stopped || this.current !== undefined) return; // a listener may have reconnected or closed us
    if (willReconnect) {
      this.scheduleReconnect();
      return;
    }
    // Nothing will come back by itself: what waits for a connection fails now.
    this.stopped = true;
    this.readyWaiters.settle(error ?? new DeviceClientError('MPUSH_ERR_DISCONNECTED', text));
    this.bindWaiters.settle(new DeviceClientError('MPUSH_ERR_DISCONNECTED', text));
  }

  private scheduleReconnect(): void {
    this.attempt++;
    const delayMs = backoffDelay(this.attempt, this.options.reconnect);
    this.clientState = 'reconnecting';
    this.reconnectTimer = setTimeout(onReconnectTimer, delayMs, this);
    this.transport.emit('reconnecting', { attempt: this.attempt, delayMs });
  }

  private armAt(due: number): void {
    this.clearConnectionTimer();
    this.connectionTimer = setTimeout(onConnectionTimer, Math.max(MIN_TICK, due - Date.now()), this);
    // The socket keeps the process alive; the heartbeat alone must not.
    unref(this.connectionTimer);
  }

  private clearConnectionTimer(): void {
    if (this.connectionTimer === undefined) return;
    clearTimeout(this.connectionTimer);
    this.connectionTimer = undefined;
  }

  // -------------------------------------------------------------------------------------------
  // From the protocol (its host); only the current connection feeds it
  // -------------------------------------------------------------------------------------------

  private onHandshake(h: DeviceHandshake): void {
    const conn = this.current!;
    this.clientState = 'ready';
    this.attempt = 0;
    this.clearConnectionTimer();
    const due = this.protocol.nextTimeout();
    if (due >= 0) this.armAt(due);
    // MPush's SDK re-binds on every handshake: a new connection is unbound on the server.
    if (this.userId !== undefined) this.autoBind();
    this.readyWaiters.settle();
    this.transport.handshaken(conn, h);
  }

  private onError(err: DeviceClientError, fatal: boolean): void {
    const conn = this.current;
    if (fatal && conn !== undefined) this.fail(conn, err);
    else this.emitError(err);
  }

  private onServerError(e: ServerErrorEvent): void {
    const pending = this.requests.take(e.sessionId);
    this.transport.emit('serverError', e);
    if (pending === undefined) return;
    if (pending.cmd === Command.BIND) {
      // The same user and token would be refused again: forget them, and end the session with the
      // connection rather than reconnect into the same refusal.
      if (this.userId === pending.userId) this.userId = undefined;
      this.ended = Disconnect.AUTH_REFUSED;
    }
    pending.reject(new ServerReplyError(e.cmd, e.code, e.reason, e.data));
  }

  private onOk(r: OkEvent): void {
    const pending = this.requests.get(r.sessionId);
    if (pending === undefined || pending.cmd !== r.cmd) return;
    this.requests.take(r.sessionId);
    if (pending.cmd === Command.BIND) {
      this.bound = pending.userId;
      pending.resolve();
      this.transport.emit('bind', { userId: pending.userId });
    } else if (pending.cmd === Command.UNBIND) {
      if (this.bound === pending.userId) this.bound = undefined;
      pending.resolve();
      this.transport.emit('unbind', { userId: pending.userId });
    } else {
      pending.resolve();
    }
  }

  private onAck(sessionId: number): void {
    const pending = this.requests.get(sessionId);
    if (pending === undefined || pending.cmd !== Command.PUSH) return;
    this.requests.take(sessionId);
    pending.resolve();
  }

  private onHttpResponse(sessionId: number, r: WireHttpResponse<T['content']>): void {
    const pending = this.requests.get(sessionId);
    if (pending === undefined || pending.cmd !== Command.HTTP_PROXY) return;
    this.requests.take(sessionId);
    pending.resolve(fromWireResponse(r));
  }

  private onPush(p: DevicePush<T['content']>): void {
    const window = this.options.dedupWindow;
    if (window > 0 && this.protocol.profile.decodePushes !== false) {
      const text = this.transport.contentText(p.content);
      const msgId = text === undefined ? undefined : pushMsgId(text);
      if (msgId !== undefined) {
        if (this.delivered.has(msgId)) {
          // The app handled the first delivery; a redelivery still wants its ack.
          if (p.ackModel === 'biz') this.protocol.ack(p.sessionId);
          this.transport.emit('duplicate', { msgId, sessionId: p.sessionId });
          return;
        }
        this.delivered.add(msgId);
        if (this.delivered.size > window) this.delivered.delete(this.delivered.values().next().value!);
      }
    }
    this.transport.emit('push', p);
  }

  private onKick(k: KickEvent): void {
    // mpush-wire §12: the connection stays up, unbound. Forgetting the user keeps a reconnect from
    // binding it again and kicking the other device back, in a loop; the session ends with it.
    if (k.userId === '' || k.userId === this.bound) this.bound = undefined;
    if (k.userId === '' || k.userId === this.userId) this.userId = undefined;
    this.ended = Disconnect.KICKED;
    this.transport.emit('kick', k);
  }

  // -------------------------------------------------------------------------------------------
  // Helpers
  // -------------------------------------------------------------------------------------------

  private request(cmd: number, userId: string): Promise<void> {
    const id = this.protocol.nextId();
    const done = this.requests.add(id, cmd, userId);
    if (cmd === Command.BIND) this.protocol.bind(userId, this.tags, this.bindData, id);
    else this.protocol.unbind(userId, this.tags, this.bindData, id);
    return done;
  }

  private autoBind(): void {
    this.request(Command.BIND, this.userId!).then(
      () => this.bindWaiters.settle(),
      (err: Error) => {
        if (this.bindWaiters.size > 0) this.bindWaiters.settle(err);
        else this.emitError(err);
      },
    );
  }

  private emitError(err: unknown): void {
    this.transport.emit('error', err instanceof Error ? err : new Error(String(err)));
  }
}
