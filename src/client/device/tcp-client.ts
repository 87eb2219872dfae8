import type { KeyObject } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import {
  AesCipher,
  deflate,
  inflate,
  loadPublicKey,
  mixKey,
  randomKey,
  rsaEncrypt,
} from '../../crypto/index.js';
import {
  BindUserCodec,
  Command,
  ErrorCodec,
  encodePacket,
  FastConnectCodec,
  FastConnectOkCodec,
  Flags,
  FrameDecoder,
  type FrameHandler,
  HandshakeCodec,
  HandshakeOkCodec,
  HEARTBEAT_FRAME,
  KickCodec,
  OkCodec,
  type Packet,
} from '../../protocol/index.js';
import {
  backoffDelay,
  type ReconnectOptions,
  type ResolvedReconnectOptions,
  resolveReconnectOptions,
} from './backoff.js';
import { DeviceClientError, ServerReplyError } from './errors.js';
import { MemorySessionStorage, type SessionStorage, type StoredSession } from './session-storage.js';

/** One connection server address. */
export interface ServerAddress {
  host: string;
  port: number;
}

/** Options of {@link DeviceClient}. Only `servers`, `publicKey` and `deviceId` are required. */
export interface DeviceClientOptions {
  /** Connection servers; on a failed attempt the next one is tried, round robin. */
  servers: ReadonlyArray<ServerAddress>;
  /**
   * The server's RSA public key: base64 of the X.509 SubjectPublicKeyInfo DER (what MPush SDKs are
   * configured with), PEM, or a loaded key (share one `KeyObject` across many clients).
   */
  publicKey: string | KeyObject;
  deviceId: string;
  /** Decides the client type on the server (mpush-wire §8). Default `'android'`. */
  osName?: string;
  osVersion?: string;
  clientVersion?: string;
  /** When set, the user is bound after every handshake (as the Java SDK re-binds). */
  userId?: string;
  /** Bind tags, sent as one string (an array is joined with `,`). */
  tags?: string | ReadonlyArray<string>;
  /** The bind `data` slot (the Java SDK's alias): where a bind token goes. */
  bindData?: string;
  /** The maxHeartbeat asked at the handshake, in ms. Default 240 000 (the Java SDK's). */
  heartbeatMs?: number;
  /** The minHeartbeat sent at the handshake (MPush ignores it). Default: `heartbeatMs`. */
  minHeartbeatMs?: number;
  /** Reconnect after a lost connection. Default true. */
  autoReconnect?: boolean;
  reconnect?: ReconnectOptions;
  /**
   * Where the fast-connect session is kept. Default: in memory (fast connect across reconnects of
   * this process); `null` disables fast connect.
   */
  sessionStorage?: SessionStorage | null;
  /** Largest packet body accepted from the server. Default 1 MiB. */
  maxPacketSize?: number;
  /** Largest inflated body of a COMPRESS packet (decompression bombs). Default 4 MiB. */
  maxInflateBytes?: number;
  /** Bodies longer than this are zlib-compressed before encryption. Default 1024 (the Java SDK's). */
  compressThreshold?: number;
  /** TCP connect + handshake must finish within this. Default 10 000 ms. */
  connectTimeoutMs?: number;
  /** Bind, unbind and acked pushes fail after this. Default 10 000 ms. */
  requestTimeoutMs?: number;
}

/** How a push wants to be acknowledged (mpush-wire §9). */
export type AckModel = 'none' | 'auto' | 'biz';

export interface HandshakeEvent {
  sessionId: string;
  /** Negotiated heartbeat, ms. */
  heartbeat: number;
  /** When the session expires, epoch ms. */
  expireTime: number;
  /** True when the session was resumed with FAST_CONNECT. */
  fast: boolean;
}

export interface PushEvent {
  /** The content, decrypted and inflated. */
  content: Buffer;
  /** The packet's sessionId: pass it to {@link DeviceClient.ack} for a `'biz'` push. */
  sessionId: number;
  flags: number;
  /** `'auto'` pushes were already acked by the client; `'biz'` ones wait for `ack()`. */
  ackModel: AckModel;
}

export interface KickEvent {
  deviceId: string;
  userId: string;
}

export interface ServerErrorEvent {
  /** The command the error answers. */
  cmd: number;
  /** MPush error code (mpush-wire §4). */
  code: number;
  reason: string;
  data: string;
  sessionId: number;
}

export interface DisconnectedEvent {
  reason: string;
  error?: Error;
}

export interface ReconnectingEvent {
  /** 1 for the first retry after a success. */
  attempt: number;
  delayMs: number;
}

/** Events of {@link DeviceClient}, with their arguments. */
export type DeviceClientEvents = {
  /** TCP connected; the handshake follows. */
  connected: [ServerAddress];
  /** Handshake or fast connect done: the client is ready. */
  handshake: [HandshakeEvent];
  bind: [{ userId: string }];
  unbind: [{ userId: string }];
  push: [PushEvent];
  /**
   * Another device of the same type bound this user. The connection stays up, unbound; the user is
   * forgotten (not re-bound on reconnect) until `bindUser` is called again.
   */
  kick: [KickEvent];
  /** Every ERROR packet, also those that reject a request. */
  serverError: [ServerErrorEvent];
  /** A command this client does not handle (e.g. HTTP_PROXY replies). */
  packet: [Packet];
  disconnected: [DisconnectedEvent];
  reconnecting: [ReconnectingEvent];
  /** Emitted only when someone listens: the client never throws for want of a listener. */
  error: [Error];
};

/** Where the client is. */
export type DeviceClientState = 'idle' | 'connecting' | 'handshaking' | 'ready' | 'reconnecting' | 'closed';

interface Pending {
  cmd: number;
  userId: string;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

const kLink = Symbol('mpush.device.link');
const kOnConnect = Symbol('mpush.device.onConnect');
const kOnData = Symbol('mpush.device.onData');
const kOnError = Symbol('mpush.device.onError');
const kOnClose = Symbol('mpush.device.onClose');
const kOnPacket = Symbol('mpush.device.onPacket');
const kOnLinkTimer = Symbol('mpush.device.onLinkTimer');
const kOnReconnectTimer = Symbol('mpush.device.onReconnectTimer');
const kOnRequestTimeout = Symbol('mpush.device.onRequestTimeout');

type LinkedSocket = Socket & { [kLink]?: Link };

/** Timers never fire sooner than this (ms). */
const MIN_TICK = 5;

/**
 * One TCP connection and its per-connection state. Each socket gets one: a callback of an old
 * socket finds its old Link, which is no longer the client's current one, and is ignored
 * (the `connectionEpoch` guard of ioredis).
 */
class Link implements FrameHandler {
  readonly decoder: FrameDecoder;
  cipher: AesCipher | undefined;
  /** The keys of a full handshake in flight. */
  clientKey: Buffer | undefined;
  iv: Buffer | undefined;
  /** The session of a fast connect in flight. */
  fastSession: StoredSession | undefined;
  ready = false;
  sessionId = '';
  /** Negotiated heartbeat, ms. */
  heartbeat = 0;
  lastRead = 0;
  lastWrite = 0;
  /** Connect/handshake timeout before `ready`, heartbeat timer after. */
  timer: NodeJS.Timeout | undefined;
  closeReason: string | undefined;
  closeError: Error | undefined;

  constructor(
    readonly client: DeviceClient,
    readonly socket: LinkedSocket,
    readonly epoch: number,
    readonly address: ServerAddress,
    maxBodyLength: number,
  ) {
    this.decoder = new FrameDecoder(this, { maxBodyLength });
  }

  onPacket(packet: Packet): void {
    this.client[kOnPacket](this, packet);
  }

  onHeartbeat(): void {
    // Reads are timestamped per chunk in onData; an echoed 0xDF needs nothing more.
  }
}

// Socket listeners are module functions shared by every connection: no closures per connection.
function onSocketConnect(this: LinkedSocket): void {
  const link = this[kLink];
  if (link) link.client[kOnConnect](link);
}
function onSocketData(this: LinkedSocket, chunk: Buffer): void {
  const link = this[kLink];
  if (link) link.client[kOnData](link, chunk);
}
function onSocketError(this: LinkedSocket, err: Error): void {
  const link = this[kLink];
  if (link) link.client[kOnError](link, err);
}
function onSocketClose(this: LinkedSocket): void {
  const link = this[kLink];
  if (link) link.client[kOnClose](link);
}
function onLinkTimer(link: Link): void {
  link.client[kOnLinkTimer](link);
}
function onReconnectTimer(client: DeviceClient): void {
  client[kOnReconnectTimer]();
}
function onRequestTimeout(client: DeviceClient, id: number): void {
  client[kOnRequestTimeout](id);
}
function rethrow(err: unknown): void {
  throw err;
}
function noop(): void {}

/** The interval at which an idle connection writes a heartbeat: a margin before the server's timeout. */
function heartbeatInterval(heartbeat: number): number {
  return Math.max(MIN_TICK, heartbeat - Math.min(5000, Math.floor(heartbeat / 5)));
}

function normalizeTags(tags: string | ReadonlyArray<string> | undefined): string {
  if (tags === undefined) return '';
  return typeof tags === 'string' ? tags : tags.join(',');
}

/**
 * A device's long connection to an MPush (or mpush-ts) connection server over TCP, behaving like
 * MPush's Java SDK: RSA/AES handshake or fast connect, automatic re-bind, pushes with automatic or
 * application acks, heartbeats, and reconnection with backoff across the configured servers.
 *
 * ```ts
 * const client = new DeviceClient({ servers: [{ host, port }], publicKey, deviceId: 'd1', userId: 'u1' });
 * client.on('push', (p) => { handle(p.content); if (p.ackModel === 'biz') client.ack(p.sessionId); });
 * await client.connect();
 * ```
 */
export class DeviceClient extends EventEmitter<DeviceClientEvents> {
  readonly deviceId: string;
  private readonly servers: ReadonlyArray<ServerAddress>;
  private readonly publicKey: KeyObject;
  private readonly osName: string;
  private readonly osVersion: string;
  private readonly clientVersion: string;
  private readonly heartbeatMs: number;
  private readonly minHeartbeatMs: number;
  private readonly autoReconnect: boolean;
  private readonly reconnectOptions: ResolvedReconnectOptions;
  private readonly storage: SessionStorage | undefined;
  private readonly maxPacketSize: number;
  private readonly maxInflateBytes: number;
  private readonly compressThreshold: number;
  private readonly connectTimeoutMs: number;
  private readonly requestTimeoutMs: number;

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
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private readyWaiters: Waiter[] = [];
  private bindWaiters: Waiter[] = [];
  /** A session the server refused: never fast-connect it again, whatever the storage still says. */
  private rejectedSessionId: string | undefined;

  constructor(options: DeviceClientOptions) {
    super();
    if (options.servers.length === 0) throw new TypeError('DeviceClient needs at least one server');
    if (!options.deviceId) throw new TypeError('DeviceClient needs a deviceId');
    this.servers = options.servers.map((s) => ({ host: s.host, port: s.port }));
    this.publicKey =
      typeof options.publicKey === 'string' ? loadPublicKey(options.publicKey) : options.publicKey;
    this.deviceId = options.deviceId;
    this.osName = options.osName ?? 'android';
    this.osVersion = options.osVersion ?? '';
    this.clientVersion = options.clientVersion ?? '';
    this.userId = options.userId || undefined;
    this.tags = normalizeTags(options.tags);
    this.bindData = options.bindData ?? '';
    this.heartbeatMs = options.heartbeatMs ?? 240_000;
    this.minHeartbeatMs = options.minHeartbeatMs ?? this.heartbeatMs;
    this.autoReconnect = options.autoReconnect ?? true;
    this.reconnectOptions = resolveReconnectOptions(options.reconnect);
    this.storage =
      options.sessionStorage === null ? undefined : (options.sessionStorage ?? new MemorySessionStorage());
    this.maxPacketSize = options.maxPacketSize ?? 1024 * 1024;
    this.maxInflateBytes = options.maxInflateBytes ?? 4 * 1024 * 1024;
    this.compressThreshold = options.compressThreshold ?? 1024;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
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
    return this.link?.ready ? this.link.sessionId : undefined;
  }

  /** The negotiated heartbeat (ms) while handshaken. */
  get negotiatedHeartbeat(): number | undefined {
    return this.link?.ready ? this.link.heartbeat : undefined;
  }

  /** The user the server confirmed on this connection, if any. */
  get boundUserId(): string | undefined {
    return this.bound;
  }

  /** The address of the current (or last tried) connection. */
  get server(): ServerAddress {
    return this.link?.address ?? this.servers[this.serverIndex]!;
  }

  /**
   * Starts connecting (and keeps reconnecting, unless `autoReconnect` is off). Resolves at the
   * first handshake; rejects when {@link close} is called first, or, without auto-reconnect, when the
   * attempt fails. Calling it while connected or connecting returns the same progress.
   */
  connect(): Promise<void> {
    if (this.link?.ready) return Promise.resolve();
    const p = new Promise<void>((resolve, reject) => {
      this.readyWaiters.push({ resolve, reject });
    });
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
    this.settleWaiters('readyWaiters', closedError);
    this.settleWaiters('bindWaiters', closedError);
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
    if (tags !== undefined) this.tags = normalizeTags(tags);
    if (data !== undefined) this.bindData = data;
    const link = this.link;
    if (link?.ready) return this.sendBind(link);
    if (this.stopped) {
      return Promise.reject(
        new DeviceClientError('MPUSH_ERR_NOT_CONNECTED', 'not connected: call connect() first'),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        this.bindWaiters = this.bindWaiters.filter((w) => w !== waiter);
        reject(
          new DeviceClientError('MPUSH_ERR_TIMEOUT', 'no handshake and bind within the request timeout'),
        );
      }, this.requestTimeoutMs);
      this.bindWaiters.push(waiter);
    });
  }

  /**
   * Unbinds the current user (UNBIND) and forgets it, so it is not re-bound. Resolves on OK, at once
   * when no user is set or the client is not connected (the server drops the binding with the
   * connection).
   */
  unbindUser(): Promise<void> {
    const userId = this.userId ?? this.bound;
    this.userId = undefined;
    const link = this.link;
    if (userId === undefined || !link?.ready) {
      this.bound = undefined;
      return Promise.resolve();
    }
    const body = BindUserCodec.encode({ userId, data: this.bindData, tags: this.tags });
    return this.request(link, Command.UNBIND, body, userId, 0);
  }

  /** Acks a push by its sessionId (for `'biz'` pushes). False when not connected. */
  ack(sessionId: number): boolean {
    const link = this.link;
    if (!link?.ready) return false;
    this.writeAck(link, sessionId);
    return true;
  }

  /**
   * Sends a device-originated PUSH. With `ack`, sets AUTO_ACK and resolves when the server's ACK
   * comes back (MPush acks such pushes); else resolves once written.
   */
  pushToServer(content: Buffer | string, options?: { ack?: boolean }): Promise<void> {
    const link = this.link;
    if (!link?.ready)
      return Promise.reject(new DeviceClientError('MPUSH_ERR_NOT_CONNECTED', 'not connected'));
    const body = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
    if (options?.ack) return this.request(link, Command.PUSH, body, '', Flags.AUTO_ACK);
    this.sendBody(link, Command.PUSH, this.nextId(), body, 0);
    return Promise.resolve();
  }

  /** Writes a heartbeat byte now. False when there is no connection. */
  heartbeat(): boolean {
    const link = this.link;
    if (link === undefined) return false;
    this.write(link, HEARTBEAT_FRAME);
    return true;
  }

  /**
   * Writes a packet as given (tests, tools). With `encrypt`, its body is compressed/encrypted like any
   * other with the connection's current cipher. False when there is no connection.
   */
  sendPacket(packet: Packet, options?: { encrypt?: boolean }): boolean {
    const link = this.link;
    if (link === undefined) return false;
    if (options?.encrypt) this.sendBody(link, packet.cmd, packet.sessionId, packet.body, packet.flags);
    else this.write(link, encodePacket(packet));
    return true;
  }

  /** Writes bytes as they are (tests: garbage, partial frames). False when there is no connection. */
  sendRaw(bytes: Buffer): boolean {
    const link = this.link;
    if (link === undefined) return false;
    this.write(link, bytes);
    return true;
  }

  /** A fresh packet sessionId, as the SDK numbers its requests (1, 2, ...). */
  nextId(): number {
    this.seq = this.seq >= 0x7fffffff ? 1 : this.seq + 1;
    return this.seq;
  }

  // -------------------------------------------------------------------------------------------
  // Connection life cycle
  // -------------------------------------------------------------------------------------------

  private openLink(): void {
    const address = this.servers[this.serverIndex]!;
    const epoch = ++this.epoch;
    const socket: LinkedSocket = netConnect({ host: address.host, port: address.port });
    socket.setNoDelay(true);
    const link = new Link(this, socket, epoch, address, this.maxPacketSize);
    socket[kLink] = link;
    socket.on('connect', onSocketConnect);
    socket.on('data', onSocketData);
    socket.on('error', onSocketError);
    socket.on('close', onSocketClose);
    this.link = link;
    this.clientState = 'connecting';
    link.timer = setTimeout(onLinkTimer, this.connectTimeoutMs, link);
  }

  /** @internal */
  [kOnConnect](link: Link): void {
    if (link !== this.link) return;
    this.clientState = 'handshaking';
    link.lastRead = link.lastWrite = Date.now();
    this.safeEmit('connected', link.address);
    void this.beginSession(link);
  }

  private async beginSession(link: Link): Promise<void> {
    let stored: StoredSession | undefined;
    if (this.storage !== undefined) {
      try {
        stored = await this.storage.load();
      } catch (err) {
        this.emitError(err);
      }
    }
    if (link !== this.link) return;
    try {
      if (stored !== undefined && this.canFastConnect(stored)) this.sendFastConnect(link, stored);
      else this.sendHandshake(link);
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

  /** mpush-wire §6: FAST_CONNECT goes out raw, the connection has no cipher yet. */
  private sendFastConnect(link: Link, s: StoredSession): void {
    link.fastSession = s;
    const body = FastConnectCodec.encode({
      sessionId: s.sessionId,
      deviceId: this.deviceId,
      minHeartbeat: this.minHeartbeatMs,
      maxHeartbeat: this.heartbeatMs,
    });
    this.write(link, encodePacket({ cmd: Command.FAST_CONNECT, flags: 0, sessionId: this.nextId(), body }));
  }

  /** mpush-wire §5 steps 2 and 4. */
  private sendHandshake(link: Link): void {
    const clientKey = randomKey();
    const iv = randomKey();
    const plain = HandshakeCodec.encode({
      deviceId: this.deviceId,
      osName: this.osName,
      osVersion: this.osVersion,
      clientVersion: this.clientVersion,
      iv,
      clientKey,
      minHeartbeat: this.minHeartbeatMs,
      maxHeartbeat: this.heartbeatMs,
      // The Java SDK never sets it; byte-for-byte the same handshake as MPush's own clients.
      timestamp: 0,
    });
    const body = rsaEncrypt(this.publicKey, plain);
    this.write(
      link,
      encodePacket({ cmd: Command.HANDSHAKE, flags: Flags.CRYPTO, sessionId: this.nextId(), body }),
    );
    // The HandshakeOk comes back under AES(clientKey, iv).
    link.cipher = new AesCipher(clientKey, iv);
    link.clientKey = clientKey;
    link.iv = iv;
  }

  private onReady(link: Link, info: HandshakeEvent): void {
    link.ready = true;
    link.sessionId = info.sessionId;
    link.heartbeat = info.heartbeat > 0 ? info.heartbeat : this.heartbeatMs;
    this.clientState = 'ready';
    this.attempt = 0;
    clearTimeout(link.timer);
    this.scheduleLinkTimer(link, Date.now());
    // The Java SDK re-binds on every handshake: a new connection is unbound on the server.
    if (this.userId !== undefined) this.autoBind(link);
    this.settleWaiters('readyWaiters');
    this.safeEmit('handshake', info);
  }

  private autoBind(link: Link): void {
    this.sendBind(link).then(
      () => this.settleWaiters('bindWaiters'),
      (err: Error) => {
        if (this.bindWaiters.length > 0) this.settleWaiters('bindWaiters', err);
        else this.emitError(err);
      },
    );
  }

  private scheduleLinkTimer(link: Link, now: number): void {
    const due = Math.min(
      link.lastWrite + heartbeatInterval(link.heartbeat),
      link.lastRead + 2 * link.heartbeat,
    );
    link.timer = setTimeout(onLinkTimer, Math.max(MIN_TICK, due - now), link);
    // The socket keeps the process alive; the heartbeat alone must not.
    link.timer.unref();
  }

  /** @internal */
  [kOnLinkTimer](link: Link): void {
    if (link !== this.link) return;
    link.timer = undefined;
    if (!link.ready) {
      this.failLink(
        link,
        new DeviceClientError(
          'MPUSH_ERR_CONNECT_TIMEOUT',
          `no handshake with ${link.address.host}:${link.address.port} within ${this.connectTimeoutMs} ms`,
        ),
      );
      return;
    }
    const now = Date.now();
    if (now - link.lastRead >= 2 * link.heartbeat) {
      // mpush-wire §7: the SDK gives up after two read timeouts of its own.
      this.failLink(
        link,
        new DeviceClientError('MPUSH_ERR_HEARTBEAT_TIMEOUT', `nothing read for ${now - link.lastRead} ms`),
      );
      return;
    }
    if (now - link.lastWrite >= heartbeatInterval(link.heartbeat) - MIN_TICK)
      this.write(link, HEARTBEAT_FRAME);
    this.scheduleLinkTimer(link, now);
  }

  /** @internal */
  [kOnData](link: Link, chunk: Buffer): void {
    if (link !== this.link) return;
    link.lastRead = Date.now();
    try {
      link.decoder.push(chunk);
    } catch (err) {
      this.failLink(
        link,
        new DeviceClientError('MPUSH_ERR_PROTOCOL', `bad frame from the server: ${err}`, { cause: err }),
      );
    }
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
    clearTimeout(link.timer);
    link.timer = undefined;
    link.socket.destroy();
    const wasReady = link.ready;
    link.ready = false;
    link.cipher = undefined;
    this.bound = undefined;
    this.clientState = this.stopped ? 'closed' : 'idle';
    const reason = link.closeReason ?? 'connection closed';
    const pendingError = this.stopped
      ? new DeviceClientError('MPUSH_ERR_CLOSED', 'the client was closed')
      : new DeviceClientError('MPUSH_ERR_DISCONNECTED', `connection lost: ${reason}`, {
          cause: link.closeError,
        });
    this.rejectAllPending(pendingError);
    // A server that never got us to a handshake is skipped next time; after a good session the same
    // server is tried first (fast connect also works on any node).
    if (!wasReady) this.serverIndex = (this.serverIndex + 1) % this.servers.length;
    this.safeEmit('disconnected', link.closeError ? { reason, error: link.closeError } : { reason });
    if (this.stopped || this.link !== undefined) return; // a listener may have reconnected or closed us
    if (this.autoReconnect) {
      this.scheduleReconnect();
    } else {
      this.settleWaiters(
        'readyWaiters',
        link.closeError ?? new DeviceClientError('MPUSH_ERR_DISCONNECTED', reason),
      );
      this.settleWaiters('bindWaiters', new DeviceClientError('MPUSH_ERR_DISCONNECTED', reason));
    }
  }

  private scheduleReconnect(): void {
    this.attempt++;
    const delayMs = backoffDelay(this.attempt, this.reconnectOptions);
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
  // Incoming packets
  // -------------------------------------------------------------------------------------------

  /** @internal */
  [kOnPacket](link: Link, p: Packet): void {
    // Packets after a failure in the same chunk belong to a dropped connection.
    if (link !== this.link) return;
    try {
      switch (p.cmd) {
        case Command.PUSH:
          this.onPush(link, p);
          break;
        case Command.OK:
          this.onOk(link, p);
          break;
        case Command.ERROR:
          this.onServerError(link, p);
          break;
        case Command.ACK:
          this.onAck(p);
          break;
        case Command.KICK:
          this.onKick(link, p);
          break;
        case Command.HANDSHAKE:
          this.onHandshakeOk(link, p);
          break;
        case Command.FAST_CONNECT:
          this.onFastConnectOk(link, p);
          break;
        default:
          this.safeEmit('packet', p);
      }
    } catch (err) {
      // Listeners run through safeEmit and never throw here: this is bad input from the server.
      const code = link.ready ? 'MPUSH_ERR_PROTOCOL' : 'MPUSH_ERR_HANDSHAKE';
      this.failLink(
        link,
        new DeviceClientError(code, `cannot read command ${p.cmd} from the server: ${err}`, { cause: err }),
      );
    }
  }

  /** Decrypts (CRYPTO) then inflates (COMPRESS, bounded): mpush-wire §5. */
  private openBody(link: Link, p: Packet): Buffer {
    let body = p.body;
    if ((p.flags & Flags.CRYPTO) !== 0) {
      if (link.cipher === undefined) throw new Error('encrypted packet before any key was agreed');
      body = link.cipher.decrypt(body);
    }
    if ((p.flags & Flags.COMPRESS) !== 0) body = inflate(body, this.maxInflateBytes);
    return body;
  }

  private onHandshakeOk(link: Link, p: Packet): void {
    const clientKey = link.clientKey;
    const iv = link.iv;
    if (link.ready || clientKey === undefined || iv === undefined)
      throw new Error('unexpected HANDSHAKE reply');
    const m = HandshakeOkCodec.decode(this.openBody(link, p));
    const sessionKey = mixKey(clientKey, m.serverKey);
    link.cipher = new AesCipher(sessionKey, iv);
    link.clientKey = undefined;
    link.iv = undefined;
    const heartbeat = m.heartbeat > 0 ? m.heartbeat : this.heartbeatMs;
    if (this.storage !== undefined && m.sessionId !== '') {
      this.saveSession({
        sessionId: m.sessionId,
        deviceId: this.deviceId,
        sessionKey: sessionKey.toString('hex'),
        iv: iv.toString('hex'),
        heartbeat,
        expireTime: m.expireTime,
        address: `${link.address.host}:${link.address.port}`,
      });
    }
    this.onReady(link, { sessionId: m.sessionId, heartbeat, expireTime: m.expireTime, fast: false });
  }

  private onFastConnectOk(link: Link, p: Packet): void {
    const s = link.fastSession;
    if (link.ready || s === undefined) throw new Error('unexpected FAST_CONNECT reply');
    const m = FastConnectOkCodec.decode(this.openBody(link, p));
    link.fastSession = undefined;
    link.cipher = new AesCipher(Buffer.from(s.sessionKey, 'hex'), Buffer.from(s.iv, 'hex'));
    this.onReady(link, {
      sessionId: s.sessionId,
      heartbeat: m.heartbeat,
      expireTime: s.expireTime,
      fast: true,
    });
  }

  private onServerError(link: Link, p: Packet): void {
    const m = ErrorCodec.decode(this.openBody(link, p));
    const event: ServerErrorEvent = {
      cmd: m.cmd,
      code: m.code,
      reason: m.reason,
      data: m.data,
      sessionId: p.sessionId,
    };
    if (!link.ready && m.cmd === Command.FAST_CONNECT && link.fastSession !== undefined) {
      // mpush-wire §6: the session is gone (103) or not ours (104): forget it, full handshake.
      this.rejectedSessionId = link.fastSession.sessionId;
      link.fastSession = undefined;
      void this.clearSession();
      this.safeEmit('serverError', event);
      if (link === this.link) this.sendHandshake(link);
      return;
    }
    if (!link.ready && m.cmd === Command.HANDSHAKE) {
      this.safeEmit('serverError', event);
      this.failLink(
        link,
        new DeviceClientError('MPUSH_ERR_HANDSHAKE', `handshake refused: ${m.code} ${m.reason}`, {
          cause: new ServerReplyError(m.cmd, m.code, m.reason, m.data),
        }),
      );
      return;
    }
    const pending = this.takePending(p.sessionId);
    this.safeEmit('serverError', event);
    pending?.reject(new ServerReplyError(m.cmd, m.code, m.reason, m.data));
  }

  private onOk(link: Link, p: Packet): void {
    const m = OkCodec.decode(this.openBody(link, p));
    const pending = this.pending.get(p.sessionId);
    if (pending === undefined || pending.cmd !== m.cmd) return;
    this.takePending(p.sessionId);
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

  private onAck(p: Packet): void {
    const pending = this.pending.get(p.sessionId);
    if (pending === undefined || pending.cmd !== Command.PUSH) return;
    this.takePending(p.sessionId);
    pending.resolve();
  }

  private onPush(link: Link, p: Packet): void {
    const content = this.openBody(link, p);
    const flags = p.flags;
    const ackModel: AckModel =
      (flags & Flags.AUTO_ACK) !== 0 ? 'auto' : (flags & Flags.BIZ_ACK) !== 0 ? 'biz' : 'none';
    // mpush-wire §9: with AUTO_ACK the SDK acks on receipt, before the app sees the push.
    if (ackModel === 'auto') this.writeAck(link, p.sessionId);
    this.safeEmit('push', { content, sessionId: p.sessionId, flags, ackModel });
  }

  private onKick(link: Link, p: Packet): void {
    const m = KickCodec.decode(this.openBody(link, p));
    // mpush-wire §12: the connection stays up, unbound. Forgetting the user keeps a reconnect from
    // binding it again and kicking the other device back, in a loop.
    if (m.userId === '' || m.userId === this.bound) this.bound = undefined;
    if (m.userId === '' || m.userId === this.userId) this.userId = undefined;
    this.safeEmit('kick', { deviceId: m.deviceId, userId: m.userId });
  }

  // -------------------------------------------------------------------------------------------
  // Outgoing
  // -------------------------------------------------------------------------------------------

  private sendBind(link: Link): Promise<void> {
    const userId = this.userId!;
    const body = BindUserCodec.encode({ userId, data: this.bindData, tags: this.tags });
    return this.request(link, Command.BIND, body, userId, 0);
  }

  private request(link: Link, cmd: number, body: Buffer, userId: string, flags: number): Promise<void> {
    const id = this.nextId();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(onRequestTimeout, this.requestTimeoutMs, this, id);
      this.pending.set(id, { cmd, userId, resolve, reject, timer });
      this.sendBody(link, cmd, id, body, flags);
    });
  }

  /** @internal */
  [kOnRequestTimeout](id: number): void {
    const pending = this.pending.get(id);
    if (pending === undefined) return;
    this.pending.delete(id);
    pending.reject(
      new DeviceClientError('MPUSH_ERR_TIMEOUT', `no reply to command ${pending.cmd} (sessionId ${id})`),
    );
  }

  private takePending(id: number): Pending | undefined {
    const pending = this.pending.get(id);
    if (pending === undefined) return undefined;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    return pending;
  }

  private rejectAllPending(err: Error): void {
    if (this.pending.size === 0) return;
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const pending of all) {
      clearTimeout(pending.timer);
      pending.reject(err);
    }
  }

  /** The Java SDK's body pipeline: compress past the threshold, then encrypt with the current cipher. */
  private sendBody(link: Link, cmd: number, sessionId: number, plain: Buffer, flags: number): void {
    let body = plain;
    if (body.length > this.compressThreshold) {
      body = deflate(body);
      flags |= Flags.COMPRESS;
    }
    if (link.cipher !== undefined) {
      body = link.cipher.encrypt(body);
      flags |= Flags.CRYPTO;
    }
    this.write(link, encodePacket({ cmd, flags, sessionId, body }));
  }

  /** ACK is sent raw, with the push's sessionId (mpush-wire §5, §9). */
  private writeAck(link: Link, sessionId: number): void {
    this.write(link, encodePacket({ cmd: Command.ACK, flags: 0, sessionId, body: EMPTY }));
  }

  /** The one place that writes to the socket. */
  private write(link: Link, bytes: Buffer): void {
    link.lastWrite = Date.now();
    link.socket.write(bytes);
  }

  // -------------------------------------------------------------------------------------------
  // Helpers
  // -------------------------------------------------------------------------------------------

  private saveSession(s: StoredSession): void {
    this.rejectedSessionId = undefined;
    this.storage?.save(s).catch((err: unknown) => this.emitError(err));
  }

  private async clearSession(): Promise<void> {
    try {
      await this.storage?.clear();
    } catch (err) {
      this.emitError(err);
    }
  }

  private settleWaiters(which: 'readyWaiters' | 'bindWaiters', err?: Error): void {
    const waiters = this[which];
    if (waiters.length === 0) return;
    this[which] = [];
    for (const w of waiters) {
      if (err === undefined) w.resolve();
      else w.reject(err);
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

const EMPTY = Buffer.alloc(0);
