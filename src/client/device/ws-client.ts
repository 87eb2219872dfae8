// The WebSocket JSON device client (mpush-wire §10). It runs in browsers as well as in Node: no Node
// imports here or in what it imports (the protocol's command and JSON files are plain TypeScript).

import { Command } from '../../protocol/command.js';
import { encodeJsonPacket, type JsonPacket } from '../../protocol/json-packet.js';
import {
  backoffDelay,
  type ReconnectOptions,
  type ResolvedReconnectOptions,
  resolveReconnectOptions,
} from './backoff.js';
import {
  type AckModel,
  type DeviceHandshake,
  type DeviceHost,
  type DeviceProfile,
  DeviceProtocol,
  type DevicePush,
  joinTags,
  type KickEvent,
  type OkEvent,
  type ServerErrorEvent,
} from './device-protocol.js';
import { TinyEmitter } from './emitter.js';
import { DeviceClientError, ServerReplyError } from './errors.js';
import { JsonWire, type JsonWireTypes } from './json-wire.js';
import { PendingRequests, Waiters } from './requests.js';

/**
 * What the client needs of a WebSocket: the browser's `WebSocket` and the `ws` package's both fit.
 * Handlers are typed loosely (`never` parameters) so either implementation's event types are accepted.
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: never) => void) | null;
  onmessage: ((event: never) => void) | null;
  onclose: ((event: never) => void) | null;
  onerror: ((event: never) => void) | null;
}

export type WebSocketConstructorLike = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** Options of {@link WsDeviceClient}. */
export interface WsDeviceClientOptions {
  /** `ws://host:port/path` or `wss://...` of the server's WebSocket endpoint. */
  url: string;
  deviceId: string;
  /** Decides the client type on the server (mpush-wire §8). Default `'web'`. */
  osName?: string;
  osVersion?: string;
  clientVersion?: string;
  /** When set, the user is bound after every handshake. */
  userId?: string;
  /** Bind tags, one string (an array is joined with `,`). */
  tags?: string | ReadonlyArray<string>;
  /** The bind `data` slot: where a bind token goes. */
  bindData?: string;
  /** The WebSocket implementation. Default `globalThis.WebSocket`; in Node pass `ws`'s `WebSocket`. */
  WebSocket?: WebSocketConstructorLike;
  protocols?: string | string[];
  /** Reconnect after a lost connection. Default true. */
  autoReconnect?: boolean;
  reconnect?: ReconnectOptions;
  /** Opening + handshake must finish within this. Default 10 000 ms. */
  connectTimeoutMs?: number;
  /** Bind and unbind fail after this. Default 10 000 ms. */
  requestTimeoutMs?: number;
}

export type WsAckModel = AckModel;

export interface WsHandshakeEvent {
  /** As the server sent them; MPush's web handshake reply may carry none of these. */
  sessionId: string;
  heartbeat: number;
  expireTime: number;
}

export type WsPushEvent = DevicePush<string>;

export type WsServerErrorEvent = ServerErrorEvent;

/** Events of {@link WsDeviceClient}, with their arguments. */
export type WsDeviceClientEvents = {
  connected: [];
  handshake: [WsHandshakeEvent];
  bind: [{ userId: string }];
  unbind: [{ userId: string }];
  push: [WsPushEvent];
  /** Another device of the same type bound this user; the user is forgotten (see DeviceClient). */
  kick: [{ deviceId: string; userId: string }];
  serverError: [WsServerErrorEvent];
  /** A command this client does not handle. */
  packet: [JsonPacket];
  disconnected: [{ reason: string; code?: number }];
  reconnecting: [{ attempt: number; delayMs: number }];
  /** Emitted only when someone listens. */
  error: [Error];
};

export type WsDeviceClientState = 'idle' | 'connecting' | 'handshaking' | 'ready' | 'reconnecting' | 'closed';

const OPEN = 1;
const CLOSED = 3;

/**
 * A device (typically a browser page) speaking MPush's WebSocket JSON protocol: handshake, bind,
 * pushes with acks, kicks; reconnects with backoff and re-binds after every handshake. The protocol is
 * a {@link DeviceProtocol} over a {@link JsonWire}, reset for each connection.
 *
 * ```ts
 * import WebSocket from 'ws'; // Node only; browsers have their own
 * const client = new WsDeviceClient({ url, deviceId: 'web-1', userId: 'u1', WebSocket });
 * client.on('push', (p) => console.log(p.content));
 * await client.connect();
 * ```
 */
export class WsDeviceClient extends TinyEmitter<WsDeviceClientEvents> {
  readonly deviceId: string;
  private readonly url: string;
  private readonly WebSocketImpl: WebSocketConstructorLike;
  private readonly protocols: string | string[] | undefined;
  private readonly autoReconnect: boolean;
  private readonly reconnectOptions: ResolvedReconnectOptions;
  private readonly connectTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly protocol: DeviceProtocol<JsonWireTypes>;

  private userId: string | undefined;
  private tags: string;
  private bindData: string;
  private bound: string | undefined;

  private ws: WebSocketLike | undefined;
  private clientState: WsDeviceClientState = 'idle';
  private stopped = true;
  private attempt = 0;
  private connectTimer: ReturnType<typeof setTimeout> | undefined;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly requests: PendingRequests;
  private readonly readyWaiters = new Waiters();
  private readonly bindWaiters = new Waiters();
  private closeWaiters: Array<() => void> = [];

  constructor(options: WsDeviceClientOptions) {
    super();
    if (!options.deviceId) throw new TypeError('WsDeviceClient needs a deviceId');
    const impl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructorLike }).WebSocket;
    if (impl === undefined) {
      throw new TypeError(
        'no WebSocket implementation: pass the `WebSocket` option (in Node: the ws package)',
      );
    }
    this.url = options.url;
    this.deviceId = options.deviceId;
    this.userId = options.userId || undefined;
    this.tags = joinTags(options.tags);
    this.bindData = options.bindData ?? '';
    this.WebSocketImpl = impl;
    this.protocols = options.protocols;
    this.autoReconnect = options.autoReconnect ?? true;
    this.reconnectOptions = resolveReconnectOptions(options.reconnect);
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.requests = new PendingRequests(this.requestTimeoutMs);
    const profile: DeviceProfile = {
      osName: options.osName ?? 'web',
      osVersion: options.osVersion ?? '',
      clientVersion: options.clientVersion ?? '',
      // The JSON handshake carries no heartbeat (mpush-wire §10).
      minHeartbeat: 0,
      maxHeartbeat: 0,
    };
    this.protocol = new DeviceProtocol(new JsonWire(), this.protocolHost(), this.deviceId, profile);
  }

  /** Where the protocol's frames and events go: the current socket, this client. */
  private protocolHost(): DeviceHost<JsonWireTypes> {
    return {
      write: (text) => {
        const ws = this.ws;
        if (ws !== undefined && ws.readyState === OPEN) ws.send(text);
      },
      onHandshake: (h) => this.onHandshake(h),
      onError: (err, fatal) => this.onProtocolError(err, fatal),
      onServerError: (e) => this.onServerError(e),
      onOk: (r) => this.onOk(r),
      onPush: (p) => this.emit('push', p),
      onKick: (k) => this.onKick(k),
      onPacket: (p) => this.emit('packet', p),
    };
  }

  get state(): WsDeviceClientState {
    return this.clientState;
  }

  /** The user the server confirmed on this connection, if any. */
  get boundUserId(): string | undefined {
    return this.bound;
  }

  /** Connects; resolves at the first handshake (see DeviceClient.connect for the rules). */
  connect(): Promise<void> {
    if (this.protocol.ready) return Promise.resolve();
    const p = this.readyWaiters.add();
    p.catch(() => undefined);
    this.stopped = false;
    if (this.ws === undefined && this.reconnectTimer === undefined) {
      this.attempt = 0;
      this.open();
    }
    return p;
  }

  /** Closes and stops reconnecting; resolves once the socket is closed. */
  close(): Promise<void> {
    this.stopped = true;
    if (this.reconnectTimer !== undefined) {
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = undefined;
    }
    const closedError = new DeviceClientError('MPUSH_ERR_CLOSED', 'the client was closed');
    this.readyWaiters.settle(closedError);
    this.bindWaiters.settle(closedError);
    const ws = this.ws;
    if (ws === undefined || ws.readyState === CLOSED) {
      if (ws !== undefined) this.drop(ws, 'closed by the client');
      this.clientState = 'closed';
      return Promise.resolve();
    }
    const closed = new Promise<void>((resolve) => this.closeWaiters.push(resolve));
    try {
      ws.close(1000, 'client closed');
    } catch {
      // Already closing.
    }
    this.drop(ws, 'closed by the client');
    return closed;
  }

  /** Binds a user (and re-binds it after every handshake); resolves on OK, rejects on ERROR/timeout. */
  bindUser(userId: string, tags?: string | ReadonlyArray<string>, data?: string): Promise<void> {
    if (!userId) return Promise.reject(new TypeError('bindUser needs a userId'));
    this.userId = userId;
    if (tags !== undefined) this.tags = joinTags(tags);
    if (data !== undefined) this.bindData = data;
    if (this.protocol.ready) return this.request(Command.BIND, userId);
    if (this.stopped) {
      return Promise.reject(
        new DeviceClientError('MPUSH_ERR_NOT_CONNECTED', 'not connected: call connect() first'),
      );
    }
    // Connecting: settled by the bind that follows the next handshake.
    return this.bindWaiters.addWithTimeout(
      this.requestTimeoutMs,
      'no handshake and bind within the request timeout',
    );
  }

  /** Unbinds the current user and forgets it. Resolves at once when there is none or no connection. */
  unbindUser(): Promise<void> {
    const userId = this.userId ?? this.bound;
    this.userId = undefined;
    if (userId === undefined || !this.protocol.ready) {
      this.bound = undefined;
      return Promise.resolve();
    }
    return this.request(Command.UNBIND, userId);
  }

  /** Acks a push by its sessionId. False when not connected. */
  ack(sessionId: number): boolean {
    if (!this.protocol.ready || !this.isOpen()) return false;
    this.protocol.ack(sessionId);
    return true;
  }

  /** Sends one JSON packet as given (tests, tools). False when the socket is not open. */
  sendPacket(cmd: number, sessionId: number, body: Record<string, unknown>): boolean {
    if (!this.isOpen()) return false;
    this.protocol.write(encodeJsonPacket(cmd, sessionId, body));
    return true;
  }

  private isOpen(): boolean {
    return this.ws !== undefined && this.ws.readyState === OPEN;
  }

  private open(): void {
    this.clientState = 'connecting';
    let ws: WebSocketLike;
    try {
      ws = new this.WebSocketImpl(this.url, this.protocols);
    } catch (err) {
      this.emitError(err);
      this.afterDrop(`cannot open ${this.url}: ${err}`);
      return;
    }
    this.ws = ws;
    // Closures per socket are fine here: a page holds one connection. Each checks it is still current.
    const onOpen = (): void => {
      if (ws !== this.ws) return;
      this.clientState = 'handshaking';
      this.emit('connected');
      this.protocol.start();
    };
    const onMessage = (event: { data?: unknown }): void => {
      if (ws !== this.ws) return;
      if (typeof event.data !== 'string') {
        this.emitError(new DeviceClientError('MPUSH_ERR_PROTOCOL', 'binary frame on the JSON protocol'));
        return;
      }
      this.protocol.receive(event.data);
    };
    const onClose = (event: { code?: number; reason?: string }): void => {
      for (const resolve of this.closeWaiters.splice(0)) resolve();
      if (ws !== this.ws) return;
      const reason = event.reason ? `${event.reason}` : 'connection closed by the server';
      this.drop(ws, reason, event.code);
    };
    const onError = (event: { message?: string; error?: unknown }): void => {
      if (ws !== this.ws) return;
      const err = event.error instanceof Error ? event.error : new Error(event.message ?? 'WebSocket error');
      this.emitError(err);
    };
    ws.onopen = onOpen;
    ws.onmessage = onMessage;
    ws.onclose = onClose;
    ws.onerror = onError;
    this.connectTimer = setTimeout(() => {
      if (ws !== this.ws || this.protocol.ready) return;
      this.emitError(
        new DeviceClientError('MPUSH_ERR_CONNECT_TIMEOUT', `no handshake within ${this.connectTimeoutMs} ms`),
      );
      try {
        ws.close(4000, 'handshake timeout');
      } catch {
        // Not open yet.
      }
      this.drop(ws, 'handshake timeout');
    }, this.connectTimeoutMs);
  }

  /** Forgets the socket and, unless stopped, schedules the next one. */
  private drop(ws: WebSocketLike, reason: string, code?: number): void {
    if (ws !== this.ws) return;
    // The handlers stay: each ignores a socket that is no longer current, onclose settles close(),
    // and `ws` throws an 'error' that has no listener.
    this.ws = undefined;
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    this.protocol.reset();
    this.bound = undefined;
    this.requests.rejectAll(
      this.stopped
        ? new DeviceClientError('MPUSH_ERR_CLOSED', 'the client was closed')
        : new DeviceClientError('MPUSH_ERR_DISCONNECTED', `connection lost: ${reason}`),
    );
    this.emit('disconnected', code === undefined ? { reason } : { reason, code });
    this.afterDrop(reason);
  }

  private afterDrop(reason: string): void {
    this.clientState = this.stopped ? 'closed' : 'idle';
    if (this.stopped || this.ws !== undefined) return;
    if (this.autoReconnect) {
      this.attempt++;
      const delayMs = backoffDelay(this.attempt, this.reconnectOptions);
      this.clientState = 'reconnecting';
      this.reconnectTimer = setTimeout(() => {
        this.reconnectTimer = undefined;
        if (!this.stopped && this.ws === undefined) this.open();
      }, delayMs);
      this.emit('reconnecting', { attempt: this.attempt, delayMs });
    } else {
      this.readyWaiters.settle(new DeviceClientError('MPUSH_ERR_DISCONNECTED', reason));
      this.bindWaiters.settle(new DeviceClientError('MPUSH_ERR_DISCONNECTED', reason));
    }
  }

  // -------------------------------------------------------------------------------------------
  // Protocol events
  // -------------------------------------------------------------------------------------------

  private onHandshake(h: DeviceHandshake): void {
    this.clientState = 'ready';
    this.attempt = 0;
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    if (this.userId !== undefined) {
      this.request(Command.BIND, this.userId).then(
        () => this.bindWaiters.settle(),
        (err: Error) => {
          if (this.bindWaiters.size > 0) this.bindWaiters.settle(err);
          else this.emitError(err);
        },
      );
    }
    this.readyWaiters.settle();
    this.emit('handshake', { sessionId: h.sessionId, heartbeat: h.heartbeat, expireTime: h.expireTime });
  }

  private onProtocolError(err: DeviceClientError, fatal: boolean): void {
    if (!fatal) {
      this.emitError(err);
      return;
    }
    // The one fatal error of the JSON wire: a refused handshake, reported as the server's reply.
    this.emitError(err.cause instanceof ServerReplyError ? err.cause : err);
    const ws = this.ws;
    if (ws === undefined) return;
    try {
      ws.close(1000, 'handshake refused');
    } catch {
      // Already closing.
    }
    this.drop(ws, err.message);
  }

  private onOk(r: OkEvent): void {
    const pending = this.requests.take(r.sessionId);
    if (pending === undefined) return;
    if (pending.cmd === Command.BIND) {
      this.bound = pending.userId;
      pending.resolve();
      this.emit('bind', { userId: pending.userId });
    } else {
      if (this.bound === pending.userId) this.bound = undefined;
      pending.resolve();
      this.emit('unbind', { userId: pending.userId });
    }
  }

  private onServerError(e: ServerErrorEvent): void {
    this.emit('serverError', e);
    // A refused handshake is not a request: the protocol reports it next, as a fatal error.
    this.requests.take(e.sessionId)?.reject(new ServerReplyError(e.cmd, e.code, e.reason, e.data));
  }

  private onKick(k: KickEvent): void {
    if (k.userId === '' || k.userId === this.bound) this.bound = undefined;
    if (k.userId === '' || k.userId === this.userId) this.userId = undefined;
    this.emit('kick', k);
  }

  private request(cmd: number, userId: string): Promise<void> {
    const id = this.protocol.nextId();
    const done = this.requests.add(id, cmd, userId);
    if (cmd === Command.BIND) this.protocol.bind(userId, this.tags, this.bindData, id);
    else this.protocol.unbind(userId, this.tags, this.bindData, id);
    return done;
  }

  private emitError(err: unknown): void {
    if (this.listenerCount('error') === 0) return;
    this.emit('error', err instanceof Error ? err : new Error(String(err)));
  }
}
