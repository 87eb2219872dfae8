import { EventEmitter } from 'node:events';
import type { Disconnect } from '../../protocol/disconnect.js';
import { encodePacket, type Packet } from '../../protocol/index.js';
import { fetchServerList } from './allocator.js';
import { BinaryWire, type BinaryWireTypes } from './binary-wire.js';
import type { DeviceHandshake, ResumeSession } from './device-protocol.js';
import { DeviceSession, type SessionTransport } from './device-session.js';
import type { HttpProxyRequest, HttpProxyResponse } from './http-request.js';
import type { StoredSession } from './session-storage.js';
import type { DeviceClientEvents, DeviceClientState, HandshakeEvent } from './tcp-client-events.js';
import {
  type DeviceClientOptions,
  type ResolvedDeviceClientOptions,
  resolveDeviceClientOptions,
  type ServerAddress,
} from './tcp-client-options.js';
import {
  dialLink,
  kOnClose,
  kOnConnect,
  kOnData,
  kOnError,
  type Link,
  type LinkOwner,
  openLink,
  pendingLink,
} from './tcp-link.js';

/** Where the current link's address came from: what a failed attempt moves on from. */
type LinkSource = 'servers' | 'alloc' | 'pending';

const NO_ADDRESS: ServerAddress = Object.freeze({ host: '', port: 0 });
const EMPTY = Buffer.alloc(0);

function rethrow(err: unknown): void {
  throw err;
}

/**
 * A device's long connection to an MPush (or mpush-ts) connection server over TCP, behaving like
 * MPush's Java SDK: RSA/AES handshake or fast connect, automatic re-bind, pushes with automatic or
 * application acks, heartbeats, and reconnection with backoff across the configured servers.
 *
 * Whether it reconnects is decided by why the connection ended (the catalogue {@link Disconnect}):
 * after a network loss, a server shutdown or a heartbeat timeout it comes back with backoff; after a
 * protocol error, a refused handshake or bind, or a kick it does not. Pushes whose PushMsg `msgId`
 * was already delivered are dropped (option `dedupWindow`).
 *
 * The session (connection life cycle, bind, requests, reconnect policy) is a {@link DeviceSession},
 * shared with {@link WsDeviceClient}; the protocol under it a {@link DeviceProtocol} over a
 * {@link BinaryWire}. This class adds the TCP sockets, the server list (or MPush's allocator,
 * `allocUrl`) and the session storage.
 *
 * ```ts
 * const client = new DeviceClient({ servers: [{ host, port }], publicKey, deviceId: 'd1', userId: 'u1' });
 * client.on('push', (p) => { handle(p.content); if (p.ackModel === 'biz') client.ack(p.sessionId); });
 * await client.connect();
 * ```
 */
export class DeviceClient extends EventEmitter<DeviceClientEvents> implements LinkOwner {
  /** The device id sent at the handshake. */
  readonly deviceId: string;
  private readonly options: ResolvedDeviceClientOptions;
  private readonly wire: BinaryWire;
  private readonly session: DeviceSession<BinaryWireTypes, Link>;
  private serverIndex = 0;
  /** The allocator's last answer, and the next of its addresses to try (none left: ask again). */
  private allotted: ReadonlyArray<ServerAddress> = [];
  private allotIndex = 0;
  private source: LinkSource = 'servers';
  private lastAddress: ServerAddress | undefined;
  /** A session the server refused: never fast-connect it again, whatever the storage still says. */
  private rejectedSessionId: string | undefined;

  /** @throws TypeError when `servers` is empty, `deviceId` missing or the public key unreadable. */
  constructor(options: DeviceClientOptions) {
    super();
    const o = resolveDeviceClientOptions(options);
    this.options = o;
    this.deviceId = o.deviceId;
    this.wire = new BinaryWire(o.wire);
    this.session = new DeviceSession(this.wire, o.deviceId, o.profile, o.session, this.transport());
  }

  /** How the session opens, writes and closes TCP connections: one object per client. */
  private transport(): SessionTransport<BinaryWireTypes, Link> {
    return {
      open: () => this.open(),
      write: (link, bytes) => link.socket.write(bytes),
      discard: (link, _reason, handshaken) => {
        link.socket.destroy();
        // A server that never got us to a handshake is skipped next time; after a good session the
        // same server is tried first (fast connect also works on any node), and the allocator is
        // asked again (the load changed, the node may be going away).
        if (handshaken) this.allotted = [];
        else if (this.source === 'alloc') this.allotIndex++;
        else if (this.source === 'servers')
          this.serverIndex = (this.serverIndex + 1) % this.options.servers.length;
      },
      describe: (link) => link.describe(`the allocator ${this.options.alloc?.url}`),
      handshaken: (link, h) => this.onHandshake(link, h),
      fastConnectFailed: (s) => this.onFastConnectFailed(s),
      contentText: (content) => (content[0] === 0x7b ? content.toString('utf8') : undefined),
      // The session's events are a part of the client's (same names, same arguments).
      emit: this.safeEmit.bind(this) as SessionTransport<BinaryWireTypes, Link>['emit'],
    };
  }

  // -------------------------------------------------------------------------------------------
  // Public API
  // -------------------------------------------------------------------------------------------

  /** Where the client is. */
  get state(): DeviceClientState {
    return this.session.state;
  }

  /** Incremented for every new socket; callbacks of older sockets are ignored. */
  get connectionEpoch(): number {
    return this.session.connectionEpoch;
  }

  /** The server session id while handshaken. */
  get sessionId(): string | undefined {
    return this.session.ready ? this.session.protocol.sessionId : undefined;
  }

  /** The negotiated heartbeat (ms) while handshaken. */
  get negotiatedHeartbeat(): number | undefined {
    return this.session.ready ? this.session.protocol.negotiatedHeartbeat : undefined;
  }

  /** The user the server confirmed on this connection, if any. */
  get boundUserId(): string | undefined {
    return this.session.boundUserId;
  }

  /**
   * The address of the current (or last tried) connection; `{ host: '', port: 0 }` while only the
   * allocator has been asked so far.
   */
  get server(): ServerAddress {
    return (
      this.session.connection?.address ??
      this.lastAddress ??
      this.options.servers[this.serverIndex] ??
      NO_ADDRESS
    );
  }

  /**
   * Starts connecting (and keeps reconnecting while the disconnect reasons allow it, unless
   * `autoReconnect` is off). Resolves at the first handshake; rejects when {@link close} is called
   * first, or when a connection ends and the client will not come back by itself (auto-reconnect off,
   * or a reason that does not reconnect). Calling it while connected or connecting returns the same
   * progress; calling it after such an end starts over.
   */
  connect(): Promise<void> {
    return this.session.connect();
  }

  /** Closes the connection and stops reconnecting. Resolves once the socket is closed. */
  async close(): Promise<void> {
    const socket = this.session.connection?.socket;
    const closed =
      socket === undefined || socket.closed
        ? undefined
        : new Promise<void>((resolve) => socket.once('close', resolve));
    this.session.close();
    if (closed) await closed;
  }

  /**
   * Binds a user to this connection (BIND, mpush-wire §8) and remembers it: it is re-bound after every
   * handshake. Resolves on the server's OK; rejects with {@link ServerReplyError} on ERROR (the user is
   * then forgotten and the session ends with the connection: {@link Disconnect.AUTH_REFUSED}), or
   * {@link DeviceClientError} on timeout. Called while (re)connecting, it resolves with the bind that
   * follows the next handshake.
   * @param tags replaces the configured tags when given.
   * @param data replaces the configured `bindData` (the token slot) when given.
   */
  bindUser(userId: string, tags?: string | ReadonlyArray<string>, data?: string): Promise<void> {
    return this.session.bindUser(userId, tags, data);
  }

  /**
   * Unbinds the current user (UNBIND) and forgets it, so it is not re-bound. Resolves on OK, at once
   * when no user is set or the client is not connected (the server drops the binding with the
   * connection).
   */
  unbindUser(): Promise<void> {
    return this.session.unbindUser();
  }

  /** Acks a push by its sessionId (for `'biz'` pushes). False when not connected. */
  ack(sessionId: number): boolean {
    return this.session.ack(sessionId);
  }

  /**
   * Sends a device-originated PUSH. With `ack`, sets AUTO_ACK and resolves when the server's ACK
   * comes back (MPush acks such pushes); else resolves once written.
   */
  pushToServer(content: Buffer | string, options?: { ack?: boolean }): Promise<void> {
    const body = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
    return this.session.push(body, options?.ack === true);
  }

  /**
   * Has the server perform an HTTP request (MPush's HTTP_PROXY, mpush-wire §11) and resolves with the
   * response, whatever its status: the upstream's, or the server's own refusal (403 host not allowed,
   * 408 upstream timeout, 413, 429, 502, 504). A string body is sent as UTF-8. Rejects with
   * `MPUSH_ERR_TIMEOUT` when no answer came within `timeoutMs` (default `requestTimeoutMs`).
   *
   * ```ts
   * const res = await client.httpRequest({ url: 'http://api/users/1', headers: { accept: 'application/json' } });
   * if (res.status === 200) console.log(JSON.parse(res.body.toString()));
   * ```
   */
  httpRequest(request: HttpProxyRequest<Buffer | string>): Promise<HttpProxyResponse<Buffer>> {
    const body = request.body;
    const bytes = body === undefined ? EMPTY : typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    return this.session.httpRequest(request as HttpProxyRequest<Buffer>, bytes);
  }

  /** Writes a heartbeat byte now. False when there is no connection. */
  heartbeat(): boolean {
    return this.session.heartbeat();
  }

  /**
   * Writes a packet as given (tests, tools). With `encrypt`, its body is compressed/encrypted like any
   * other with the connection's current cipher. False when there is no connection.
   */
  sendPacket(packet: Packet, options?: { encrypt?: boolean }): boolean {
    if (this.session.connection === undefined) return false;
    return this.session.writeRaw(
      options?.encrypt
        ? this.wire.seal(packet.cmd, packet.sessionId, packet.body, packet.flags)
        : encodePacket(packet),
    );
  }

  /** Writes bytes as they are (tests: garbage, partial frames). False when there is no connection. */
  sendRaw(bytes: Buffer): boolean {
    return this.session.writeRaw(bytes);
  }

  /** A fresh packet sessionId, as the SDK numbers its requests (1, 2, ...). */
  nextId(): number {
    return this.session.protocol.nextId();
  }

  // -------------------------------------------------------------------------------------------
  // Socket events (LinkOwner)
  // -------------------------------------------------------------------------------------------

  /**
   * The next connection: to the next address of the allocator's last answer; else, with an
   * allocator, a link that connects once the allocator answered (to the `servers` when it fails);
   * else to the next of the `servers`.
   */
  private open(): Link {
    const alloc = this.options.alloc;
    const next = this.allotted[this.allotIndex];
    if (alloc === undefined || next !== undefined) {
      this.source = next === undefined ? 'servers' : 'alloc';
      return this.dialed(openLink(this, next ?? this.options.servers[this.serverIndex]!, this.options.tls));
    }
    const link = pendingLink(this, this.options.tls);
    this.source = 'pending';
    fetchServerList(alloc.url, alloc).then(
      (list) => {
        if (link.socket.destroyed) return; // discarded meanwhile (connect timeout, close)
        this.allotted = list;
        this.allotIndex = 0;
        this.source = 'alloc';
        this.dialed(dialLink(link, list[0]!));
      },
      (err: Error) => {
        if (link.socket.destroyed) return;
        const fallback = this.options.servers[this.serverIndex];
        // No fallback: the attempt fails with the allocator's error, and backoff follows.
        if (fallback === undefined) return void link.socket.destroy(err);
        this.emitError(err);
        this.source = 'servers';
        this.dialed(dialLink(link, fallback));
      },
    );
    return link;
  }

  private dialed(link: Link): Link {
    this.lastAddress = link.address;
    return link;
  }

  /** @internal */
  [kOnConnect](link: Link): void {
    if (!this.session.opened(link) || link.address === undefined) return;
    this.safeEmit('connected', link.address);
    void this.beginSession(link);
  }

  /** @internal */
  [kOnData](link: Link, chunk: Buffer): void {
    this.session.receive(link, chunk);
  }

  /** @internal */
  [kOnError](link: Link, err: Error): void {
    this.session.transportError(link, err);
  }

  /** @internal */
  [kOnClose](link: Link): void {
    this.session.transportClosed(link);
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
    this.session.start(link, stored !== undefined && this.canFastConnect(stored) ? stored : undefined);
  }

  private canFastConnect(s: StoredSession): boolean {
    if (s.deviceId !== this.deviceId || s.sessionId === this.rejectedSessionId) return false;
    if (s.expireTime <= Date.now()) {
      void this.clearSession();
      return false;
    }
    return s.sessionKey.length === 32 && s.iv.length === 32;
  }

  private onHandshake(link: Link, h: DeviceHandshake): void {
    const heartbeat = this.session.protocol.negotiatedHeartbeat;
    if (!h.fast && this.options.storage !== undefined && h.sessionId !== '') {
      this.saveSession({
        sessionId: h.sessionId,
        deviceId: this.deviceId,
        sessionKey: h.sessionKey!,
        iv: h.iv!,
        heartbeat,
        expireTime: h.expireTime,
        address: link.describe(''),
      });
    }
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

  private onFastConnectFailed(session: ResumeSession): void {
    this.rejectedSessionId = session.sessionId;
    void this.clearSession();
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
    if (event === 'error' && this.listenerCount('error') === 0) return;
    try {
      (this.emit as (event: K, ...args: DeviceClientEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      process.nextTick(rethrow, err);
    }
  }

  private emitError(err: unknown): void {
    this.safeEmit('error', err instanceof Error ? err : new Error(String(err)));
  }
}
