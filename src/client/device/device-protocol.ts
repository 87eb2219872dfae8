// The device side of MPush's protocol as one state machine over frames: handshake or fast connect,
// bind/unbind, acks, heartbeats, pushes, kicks and the errors of each (mpush-wire §5–§10). It holds no
// socket, runs no timer and has no reconnect policy: its owner feeds it what arrived (`receive`), it
// writes through its host, and tells the owner when the next heartbeat is due. The same machine runs
// over two wires: the binary protocol (binary-wire.ts: RSA then AES, Node only) and the WebSocket JSON
// protocol (json-wire.ts). Browser-safe: this file and what it imports use no Node module and no Buffer.

import { Command, Flags } from '../../protocol/command.js';
import { DeviceClientError, ServerReplyError } from './errors.js';

/** The three types a wire works in. */
export interface WireTypes {
  /** What travels in each direction: bytes on the binary wire, one text frame on the JSON wire. */
  frame: unknown;
  /** A decoded packet the protocol does not interpret, as handed to {@link DeviceHost.onPacket}. */
  packet: unknown;
  /** Push content: bytes or text. */
  content: unknown;
}

/**
 * The handshake fields and settings a device sends and uses. A fleet shares one object: the protocol
 * keeps a reference, not a copy.
 */
export interface DeviceProfile {
  /** Decides the client type on the server (mpush-wire §8). */
  osName: string;
  /** Sent at the handshake. */
  osVersion: string;
  /** Sent at the handshake. */
  clientVersion: string;
  /** The minHeartbeat sent at the handshake, ms (MPush ignores it). */
  minHeartbeat: number;
  /** The maxHeartbeat asked at the handshake, ms; also the heartbeat used when the server names none. */
  maxHeartbeat: number;
  /**
   * When false, {@link DevicePush.content} is the content as it travelled (still encrypted and
   * compressed on the binary wire) and {@link DeviceProtocol.openContent} opens it on demand: for
   * devices that ack without reading. Default true.
   */
  decodePushes?: boolean;
  /** The clock of the heartbeat timing, epoch ms. Default `Date.now`. */
  now?: () => number;
}

/** A session to resume with FAST_CONNECT (mpush-wire §6). A `StoredSession` is one. */
export interface ResumeSession {
  sessionId: string;
  /** The mixed AES session key, hex. */
  sessionKey: string;
  /** The AES iv of the session, hex. */
  iv: string;
  /** When the server forgets the session, epoch ms. */
  expireTime: number;
}

/** How a push wants to be acknowledged (mpush-wire §9). */
export type AckModel = 'none' | 'auto' | 'biz';

/** A handshake (or fast connect) the server accepted. */
export interface DeviceHandshake {
  sessionId: string;
  /**
   * The heartbeat as the server sent it, ms (possibly 0); {@link DeviceProtocol.negotiatedHeartbeat}
   * is the one in use.
   */
  heartbeat: number;
  /** When the session expires, epoch ms. */
  expireTime: number;
  /** True when the session was resumed with FAST_CONNECT. */
  fast: boolean;
  /** After a full binary handshake: the mixed session key, hex (what a later fast connect needs). */
  sessionKey?: string;
  /** After a full binary handshake: the session's iv, hex. */
  iv?: string;
}

/** An OK packet: the server accepted request `sessionId` (mpush-wire §3). */
export interface OkEvent {
  /** The command the OK answers (BIND, UNBIND, ...). */
  cmd: number;
  code: number;
  data: string;
  sessionId: number;
}

/** An ERROR packet (mpush-wire §3, §4). */
export interface ServerErrorEvent {
  /** The command the error answers. */
  cmd: number;
  /** MPush error code (mpush-wire §4). */
  code: number;
  reason: string;
  data: string;
  sessionId: number;
}

/** A push from the server. */
export interface DevicePush<C> {
  /** The content, decrypted and inflated (unless the profile says `decodePushes: false`). */
  content: C;
  /** The packet's sessionId: what the ACK of a `'biz'` push carries. */
  sessionId: number;
  flags: number;
  /** `'auto'` pushes were acked before this event; `'biz'` ones wait for an ack. */
  ackModel: AckModel;
}

/** An HTTP request through the long connection (mpush-wire §3 HttpRequest, §11), as a wire carries it. */
export interface WireHttpRequest<C> {
  /** 0 GET, 1 POST, 2 PUT, 3 DELETE. */
  method: number;
  uri: string;
  /** `name:value` lines, each ended by `\n`. */
  headers: string;
  body: C;
}

/** The server's answer to a {@link WireHttpRequest} (mpush-wire §3 HttpResponse). */
export interface WireHttpResponse<C> {
  statusCode: number;
  reasonPhrase: string;
  /** `name:value` lines. */
  headers: string;
  /** Decrypted and inflated. */
  body: C;
}

/** Another device of the same client type bound this user (mpush-wire §8). */
export interface KickEvent {
  /** The kicked device (this one). */
  deviceId: string;
  /** The user it was bound to; now bound on the other device. */
  userId: string;
}

/**
 * The protocol's owner: where its frames go and who hears what happened. A lean device implements it
 * itself (no closures). Callbacks run synchronously while the protocol handles input; one that throws
 * is rethrown on a later microtask and never reaches the decoder.
 */
export interface DeviceHost<T extends WireTypes> {
  /** Sends one frame: the protocol's only way out. */
  write(frame: T['frame']): void;
  /** Handshake or fast connect accepted: the device is ready (bind now, start the heartbeat timer). */
  onHandshake(handshake: DeviceHandshake): void;
  /**
   * Something went wrong. `fatal`: the protocol stopped (bad frame or body, refused handshake,
   * heartbeat timeout) and ignores input until {@link DeviceProtocol.reset}; close the connection.
   * Not fatal: one undecodable JSON frame was skipped.
   */
  onError(error: DeviceClientError, fatal: boolean): void;
  /**
   * The server refused the fast connect (103 expired, 104 another device's): forget `session`. The
   * protocol sends a full handshake on the same connection when this and `onServerError` return.
   */
  onFastConnectFailed?(error: ServerErrorEvent, session: ResumeSession): void;
  /** Every ERROR packet (also those that reject a request or the handshake). */
  onServerError?(error: ServerErrorEvent): void;
  /** Every OK packet: a bind is accepted with `cmd` BIND, an unbind with UNBIND. */
  onOk?(reply: OkEvent): void;
  /** An ACK from the server: it acknowledges the device's push with this sessionId. */
  onAck?(sessionId: number): void;
  onPush?(push: DevicePush<T['content']>): void;
  onKick?(kick: KickEvent): void;
  /** The answer to the HTTP_PROXY request with this sessionId (mpush-wire §11). */
  onHttpResponse?(sessionId: number, response: WireHttpResponse<T['content']>): void;
  /** A heartbeat came back. */
  onHeartbeat?(): void;
  /** A packet of a command the protocol does not handle (e.g. CHAT). */
  onPacket?(packet: T['packet']): void;
}

/**
 * What a wire hands the protocol, in wire order. A wire checks framing and decodes bodies; the protocol
 * decides what each message means in its state.
 */
export interface WireHandler<T extends WireTypes> {
  /** True once handshaken. */
  readonly ready: boolean;
  /** The session of a fast connect in flight. */
  readonly resuming: ResumeSession | undefined;
  receivedHeartbeat(): void;
  receivedHandshake(handshake: DeviceHandshake): void;
  receivedFastConnect(heartbeat: number): void;
  receivedOk(reply: OkEvent): void;
  receivedError(error: ServerErrorEvent): void;
  receivedAck(sessionId: number): void;
  /** `content` as it travelled; the protocol opens it with {@link DeviceWire.openContent}. */
  receivedPush(content: T['content'], sessionId: number, flags: number): void;
  receivedKick(kick: KickEvent): void;
  receivedHttpResponse(sessionId: number, response: WireHttpResponse<T['content']>): void;
  receivedPacket(packet: T['packet']): void;
  /**
   * Input the wire cannot read: a bad frame (`cmd` undefined) or a packet of command `cmd` whose body
   * or handling failed. `fatal` when the stream cannot be trusted after it.
   */
  receivedBadInput(cause: unknown, fatal: boolean, cmd?: number): void;
}

/** One wire format: framing, ciphers and message codecs. One instance per connection. */
export interface DeviceWire<T extends WireTypes> {
  /** The heartbeat frame, or undefined when the wire has none (JSON: liveness is WebSocket ping/pong). */
  readonly heartbeatFrame: T['frame'] | undefined;
  /** Called once, by the protocol's constructor. */
  attach(handler: WireHandler<T>): void;
  /** Decodes input and calls the handler for each message in it. Never throws for bad input. */
  receive(chunk: T['frame']): void;
  /** The HANDSHAKE frame; switches the wire to what the reply is encrypted with. */
  handshake(sessionId: number, deviceId: string, profile: DeviceProfile): T['frame'];
  /** The FAST_CONNECT frame. Absent on a wire with no fast connect. */
  fastConnect?(
    sessionId: number,
    deviceId: string,
    profile: DeviceProfile,
    session: ResumeSession,
  ): T['frame'];
  /** BIND or UNBIND (`cmd`). */
  bind(cmd: number, sessionId: number, userId: string, tags: string, data: string): T['frame'];
  ack(sessionId: number): T['frame'];
  push(sessionId: number, content: T['content'], flags: number): T['frame'];
  /** HTTP_PROXY with an HttpRequest (mpush-wire §11). */
  httpRequest(sessionId: number, request: WireHttpRequest<T['content']>): T['frame'];
  /** Opens push content as it travelled (decrypt, inflate). */
  openContent(content: T['content'], flags: number): T['content'];
  /** Forgets the connection: keys, cipher, partial frames. */
  reset(): void;
  /** Frees what an idle connection need not hold (native cipher contexts); everything stays usable. */
  release(): void;
}

/** Where a {@link DeviceProtocol} is. */
export type DeviceProtocolState = 'idle' | 'fast-connecting' | 'handshaking' | 'ready' | 'failed';

/** A heartbeat due within this many ms is sent now, rather than after one more timer tick. */
const HEARTBEAT_SLACK_MS = 5;

/** The interval at which an idle connection writes a heartbeat: a margin before the server's timeout. */
function heartbeatInterval(heartbeat: number): number {
  return Math.max(HEARTBEAT_SLACK_MS, heartbeat - Math.min(5000, Math.floor(heartbeat / 5)));
}

function rethrow(err: unknown): never {
  throw err;
}

/** A host callback's exception goes to the event loop, never back into the decoder (ioredis). */
function rethrowLater(err: unknown): void {
  queueMicrotask(rethrow.bind(undefined, err));
}

type HostEvents<T extends WireTypes> = Required<Omit<DeviceHost<T>, 'write'>>;

/** Bind tags travel as one string: an array is joined with `,`. */
export function joinTags(tags: string | ReadonlyArray<string> | undefined): string {
  if (tags === undefined) return '';
  return typeof tags === 'string' ? tags : tags.join(',');
}

/**
 * One device's protocol state machine, over a {@link DeviceWire} and toward a {@link DeviceHost}.
 *
 * `idle` → `start()` → `fast-connecting` or `handshaking` → `ready`; a refused fast connect falls back to
 * a full handshake on the same connection (mpush-wire §6); a fatal error → `failed`. `reset()` returns to
 * `idle` for the next connection (packet sessionIds keep counting, as the SDK's do). Calls from the
 * owner write at once; input is handled synchronously in `receive()`.
 *
 * ```ts
 * const p = new DeviceProtocol(new BinaryWire(settings), host, 'dev-1', profile);
 * socket.on('connect', () => p.start());
 * socket.on('data', (chunk) => p.receive(chunk));
 * // host.onHandshake: p.bind('user-1'); host.onPush: if (push.ackModel === 'biz') p.ack(push.sessionId)
 * ```
 */
export class DeviceProtocol<T extends WireTypes> implements WireHandler<T> {
  /** The owner; may be replaced between connections. */
  host: DeviceHost<T>;
  readonly wire: DeviceWire<T>;
  readonly deviceId: string;
  readonly profile: DeviceProfile;
  private current: DeviceProtocolState = 'idle';
  private seq = 0;
  /** The sessionId of the HANDSHAKE in flight. */
  private handshakeId = 0;
  private session = '';
  private heartbeatMs = 0;
  private lastRead = 0;
  private lastWrite = 0;
  /** Bumped by reset(): input still being decoded for the old connection is then ignored. */
  private epoch = 0;
  private inputEpoch = 0;
  private resume: ResumeSession | undefined;

  constructor(wire: DeviceWire<T>, host: DeviceHost<T>, deviceId: string, profile: DeviceProfile) {
    this.wire = wire;
    this.host = host;
    this.deviceId = deviceId;
    this.profile = profile;
    wire.attach(this);
  }

  get state(): DeviceProtocolState {
    return this.current;
  }

  get ready(): boolean {
    return this.current === 'ready';
  }

  /** The server's session id once ready, else `''`. */
  get sessionId(): string {
    return this.session;
  }

  /** The heartbeat in use once ready (ms): the server's, or the profile's maxHeartbeat if it sent 0. */
  get negotiatedHeartbeat(): number {
    return this.heartbeatMs;
  }

  /** The session of a fast connect in flight. */
  get resuming(): ResumeSession | undefined {
    return this.resume;
  }

  /**
   * Opens the session: FAST_CONNECT with `resume` when given and the wire has fast connect, else a full
   * handshake. Call once the transport is open. Returns the packet's sessionId.
   * @throws when the wire cannot build the handshake (e.g. no server public key).
   */
  start(resume?: ResumeSession): number {
    const now = this.clock();
    this.lastRead = now;
    this.lastWrite = now;
    if (resume !== undefined && this.wire.fastConnect !== undefined) {
      const id = this.nextId();
      const frame = this.wire.fastConnect(id, this.deviceId, this.profile, resume);
      this.resume = resume;
      this.current = 'fast-connecting';
      this.write(frame);
      return id;
    }
    return this.sendHandshake();
  }

  /** Feeds what arrived (any chunking). Host callbacks run before it returns. */
  receive(chunk: T['frame']): void {
    if (this.current === 'failed') return;
    this.lastRead = this.clock();
    this.inputEpoch = this.epoch;
    this.wire.receive(chunk);
  }

  /** Sends BIND (mpush-wire §8); the reply comes as `onOk` / `onServerError` with this sessionId. */
  bind(userId: string, tags = '', data = '', sessionId = this.nextId()): number {
    this.write(this.wire.bind(Command.BIND, sessionId, userId, tags, data));
    return sessionId;
  }

  /** Sends UNBIND; the reply comes as `onOk` / `onServerError` with the returned sessionId. */
  unbind(userId: string, tags = '', data = '', sessionId = this.nextId()): number {
    this.write(this.wire.bind(Command.UNBIND, sessionId, userId, tags, data));
    return sessionId;
  }

  /** Acks push `sessionId` (mpush-wire §9). */
  ack(sessionId: number): void {
    this.write(this.wire.ack(sessionId));
  }

  /**
   * Sends a device-originated PUSH. With `Flags.AUTO_ACK` in `flags` the server answers with an ACK
   * (`onAck`) carrying the returned sessionId.
   */
  push(content: T['content'], flags = 0, sessionId = this.nextId()): number {
    this.write(this.wire.push(sessionId, content, flags));
    return sessionId;
  }

  /**
   * Sends an HTTP request for the server to perform (mpush-wire §11); the answer comes as
   * `onHttpResponse` (or `onServerError`) with the returned sessionId.
   */
  httpRequest(request: WireHttpRequest<T['content']>, sessionId = this.nextId()): number {
    this.write(this.wire.httpRequest(sessionId, request));
    return sessionId;
  }

  /** Writes a heartbeat now. False on a wire without heartbeats. */
  heartbeat(): boolean {
    const frame = this.wire.heartbeatFrame;
    if (frame === undefined) return false;
    this.write(frame);
    return true;
  }

  /** Writes a frame as given (tests, tools). It counts as a write for the heartbeat timing. */
  write(frame: T['frame']): void {
    this.lastWrite = this.clock();
    this.host.write(frame);
  }

  /** A fresh packet sessionId, numbered as the SDK numbers its requests (1, 2, ...). */
  nextId(): number {
    this.seq = this.seq >= 0x7fffffff ? 1 : this.seq + 1;
    return this.seq;
  }

  /**
   * When {@link handleTimeout} should run next, epoch ms: the earlier of the next heartbeat to write
   * and the read deadline. -1 when no heartbeat runs (not ready, or a wire without heartbeats).
   */
  nextTimeout(): number {
    if (this.current !== 'ready' || this.wire.heartbeatFrame === undefined) return -1;
    const hb = this.heartbeatMs;
    return Math.min(this.lastWrite + heartbeatInterval(hb), this.lastRead + 2 * hb);
  }

  /**
   * The owner's timer fired: writes a heartbeat if one is due, or fails with
   * `MPUSH_ERR_HEARTBEAT_TIMEOUT` (onError, fatal) when nothing was read for two heartbeats, as the SDK
   * gives up after two read timeouts of its own (mpush-wire §7). Returns the next {@link nextTimeout},
   * -1 after a failure.
   */
  handleTimeout(): number {
    if (this.current !== 'ready' || this.wire.heartbeatFrame === undefined) return -1;
    const now = this.clock();
    const hb = this.heartbeatMs;
    if (now - this.lastRead >= 2 * hb) {
      this.fail(
        new DeviceClientError('MPUSH_ERR_HEARTBEAT_TIMEOUT', `nothing read for ${now - this.lastRead} ms`),
      );
      return -1;
    }
    if (now - this.lastWrite >= heartbeatInterval(hb) - HEARTBEAT_SLACK_MS) this.heartbeat();
    return this.nextTimeout();
  }

  /** Opens the content of a push delivered as it travelled (`decodePushes: false`). Throws on bad input. */
  openContent(push: DevicePush<T['content']>): T['content'] {
    return this.wire.openContent(push.content, push.flags);
  }

  /** Back to `idle` for a new connection; input of the old one still being decoded is ignored. */
  reset(): void {
    this.epoch++;
    this.current = 'idle';
    this.session = '';
    this.heartbeatMs = 0;
    this.handshakeId = 0;
    this.resume = undefined;
    this.wire.reset();
  }

  /** Frees what an idle connection need not hold (native cipher contexts, recreated on use). */
  release(): void {
    this.wire.release();
  }

  // -------------------------------------------------------------------------------------------
  // From the wire (WireHandler)
  // -------------------------------------------------------------------------------------------

  /** @internal */
  receivedHeartbeat(): void {
    if (this.live) this.notify('onHeartbeat');
  }

  /** @internal */
  receivedHandshake(handshake: DeviceHandshake): void {
    // A second reply once ready means nothing on the JSON wire; the binary wire refuses it itself.
    if (!this.live || this.current === 'ready') return;
    this.resume = undefined;
    this.becomeReady(handshake.sessionId, handshake.heartbeat);
    this.notify('onHandshake', handshake);
  }

  /** @internal */
  receivedFastConnect(heartbeat: number): void {
    const s = this.resume;
    if (!this.live || this.current === 'ready' || s === undefined) return;
    this.resume = undefined;
    this.becomeReady(s.sessionId, heartbeat);
    this.notify('onHandshake', { sessionId: s.sessionId, heartbeat, expireTime: s.expireTime, fast: true });
  }

  /** @internal */
  receivedOk(reply: OkEvent): void {
    if (this.live) this.notify('onOk', reply);
  }

  /** @internal */
  receivedError(error: ServerErrorEvent): void {
    if (!this.live) return;
    const state = this.current;
    if (state === 'fast-connecting' && error.cmd === Command.FAST_CONNECT) {
      // mpush-wire §6: the session is gone (103) or not ours (104): forget it, full handshake.
      const session = this.resume!;
      this.resume = undefined;
      this.notify('onFastConnectFailed', error, session);
      this.notify('onServerError', error);
      if (this.live && this.current === 'fast-connecting') this.sendHandshake();
      return;
    }
    this.notify('onServerError', error);
    const refusesHandshake =
      state !== 'ready' &&
      (error.cmd === Command.HANDSHAKE || (state === 'handshaking' && error.sessionId === this.handshakeId));
    if (refusesHandshake && this.live) {
      this.fail(
        new DeviceClientError('MPUSH_ERR_HANDSHAKE', `handshake refused: ${error.code} ${error.reason}`, {
          cause: new ServerReplyError(error.cmd, error.code, error.reason, error.data),
        }),
      );
    }
  }

  /** @internal */
  receivedAck(sessionId: number): void {
    if (this.live) this.notify('onAck', sessionId);
  }

  /** @internal */
  receivedPush(content: T['content'], sessionId: number, flags: number): void {
    if (!this.live) return;
    const open = this.profile.decodePushes === false ? content : this.wire.openContent(content, flags);
    const ackModel: AckModel =
      (flags & Flags.AUTO_ACK) !== 0 ? 'auto' : (flags & Flags.BIZ_ACK) !== 0 ? 'biz' : 'none';
    // mpush-wire §9: with AUTO_ACK the SDK acks on receipt, before the app sees the push.
    if (ackModel === 'auto') this.ack(sessionId);
    this.notify('onPush', { content: open, sessionId, flags, ackModel });
  }

  /** @internal */
  receivedKick(kick: KickEvent): void {
    if (this.live) this.notify('onKick', kick);
  }

  /** @internal */
  receivedHttpResponse(sessionId: number, response: WireHttpResponse<T['content']>): void {
    if (this.live) this.notify('onHttpResponse', sessionId, response);
  }

  /** @internal */
  receivedPacket(packet: T['packet']): void {
    if (this.live) this.notify('onPacket', packet);
  }

  /** @internal */
  receivedBadInput(cause: unknown, fatal: boolean, cmd?: number): void {
    if (!this.live) return;
    const error =
      cmd === undefined
        ? new DeviceClientError('MPUSH_ERR_PROTOCOL', `bad frame from the server: ${cause}`, { cause })
        : new DeviceClientError(
            this.current === 'ready' ? 'MPUSH_ERR_PROTOCOL' : 'MPUSH_ERR_HANDSHAKE',
            `cannot read command ${cmd} from the server: ${cause}`,
            { cause },
          );
    if (fatal) this.fail(error);
    else this.notify('onError', error, false);
  }

  // -------------------------------------------------------------------------------------------
  // Helpers
  // -------------------------------------------------------------------------------------------

  /** Input belongs to the current connection and the protocol has not failed. */
  private get live(): boolean {
    return this.inputEpoch === this.epoch && this.current !== 'failed';
  }

  private clock(): number {
    const now = this.profile.now;
    return now === undefined ? Date.now() : now();
  }

  /** mpush-wire §5 step 2 (binary) / §10 (JSON). */
  private sendHandshake(): number {
    const id = this.nextId();
    const frame = this.wire.handshake(id, this.deviceId, this.profile);
    this.handshakeId = id;
    this.current = 'handshaking';
    this.write(frame);
    return id;
  }

  private becomeReady(sessionId: string, heartbeat: number): void {
    this.current = 'ready';
    this.session = sessionId;
    this.heartbeatMs = heartbeat > 0 ? heartbeat : this.profile.maxHeartbeat;
  }

  private fail(error: DeviceClientError): void {
    this.current = 'failed';
    this.notify('onError', error, true);
  }

  private notify<K extends keyof HostEvents<T>>(event: K, ...args: Parameters<HostEvents<T>[K]>): void {
    const host = this.host;
    const listener = host[event] as ((...a: Parameters<HostEvents<T>[K]>) => void) | undefined;
    if (listener === undefined) return;
    try {
      listener.apply(host, args);
    } catch (err) {
      rethrowLater(err);
    }
  }
}
