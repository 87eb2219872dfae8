import type { BinaryWireTypes } from './binary-wire.js';
import type { DevicePush } from './device-protocol.js';
import type { DeviceSessionEvents, DeviceSessionState } from './device-session.js';
import type { ServerAddress } from './tcp-client-options.js';

export type { AckModel, KickEvent, ServerErrorEvent } from './device-protocol.js';
export type { DisconnectedEvent, DuplicatePushEvent, ReconnectingEvent } from './device-session.js';

/** Handshake or fast connect accepted (`handshake` event of {@link DeviceClient}). */
export interface HandshakeEvent {
  /** The server's session id (what a later fast connect resumes). */
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

/** Events of {@link DeviceClient}, with their arguments: the session's, plus `connected` and `handshake`. */
export type DeviceClientEvents = {
  /** TCP connected; the handshake follows. */
  connected: [ServerAddress];
  /** Handshake or fast connect done: the client is ready. */
  handshake: [HandshakeEvent];
} & DeviceSessionEvents<BinaryWireTypes>;

/** Where the client is. */
export type DeviceClientState = DeviceSessionState;
