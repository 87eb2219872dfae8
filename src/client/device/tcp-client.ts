import { EventEmitter } from 'node:events';
import { Command, encodePacket, Flags, type Packet } from '../../protocol/index.js';
import { backoffDelay } from './backoff.js';
import { BinaryWire, type BinaryWireTypes } from './binary-wire.js';
import {
  type DeviceHandshake,
  type DeviceHost,
  DeviceProtocol,
  joinTags,
  type KickEvent,
  type OkEvent,
  type ResumeSession,
  type ServerErrorEvent,
} from './device-protocol.js';
import { DeviceClientError, ServerReplyError } from './errors.js';
import { PendingRequests, Waiters } from './requests.js';
import type { StoredSession } from './session-storage.js';
import type { DeviceClientEvents, DeviceClientState, HandshakeEvent } from './tcp-client-events.js';
import {
  type DeviceClientOptions,
  type ResolvedDeviceClientOptions,
  resolveDeviceClientOptions,
  type ServerAddress,
} from './tcp-client-options.js';
import {
  kOnClose,
  kOnConnect,
  kOnData,
  kOnError,
  kOnLinkTimer,
  type Link,
  type LinkOwner,
  openLink,
} from './tcp-link.js';

const kOnReconnectTimer = Symbol('mpush.device.onReconnectTimer');

function onReconnectTimer(client: DeviceClient): void {
  client[kOnReconnectTimer]();
}
function rethrow(err: unknown): void {
  throw err;
}
function noop(): void {}

/**
 * A device's long connection to an MPush (or mpush-ts) connection server over TCP, behaving like
 * MPush's Java SDK: RSA/AES handshake or fast connect, automatic re-bind, pushes with automatic or
 * application acks, heartbeats, and reconnection with backoff across the configured servers.
 *
 * The protocol itself is a {@link DeviceProtocol} over a {@link BinaryWire}, one per client and reset
 * for each connection; this class owns what the protocol leaves to it: sockets and timers, the session
 * storage, the reconnect policy, and requests with their timeouts.
 *
 * ```ts
 * const client = new DeviceClient({ servers: [{ host, port }], publicKey, deviceId: 'd1', userId: 'u1' });
 * client.on('push', (p) => { handle(p.content); if (p.ackModel === 'biz') client.ack(p.sessionId); });
 * await client.connect();
 * ```
 */
export class DeviceClient extends EventEmitter<DeviceClientEvents> implements LinkOwner {
  readonly deviceId: string;
  private readonly options: ResolvedDeviceClientOptions;
  private readonly wire: BinaryWire;
  private readonly protocol: DeviceProtocol<BinaryWireTypes>;

  private userId: string | undefined;
  private tags: string;
  private bindData: string;
  private bound: string | undefined;

  private link: Link | undefined;
  private epoch = 0;
  private clientState: DeviceClientState = 'idle';
  private stopped = true;
  private serverIndex = 0;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly requests: PendingRequests;
  private readonly readyWaiters = new Waiters();
  private readonly bindWaiters = new Waiters();
  /** A session the server refused: never fast-connect it again, whatever the storage still says. */
  private rejectedSessionId: string | undefined;

  constructor(options: DeviceClientOptions) {
    super();
    const o = resolveDeviceClientOptions(options);
    this.options = o;
    this.deviceId = o.deviceId;
    this.userId = o.userId;
    this.tags = o.tags;
    this.bindData = o.bindData;
    this.requests = new PendingRequests(o.requestTimeoutMs);
    this.wire = new BinaryWire(o.wire);
    this.protocol = new DeviceProtocol(this.wire, this.protocolHost(), o.deviceId, o.profile);
  }

  /**
   * Where the protocol's frames and events go. One host per client, not per connection: the protocol is
   * reset when a connection is dropped and only the current connection feeds it, so every callback
   * concerns the current connection.
   */
  private protocolHost(): DeviceHost<BinaryWireTypes> {
    return {
      write: (bytes) => this.link?.socket.write(bytes),
      onHandshake: (h) => this.onHandshake(h),
      onError: (err, fatal) => this.onProtocolError(err, fatal),
      onFastConnectFailed: (_e, s) => this.onFastConnectFailed(s),
      onServerError: (e) => this.onServerError(e),
      onOk: (r) => this.onOk(r),
      onAck: (sessionId) => this.onAck(sessionId),
      onPush: (p) => this.safeEmit('push', p),
      onKick: (k) => this.onKick(k),
      onPacket: (p) => this.safeEmit('packet', p),
    };
  }

  // -------------------------------------------------------------------------------------------
  // Public API
  // -------------------------------------------------------------------------------------------

  get state(): DeviceClientState {
    return this.clientState;
  }

  /** Incremented for every new socket; callbacks of older sockets are ignored. */
  get connectionEpoch(): number {
    return this.epoch;
  }

  /** The server session id while handshaken. */
  get sessionId(): string | undefined {
    return this.link !== undefined && this.protocol.ready ? this.protocol.sessionId : undefined;
  }

  /** The negotiated heartbeat (ms) while handshaken. */
  get negotiatedHeartbeat(): number | undefined {
    return this.link !== undefined && this.protocol.ready ? this.protocol.negotiatedHeartbeat : undefined;
  }

  /** The user the server confirmed on this connection, if any. */
  get boundUserId(): string | undefined {
    return this.bound;
  }

  /** The address of the current (or last tried) connection. */
  get server(): ServerAddress {
    return this.link?.address ?? this.options.servers[this.serverIndex]!;
  }

  /**
   * Starts connecting (and keeps reconnecting, unless `autoReconnect` is off). Resolves at the
   * first handshake; rejects when {@link close} is called first, or, without auto-reconnect, when the
   * attempt fails. Calling it while connected or connecting returns the same progress.
   */
  connect(): Promise<void> {
    if (this.isReady()) return Promise.resolve();
    const p = this.readyWaiters.add();
    // The client may be used through events alone: an ignored rejection must not crash the process.
    p.catch(noop);
    this.stopped = false;
    if (this.link === undefined && this.reconnectTimer === undefined) {
      this.attempt = 0;
      this.openLink();
    }
    return p;
  }

  /** Closes the connection and stops reconnecting. Resolves once the socket is closed. */
  async close(): Promise<void> {
    this.stopped = true;
    if (this.reconnectTimer !== undefined) {
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = undefined;
    }
    const closedError = new DeviceClientError('MPUSH_ERR_CLOSED', 'the client was closed');
    this.readyWaiters.settle(closedError);
    this.bindWaiters.settle(closedError);
    const link = this.link;
    if (link !== undefined) {
      const socket = link.socket;
      const closed = socket.closed
        ? undefined
        : new Promise<void>((resolve) => socket.once('close', resolve));
      link.closeReason = 'closed by the client';
      this.dropLink(link);
      if (closed) await closed;
    }
    this.clientState = 'closed';
  }

  /**
   * Binds a user to this connection (BIND, mpush-wire §8) and remembers it: it is re-bound after every
   * handshake. Resolves on the server's OK; rejects with {@link ServerReplyError} on ERROR, or
   * {@link DeviceClientError} on timeout. Called while (re)connecting, it resolves with the bind that
   * follows the next handshake.
   * @param tags replaces the configured tags when given.
   * @param data replaces the configured `bindData` (the token slot) when given.
   */
  bindUser(userId: string, tags?: string | ReadonlyArray<string>, data?: string): Promise<void> {
    if (!userId) return Promise.reject(new TypeError('bindUser needs a userId'));
    this.userId = userId;
    if (tags !== undefined) this.tags = joinTags(tags);
    if (data !== undefined) this.bindData = data;
    if (this.isReady()) return this.sendBind();
    if (this.stopped) {
      return Promise.reject(
        new DeviceClientError('MPUSH_ERR_NOT_CONNECTED', 'not connected: call connect() first'),
      );
    }
    return this.bindWaiters.addWithTimeout(
      this.options.requestTimeoutMs,
      'no handshake and bind within the request timeout',
    );
  }

  /**
   * Unbinds the current user (UNBIND) and forgets it, so it is not re-bound. Resolves on OK, at once
   * when no user is set or the client is not connected (the server drops the binding with the
   * connection).
   */
  unbindUser(): Promise<void> {
    const userId = this.userId ?? this.bound;
    this.userId = undefined;
    if (userId === undefined || !this.isReady()) {
      this.bound = undefined;
      return Promise.resolve();
    }
    const id = this.protocol.nextId();
    const done = this.requests.add(id, Command.UNBIND, userId);
    this.protocol.unbind(userId, this.tags, this.bindData, id);
    return done;
  }

  /** Acks a push by its sessionId (for `'biz'` pushes). False when not connected. */
  ack(sessionId: number): boolean {
    if (!this.isReady()) return false;
    this.protocol.ack(sessionId);
    return true;
  }

  /**
   * Sends a device-originated PUSH. With `ack`, sets AUTO_ACK and resolves when the server's ACK
   * comes back (MPush acks such pushes); else resolves once written.
   */
  pushToServer(content: Buffer | string, options?: { ack?: boolean }): Promise<void> {
    if (!this.isReady())
      return Promise.reject(new DeviceClientError('MPUSH_ERR_NOT_CONNECTED', 'not connected'));
    const body = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
    if (!options?.ack) {
      this.protocol.push(body);
      return Promise.resolve();
    }
    const id = this.protocol.nextId();
    const done = this.requests.add(id, Command.PUSH, '');
    this.protocol.push(body, Flags.AUTO_ACK, id);
    return done;
  }

  /** Writes a heartbeat byte now. False when there is no connection. */
  heartbeat(): boolean {
    if (this.link === undefined) return false;
    return this.protocol.heartbeat();
  }

  /**
   * Writes a packet as given (tests, tools). With `encrypt`, its body is compressed/encrypted like any
   * other with the connection's current cipher. False when there is no connection.
   */
  sendPacket(packet: Packet, options?: { encrypt?: boolean }): boolean {
    if (this.link === undefined) return false;
    this.protocol.write(
      options?.encrypt
        ? this.wire.seal(packet.cmd, packet.sessionId, packet.body, packet.flags)
        : encodePacket(packet),
    );
    return true;
  }

  /** Writes bytes as they are (tests: garbage, partial frames). False when there is no connection. */
  sendRaw(bytes: Buffer): boolean {
    if (this.link === undefined) return false;
    this.protocol.write(bytes);
    return true;
  }

  /** A fresh packet sessionId, as the SDK numbers its requests (1, 2, ...). */
  nextId(): number {
    return this.protocol.nextId();
  }

  // -------------------------------------------------------------------------------------------
  // Connection life cycle
  // -------------------------------------------------------------------------------------------

  private isReady(): boolean {
    return this.link !== undefined && this.protocol.ready;
  }

  private openLink(): void {
    this.epoch++;
    const link = openLink(this, this.options.servers[this.serverIndex]!);
    this.link = link;
    this.clientState = 'connecting';
    link.armConnectTimeout(this.options.connectTimeoutMs);
  }

  /** @internal */
  [kOnConnect](link: Link): void {
    if (link !== this.link) return;
    this.clientState = 'handshaking';
    this.safeEmit('connected', link.address);
    void this.beginSession(link);
  }

  private async beginSession(link: Link): Promise<void> {
    let stored: StoredSession | undefined;
    const storage = this.options.storage;
    if (storage !== undefined) {
      try {
        stored = await storage.load();
      } catch (err) {
        this.emitError(err);
      }
    }
    if (link !== this.link) return;
    try {
      this.protocol.start(stored !== undefined && this.canFastConnect(stored) ? stored : undefined);
    } catch (err) {
      this.failLink(
        link,
        new DeviceClientError('MPUSH_ERR_HANDSHAKE', `cannot start the handshake: ${err}`, { cause: err }),
      );
    }
  }

  private canFastConnect(s: StoredSession): boolean {
    if (s.deviceId !== this.deviceId || s.sessionId === this.rejectedSessionId) return false;
    if (s.expireTime <= Date.now()) {
      void this.clearSession();
      return false;
    }
    return s.sessionKey.length === 32 && s.iv.length === 32;
  }

  /** @internal */
  [kOnLinkTimer](link: Link): void {
    if (link !== this.link) return;
    if (!this.protocol.ready) {
      this.failLink(
        link,
        new DeviceClientError(
          'MPUSH_ERR_CONNECT_TIMEOUT',
          `no handshake with ${link.address.host}:${link.address.port} within ${this.options.connectTimeoutMs} ms`,
        ),
      );
      return;
    }
    // A heartbeat timeout fails the link through onProtocolError and returns -1.
    const due = this.protocol.handleTimeout();
    if (due >= 0 && link === this.link) link.armAt(due, Date.now());
  }

  /** @internal */
  [kOnData](link: Link, chunk: Buffer): void {
    if (link === this.link) this.protocol.receive(chunk);
  }

  /** @internal */
  [kOnError](link: Link, err: Error): void {
    if (link !== this.link) return;
    link.closeReason ??= err.message;
    link.closeError ??= err;
    this.emitError(err);
  }

  /** @internal */
  [kOnClose](link: Link): void {
    if (link !== this.link) return;
    link.closeReason ??= 'connection closed by the server';
    this.dropLink(link);
  }

  /** Closes a connection for a reason of our own (bad data, timeouts). */
  private failLink(link: Link, err: Error): void {
    if (link !== this.link) return;
    link.closeReason = err.message;
    link.closeError = err;
    this.emitError(err);
    this.dropLink(link);
  }

  /** Forgets the connection, fails what waited on it and, unless stopped, schedules the next one. */
  private dropLink(link: Link): void {
    if (link !== this.link) return;
    this.link = undefined;
    link.destroy();
    const wasReady = this.protocol.ready;
    this.protocol.reset();
    this.bound = undefined;
    this.clientState = this.stopped ? 'closed' : 'idle';
    const reason = link.closeReason ?? 'connection closed';
    const pendingError = this.stopped
      ? new DeviceClientError('MPUSH_ERR_CLOSED', 'the client was closed')
      : new DeviceClientError('MPUSH_ERR_DISCONNECTED', `connection lost: ${reason}`, {
          cause: link.closeError,
        });
    this.requests.rejectAll(pendingError);
    // A server that never got us to a handshake is skipped next time; after a good session the same
    // server is tried first (fast connect also works on any node).
    if (!wasReady) this.serverIndex = (this.serverIndex + 1) % this.options.servers.length;
    this.safeEmit('disconnected', link.closeError ? { reason, error: link.closeError } : { reason });
    if (this.stopped || this.link !== undefined) return; // a listener may have reconnected or closed us
    if (this.options.autoReconnect) {
      this.scheduleReconnect();
    } else {
      this.readyWaiters.settle(link.closeError ?? new DeviceClientError('MPUSH_ERR_DISCONNECTED', reason));
      this.bindWaiters.settle(new DeviceClientError('MPUSH_ERR_DISCONNECTED', reason));
    }
  }

  private scheduleReconnect(): void {
    this.attempt++;
    const delayMs = backoffDelay(this.attempt, this.options.reconnect);
    this.clientState = 'reconnecting';
    this.reconnectTimer = setTimeout(onReconnectTimer, delayMs, this);
    this.safeEmit('reconnecting', { attempt: this.attempt, delayMs });
  }

  /** @internal */
  [kOnReconnectTimer](): void {
    this.reconnectTimer = undefined;
    if (this.stopped || this.link !== undefined) return;
    this.openLink();
  }

  // -------------------------------------------------------------------------------------------
  // Protocol events
  // -------------------------------------------------------------------------------------------

  private onHandshake(h: DeviceHandshake): void {
    const link = this.link!;
    const heartbeat = this.protocol.negotiatedHeartbeat;
    if (!h.fast && this.options.storage !== undefined && h.sessionId !== '') {
      this.saveSession({
        sessionId: h.sessionId,
        deviceId: this.deviceId,
        sessionKey: h.sessionKey!,
        iv: h.iv!,
        heartbeat,
        expireTime: h.expireTime,
        address: `${link.address.host}:${link.address.port}`,
      });
    }
    this.clientState = 'ready';
    this.attempt = 0;
    link.armAt(this.protocol.nextTimeout(), Date.now());
    // The Java SDK re-binds on every handshake: a new connection is unbound on the server.
    if (this.userId !== undefined) this.autoBind();
    this.readyWaiters.settle();
    // A fast connect reports the heartbeat as the server sent it (the SDK's event), a full handshake
    // the one in use.
    const event: HandshakeEvent = {
      sessionId: h.sessionId,
      heartbeat: h.fast ? h.heartbeat : heartbeat,
      expireTime: h.expireTime,
      fast: h.fast,
    };
    this.safeEmit('handshake', event);
  }

  private onProtocolError(err: DeviceClientError, fatal: boolean): void {
    if (fatal && this.link !== undefined) this.failLink(this.link, err);
    else this.emitError(err);
  }

  private onFastConnectFailed(session: ResumeSession): void {
    this.rejectedSessionId = session.sessionId;
    void this.clearSession();
  }

  private onServerError(e: ServerErrorEvent): void {
    const pending = this.requests.take(e.sessionId);
    this.safeEmit('serverError', e);
    pending?.reject(new ServerReplyError(e.cmd, e.code, e.reason, e.data));
  }

  private onOk(r: OkEvent): void {
    const pending = this.requests.get(r.sessionId);
    if (pending === undefined || pending.cmd !== r.cmd) return;
    this.requests.take(r.sessionId);
    if (pending.cmd === Command.BIND) {
      this.bound = pending.userId;
      pending.resolve();
      this.safeEmit('bind', { userId: pending.userId });
    } else if (pending.cmd === Command.UNBIND) {
      if (this.bound === pending.userId) this.bound = undefined;
      pending.resolve();
      this.safeEmit('unbind', { userId: pending.userId });
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

  private onKick(k: KickEvent): void {
    // mpush-wire §12: the connection stays up, unbound. Forgetting the user keeps a reconnect from
    // binding it again and kicking the other device back, in a loop.
    if (k.userId === '' || k.userId === this.bound) this.bound = undefined;
    if (k.userId === '' || k.userId === this.userId) this.userId = undefined;
    this.safeEmit('kick', k);
  }

  private sendBind(): Promise<void> {
    const userId = this.userId!;
    const id = this.protocol.nextId();
    const done = this.requests.add(id, Command.BIND, userId);
    this.protocol.bind(userId, this.tags, this.bindData, id);
    return done;
  }

  private autoBind(): void {
    this.sendBind().then(
      () => this.bindWaiters.settle(),
      (err: Error) => {
        if (this.bindWaiters.size > 0) this.bindWaiters.settle(err);
        else this.emitError(err);
      },
    );
  }

  // -------------------------------------------------------------------------------------------
  // Helpers
  // -------------------------------------------------------------------------------------------

  private saveSession(s: StoredSession): void {
    this.rejectedSessionId = undefined;
    this.options.storage?.save(s).catch((err: unknown) => this.emitError(err));
  }

  private async clearSession(): Promise<void> {
    try {
      await this.options.storage?.clear();
    } catch (err) {
      this.emitError(err);
    }
  }

  /** Emits to application listeners; an exception they throw is rethrown later, never into the parser. */
  private safeEmit<K extends keyof DeviceClientEvents>(event: K, ...args: DeviceClientEvents[K]): void {
    try {
      (this.emit as (event: K, ...args: DeviceClientEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      process.nextTick(rethrow, err);
    }
  }

  private emitError(err: unknown): void {
    if (this.listenerCount('error') === 0) return;
    this.safeEmit('error', err instanceof Error ? err : new Error(String(err)));
  }
}
