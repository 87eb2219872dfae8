import type { Packet } from '../../protocol/index.js';
import type { DevicePush, KickEvent, ServerErrorEvent } from './device-protocol.js';
import type { ServerAddress } from './tcp-client-options.js';

export type { AckModel, KickEvent, ServerErrorEvent } from './device-protocol.js';

export interface HandshakeEvent {
  sessionId: string;
  /** Negotiated heartbeat, ms. */
  heartbeat: number;
  /** When the session expires, epoch ms. */
  expireTime: number;
  /** True when the session was resumed with FAST_CONNECT. */
  fast: boolean;
}

/**
 * A push from the server: `content` decrypted and inflated; pass `sessionId` to
 * {@link DeviceClient.ack} for a `'biz'` push (`'auto'` pushes were already acked by the client).
 */
export type PushEvent = DevicePush<Buffer>;

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
