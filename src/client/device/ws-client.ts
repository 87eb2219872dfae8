// The WebSocket JSON device client (mpush-wire §10). It runs in browsers as well as in Node: no Node
// imports here or in what it imports (the protocol's command and JSON files are plain TypeScript).

import { Command, Flags } from '../../protocol/command.js';
import { decodeJsonPacket, encodeJsonPacket, type JsonPacket } from '../../protocol/json-packet.js';
import {
  backoffDelay,
  type ReconnectOptions,
  type ResolvedReconnectOptions,
  resolveReconnectOptions,
} from './backoff.js';
import { TinyEmitter } from './emitter.js';
import { DeviceClientError, ServerReplyError } from './errors.js';

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

export type WsAckModel = 'none' | 'auto' | 'biz';

export interface WsHandshakeEvent {
  /** As the server sent them; MPush's web handshake reply may carry none of these. */
  sessionId: string;
  heartbeat: number;
  expireTime: number;
}

export interface WsPushEvent {
  content: string;
  sessionId: number;
  flags: number;
  ackModel: WsAckModel;
}

export interface WsServerErrorEvent {
  cmd: number;
  code: number;
  reason: string;
  data: string;
  sessionId: number;
}

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

interface Pending {
  cmd: number;
  userId: string;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

const OPEN = 1;
const CLOSED = 3;

function str(body: Record<string, unknown>, key: string): string {
  const v = body[key];
  return typeof v === 'string' ? v : '';
}

function num(body: Record<string, unknown>, key: string): number {
  const v = body[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

function normalizeTags(tags: string | ReadonlyArray<string> | undefined): string {
  if (tags === undefined) return '';
  return typeof tags === 'string' ? tags : tags.join(',');
}

/**
 * A device (typically a browser page) speaking MPush's WebSocket JSON protocol: handshake, bind,
 * pushes with acks, kicks; reconnects with backoff and re-binds after every handshake.
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
  private readonly osName: string;
  private readonly osVersion: string;
  private readonly clientVersion: string;
  private readonly WebSocketImpl: WebSocketConstructorLike;
  private readonly protocols: string | string[] | undefined;
  private readonly autoReconnect: boolean;
  private readonly reconnectOptions: ResolvedReconnectOptions;
  private readonly connectTimeoutMs: number;
  private readonly requestTimeoutMs: number;

  private userId: string | undefined;
  private tags: string;
  private bindData: string;
  private bound: string | undefined;

  private ws: WebSocketLike | undefined;
  private ready = false;
  private handshakeId = 0;
  private clientState: WsDeviceClientState = 'idle';
  private stopped = true;
  private attempt = 0;
  private seq = 0;
  private connectTimer: ReturnType<typeof setTimeout> | undefined;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly pending = new Map<number, Pending>();
  private readyWaiters: Waiter[] = [];
  private bindWaiters: Waiter[] = [];
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
    this.osName = options.osName ?? 'web';
    this.osVersion = options.osVersion ?? '';
    this.clientVersion = options.clientVersion ?? '';
    this.userId = options.userId || undefined;
    this.tags = normalizeTags(options.tags);
    this.bindData = options.bindData ?? '';
    this.WebSocketImpl = impl;
    this.protocols = options.protocols;
    this.autoReconnect = options.autoReconnect ?? true;
    this.reconnectOptions = resolveReconnectOptions(options.reconnect);
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
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
    if (this.ready) return Promise.resolve();
    const p = new Promise<void>((resolve, reject) => {
      this.readyWaiters.push({ resolve, reject });
    });
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
    this.settle('readyWaiters', closedError);
    this.settle('bindWaiters', closedError);
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
    if (tags !== undefined) this.tags = normalizeTags(tags);
    if (data !== undefined) this.bindData = data;
    if (this.ready) return this.request(Command.BIND, userId);
    if (this.stopped) {
      return Promise.reject(
        new DeviceClientError('MPUSH_ERR_NOT_CONNECTED', 'not connected: call connect() first'),
      );
    }
    // Connecting: settled by the bind that follows the next handshake.
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.bindWaiters = this.bindWaiters.filter((w) => w !== waiter);
        reject(
          new DeviceClientError('MPUSH_ERR_TIMEOUT', 'no handshake and bind within the request timeout'),
        );
      }, this.requestTimeoutMs);
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
      this.bindWaiters.push(waiter);
    });
  }

  /** Unbinds the current user and forgets it. Resolves at once when there is none or no connection. */
  unbindUser(): Promise<void> {
    const userId = this.userId ?? this.bound;
    this.userId = undefined;
    if (userId === undefined || !this.ready) {
      this.bound = undefined;
      return Promise.resolve();
    }
    return this.request(Command.UNBIND, userId);
  }

  /** Acks a push by its sessionId. False when not connected. */
  ack(sessionId: number): boolean {
    if (!this.ready) return false;
    return this.send(Command.ACK, sessionId, {});
  }

  /** Sends one JSON packet as given (tests, tools). False when the socket is not open. */
  sendPacket(cmd: number, sessionId: number, body: Record<string, unknown>): boolean {
    return this.send(cmd, sessionId, body);
  }

  private nextId(): number {
    this.seq = this.seq >= 0x7fffffff ? 1 : this.seq + 1;
    return this.seq;
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
      this.handshakeId = this.nextId();
      this.send(Command.HANDSHAKE, this.handshakeId, {
        deviceId: this.deviceId,
        osName: this.osName,
        osVersion: this.osVersion,
        clientVersion: this.clientVersion,
      });
    };
    const onMessage = (event: { data?: unknown }): void => {
      if (ws !== this.ws) return;
      if (typeof event.data !== 'string') {
        this.emitError(new DeviceClientError('MPUSH_ERR_PROTOCOL', 'binary frame on the JSON protocol'));
        return;
      }
      let packet: JsonPacket;
      try {
        packet = decodeJsonPacket(event.data);
      } catch (err) {
        this.emitError(
          new DeviceClientError('MPUSH_ERR_PROTOCOL', `bad frame from the server: ${err}`, { cause: err }),
        );
        return;
      }
      this.onPacket(packet);
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
      if (ws !== this.ws || this.ready) return;
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
    this.ready = false;
    this.bound = undefined;
    const err = this.stopped
      ? new DeviceClientError('MPUSH_ERR_CLOSED', 'the client was closed')
      : new DeviceClientError('MPUSH_ERR_DISCONNECTED', `connection lost: ${reason}`);
    for (const [id, pending] of [...this.pending]) {
      this.pending.delete(id);
      clearTimeout(pending.timer);
      pending.reject(err);
    }
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
      this.settle('readyWaiters', new DeviceClientError('MPUSH_ERR_DISCONNECTED', reason));
      this.settle('bindWaiters', new DeviceClientError('MPUSH_ERR_DISCONNECTED', reason));
    }
  }

  private onPacket(p: JsonPacket): void {
    const body = p.body;
    switch (p.cmd) {
      case Command.HANDSHAKE:
        this.onHandshakeOk(p);
        break;
      case Command.OK:
        if (!this.ready && num(body, 'cmd') === Command.HANDSHAKE) this.onHandshakeOk(p);
        else this.onOk(p);
        break;
      case Command.ERROR:
        this.onServerError(p);
        break;
      case Command.PUSH: {
        const ackModel: WsAckModel =
          (p.flags & Flags.AUTO_ACK) !== 0 ? 'auto' : (p.flags & Flags.BIZ_ACK) !== 0 ? 'biz' : 'none';
        if (ackModel === 'auto') this.send(Command.ACK, p.sessionId, {});
        this.emit('push', {
          content: str(body, 'content'),
          sessionId: p.sessionId,
          flags: p.flags,
          ackModel,
        });
        break;
      }
      case Command.KICK: {
        const userId = str(body, 'userId');
        if (userId === '' || userId === this.bound) this.bound = undefined;
        if (userId === '' || userId === this.userId) this.userId = undefined;
        this.emit('kick', { deviceId: str(body, 'deviceId'), userId });
        break;
      }
      default:
        this.emit('packet', p);
    }
  }

  private onHandshakeOk(p: JsonPacket): void {
    if (this.ready) return;
    this.ready = true;
    this.clientState = 'ready';
    this.attempt = 0;
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    const body = p.body;
    if (this.userId !== undefined) {
      this.request(Command.BIND, this.userId).then(
        () => this.settle('bindWaiters'),
        (err: Error) => {
          if (this.bindWaiters.length > 0) this.settle('bindWaiters', err);
          else this.emitError(err);
        },
      );
    }
    this.settle('readyWaiters');
    this.emit('handshake', {
      sessionId: str(body, 'sessionId'),
      heartbeat: num(body, 'heartbeat'),
      expireTime: num(body, 'expireTime'),
    });
  }

  private onOk(p: JsonPacket): void {
    const pending = this.pending.get(p.sessionId);
    if (pending === undefined) return;
    this.pending.delete(p.sessionId);
    clearTimeout(pending.timer);
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

  private onServerError(p: JsonPacket): void {
    const body = p.body;
    const event: WsServerErrorEvent = {
      cmd: num(body, 'cmd'),
      code: num(body, 'code'),
      reason: str(body, 'reason'),
      data: str(body, 'data'),
      sessionId: p.sessionId,
    };
    this.emit('serverError', event);
    if (!this.ready && (event.cmd === Command.HANDSHAKE || p.sessionId === this.handshakeId)) {
      const err = new ServerReplyError(event.cmd, event.code, event.reason, event.data);
      this.emitError(err);
      const ws = this.ws;
      if (ws !== undefined) {
        try {
          ws.close(1000, 'handshake refused');
        } catch {
          // Already closing.
        }
        this.drop(ws, `handshake refused: ${event.code} ${event.reason}`);
      }
      return;
    }
    const pending = this.pending.get(p.sessionId);
    if (pending === undefined) return;
    this.pending.delete(p.sessionId);
    clearTimeout(pending.timer);
    pending.reject(new ServerReplyError(event.cmd, event.code, event.reason, event.data));
  }

  private request(cmd: number, userId: string): Promise<void> {
    const id = this.nextId();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending.get(id) === undefined) return;
        this.pending.delete(id);
        reject(new DeviceClientError('MPUSH_ERR_TIMEOUT', `no reply to command ${cmd} (sessionId ${id})`));
      }, this.requestTimeoutMs);
      this.pending.set(id, { cmd, userId, resolve, reject, timer });
      this.send(cmd, id, { userId, tags: this.tags, data: this.bindData });
    });
  }

  private send(cmd: number, sessionId: number, body: Record<string, unknown>): boolean {
    const ws = this.ws;
    if (ws === undefined || ws.readyState !== OPEN) return false;
    ws.send(encodeJsonPacket(cmd, sessionId, body));
    return true;
  }

  private settle(which: 'readyWaiters' | 'bindWaiters', err?: Error): void {
    const waiters = this[which];
    if (waiters.length === 0) return;
    this[which] = [];
    for (const w of waiters) {
      if (err === undefined) w.resolve();
      else w.reject(err);
    }
  }

  private emitError(err: unknown): void {
    if (this.listenerCount('error') === 0) return;
    this.emit('error', err instanceof Error ? err : new Error(String(err)));
  }
}
