// The device SDKs: the Node TCP client (MPush binary protocol) and the WebSocket JSON client. A
// browser bundle imports ws-client.js directly: it has no Node imports.

export { backoffDelay, type ReconnectOptions } from './backoff.js';
export { TinyEmitter } from './emitter.js';
export { DeviceClientError, type DeviceClientErrorCode, ServerReplyError } from './errors.js';
export {
  FileSessionStorage,
  isStoredSession,
  MemorySessionStorage,
  type SessionStorage,
  type StoredSession,
} from './session-storage.js';
export {
  type AckModel,
  DeviceClient,
  type DeviceClientEvents,
  type DeviceClientOptions,
  type DeviceClientState,
  type DisconnectedEvent,
  type HandshakeEvent,
  type KickEvent,
  type PushEvent,
  type ReconnectingEvent,
  type ServerAddress,
  type ServerErrorEvent,
} from './tcp-client.js';
export {
  type WebSocketConstructorLike,
  type WebSocketLike,
  type WsAckModel,
  WsDeviceClient,
  type WsDeviceClientEvents,
  type WsDeviceClientOptions,
  type WsDeviceClientState,
  type WsHandshakeEvent,
  type WsPushEvent,
  type WsServerErrorEvent,
} from './ws-client.js';
