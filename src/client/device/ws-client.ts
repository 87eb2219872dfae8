// The WebSocket JSON device client (mpush-wire §10). It runs in browsers as well as in Node: no Node
// imports here or in what it imports (the protocol's command and JSON files are plain TypeScript).

import type { Disconnect } from '../../protocol/disconnect.js';
import { encodeJsonPacket } from '../../protocol/json-packet.js';
import type { ReconnectOptions } from './backoff.js';
import type { AckModel, DeviceProfile, DevicePush, ServerErrorEvent } from './device-protocol.js';
import {
  DeviceSession,
  type DeviceSessionEvents,
  type DeviceSessionState,
  resolveSessionOptions,
  type SessionTransport,
} from './device-session.js';
import { TinyEmitter } from './emitter.js';
import { DeviceClientError } from './errors.js';
import type { HttpProxyRequest, HttpProxyResponse } from './http-request.js';
import { JsonWire, type JsonWireTypes } from './json-wire.js';

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

/** A WebSocket constructor: the browser's `WebSocket`, or the `ws` package's in Node. */
export type WebSocketConstructorLike = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** Options of {@link WsDeviceClient}. Only `url` and `deviceId` are required. */
export interface WsDeviceClientOptions {
  /** `ws://host:port/path` or `wss://...` of the server's WebSocket endpoint. */
  url: string;
  /** The device id sent at the handshake. */
  deviceId: string;
  /** Decides the client type on the server (mpush-wire §8). Default `'web'`. */
  osName?: string;
  /** Sent at the handshake. Default `''`. */
  osVersion?: string;
  /** Sent at the handshake. Default `''`. */
  clientVersion?: string;
  /** When set, the user is bound after every handshake. */
  userId?: string;
  /** Bind tags, one string (an array is joined with `,`). */
  tags?: string | ReadonlyArray<string>;
  /** The bind `data` slot: where a bind token goes. */
  bindData?: string;
  /** The WebSocket implementation. Default `globalThis.WebSocket`; in Node pass `ws`'s `WebSocket`. */
  WebSocket?: WebSocketConstructorLike;
  /** WebSocket subprotocols to ask for. */
  protocols?: string | string[];
  /**
   * Reconnect after a lost connection, when its close code allows (the disconnect catalogue: not
   * after a protocol error, a refused handshake or bind, or a kick). Default true.
   */
  autoReconnect?: boolean;
  /** Backoff between reconnects. */
  reconnect?: ReconnectOptions;
  /** Opening + handshake must finish within this. Default 10 000 ms. */
  connectTimeoutMs?: number;
  /** Bind and unbind fail after this. Default 10 000 ms. */
  requestTimeoutMs?: number;
  /**
   * How many recently delivered PushMsg `msgId`s are remembered: a push whose msgId is among them is
   * dropped (a `duplicate` event, acked if it asks for an ack). 0 turns it off. Default 1000.
   */
  dedupWindow?: number;
}

/** How a push wants to be acknowledged. */
export type WsAckModel = AckModel;

/** The handshake the server accepted (`handshake` event of {@link WsDeviceClient}). */
export interface WsHandshakeEvent {
  /** As the server sent them; MPush's web handshake reply may carry none of these. */
  sessionId: string;
  /** The heartbeat the server named, ms (liveness on WebSocket is ping/pong). */
  heartbeat: number;
  /** When the session expires, epoch ms. */
  expireTime: number;
}

/** A push from the server: `content` is the text the server sent. */
export type WsPushEvent = DevicePush<string>;

/** An ERROR packet from the server. */
export type WsServerErrorEvent = ServerErrorEvent;

/** Events of {@link WsDeviceClient}, with their arguments: the session's, plus `connected` and `handshake`. */
export type WsDeviceClientEvents = {
  /** The WebSocket opened; the handshake follows. */
  connected: [];
  /** The handshake was accepted: the client is ready. */
  handshake: [WsHandshakeEvent];
} & DeviceSessionEvents<JsonWireTypes>;

/** Where the client is. */
export type WsDeviceClientState = DeviceSessionState;

const OPEN = 1;
const CLOSED = 3;

/**
 * A device (typically a browser page) speaking MPush's WebSocket JSON protocol: handshake, bind,
 * pushes with acks, kicks; reconnects with backoff when the server's close code allows it (the
 * catalogue {@link Disconnect}: 1001 shutdown or a lost network, yes; 4004 protocol error, 4006
 * refused handshake, no) and re-binds after every handshake. Pushes whose PushMsg `msgId` was already
 * delivered are dropped. The session is a {@link DeviceSession} shared with {@link DeviceClient},
 * over a {@link JsonWire}.
 *
 * ```ts
 * import WebSocket from 'ws'; // Node only; browsers have their own
 * const client = new WsDeviceClient({ url, deviceId: 'web-1', userId: 'u1', WebSocket });
 * client.on('push', (p) => console.log(p.content));
 * await client.connect();
 * ```
 */
export class WsDeviceClient extends TinyEmitter<WsDeviceClientEvents> {
  /** The device id sent at the handshake. */
  readonly deviceId: string;
  private readonly url: string;
  private readonly WebSocketImpl: WebSocketConstructorLike;
  private readonly protocols: string | string[] | undefined;
  private readonly session: DeviceSession<JsonWireTypes, WebSocketLike>;
  private closeWaiters: Array<() => void> = [];

  /** @throws TypeError without a `deviceId`, or without a WebSocket implementation. */
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
    this.WebSocketImpl = impl;
    this.protocols = options.protocols;
    const profile: DeviceProfile = {
      osName: options.osName ?? 'web',
      osVersion: options.osVersion ?? '',
      clientVersion: options.clientVersion ?? '',
      // The JSON handshake carries no heartbeat (mpush-wire §10).
      minHeartbeat: 0,
      maxHeartbeat: 0,
    };
    this.session = new DeviceSession(
      new JsonWire(),
      this.deviceId,
      profile,
      resolveSessionOptions(options),
      this.transport(),
    );
  }

  /** How the session opens, writes and closes WebSockets: one object per client. */
  private transport(): SessionTransport<JsonWireTypes, WebSocketLike> {
    return {
      open: () => this.open(),
      write: (ws, text) => {
        if (ws.readyState === OPEN) ws.send(text);
      },
      discard: (ws, reason) => {
        // The handlers stay: each ignores a socket that is no longer current, and onclose settles
        // close(). Closing a socket still opening makes `ws` emit an 'error' nobody needs.
        if (ws.readyState === CLOSED) return;
        try {
          ws.close(reason.wsCode, reason.name);
        } catch {
          // Already closing.
        }
      },
      describe: () => this.url,
      handshaken: (_ws, h) =>
        this.emit('handshake', { sessionId: h.sessionId, heartbeat: h.heartbeat, expireTime: h.expireTime }),
      contentText: (content) => content,
      // The session's events are a part of the client's (same names, same arguments).
      emit: this.emit.bind(this) as SessionTransport<JsonWireTypes, WebSocketLike>['emit'],
    };
  }

  /** Where the client is. */
  get state(): WsDeviceClientState {
    return this.session.state;
  }

  /** The user the server confirmed on this connection, if any. */
  get boundUserId(): string | undefined {
    return this.session.boundUserId;
  }

  /**
   * Connects; resolves at the first handshake. Rejects when {@link close} is called first, or when a
   * connection ends and the client will not come back by itself (see DeviceClient.connect).
   */
  connect(): Promise<void> {
    return this.session.connect();
  }

  /** Closes and stops reconnecting; resolves once the socket is closed. */
  close(): Promise<void> {
    const ws = this.session.connection;
    const closed =
      ws === undefined || ws.readyState === CLOSED
        ? Promise.resolve()
        : new Promise<void>((resolve) => this.closeWaiters.push(resolve));
    this.session.close();
    return closed;
  }

  /**
   * Binds a user (and re-binds it after every handshake); resolves on OK, rejects with
   * `ServerReplyError` on ERROR (the user is then forgotten and the session ends with the connection)
   * or with {@link DeviceClientError} on timeout.
   */
  bindUser(userId: string, tags?: string | ReadonlyArray<string>, data?: string): Promise<void> {
    return this.session.bindUser(userId, tags, data);
  }

  /** Unbinds the current user and forgets it. Resolves at once when there is none or no connection. */
  unbindUser(): Promise<void> {
    return this.session.unbindUser();
  }

  /** Acks a push by its sessionId. False when not connected. */
  ack(sessionId: number): boolean {
    const ws = this.session.connection;
    return ws !== undefined && ws.readyState === OPEN && this.session.ack(sessionId);
  }

  /**
   * Has the server perform an HTTP request (HTTP_PROXY over the JSON protocol, an mpush-ts extension:
   * MPush's own WebSocket server does not serve it) and resolves with the response, whatever its
   * status. Bodies are text both ways. Rejects with `MPUSH_ERR_TIMEOUT` when no answer came within
   * `timeoutMs` (default `requestTimeoutMs`).
   */
  httpRequest(request: HttpProxyRequest<string>): Promise<HttpProxyResponse<string>> {
    return this.session.httpRequest(request, request.body ?? '');
  }

  /** Sends one JSON packet as given (tests, tools). False when the socket is not open. */
  sendPacket(cmd: number, sessionId: number, body: Record<string, unknown>): boolean {
    const ws = this.session.connection;
    if (ws === undefined || ws.readyState !== OPEN) return false;
    return this.session.writeRaw(encodeJsonPacket(cmd, sessionId, body));
  }

  private open(): WebSocketLike {
    const ws = new this.WebSocketImpl(this.url, this.protocols);
    const session = this.session;
    // Closures per socket are fine here: a page holds one connection. The session ignores reports
    // about a socket that is no longer current.
    ws.onopen = (): void => {
      if (!session.opened(ws)) return;
      this.emit('connected');
      session.start(ws);
    };
    ws.onmessage = (event: { data?: unknown }): void => {
      if (typeof event.data === 'string') session.receive(ws, event.data);
      else if (ws === session.connection) {
        this.emit('error', new DeviceClientError('MPUSH_ERR_PROTOCOL', 'binary frame on the JSON protocol'));
      }
    };
    ws.onclose = (event: { code?: number; reason?: string }): void => {
      for (const resolve of this.closeWaiters.splice(0)) resolve();
      session.transportClosed(ws, event.code, event.reason);
    };
    ws.onerror = (event: { message?: string; error?: unknown }): void => {
      const err = event.error instanceof Error ? event.error : new Error(event.message ?? 'WebSocket error');
      session.transportError(ws, err);
    };
    return ws;
  }
}
