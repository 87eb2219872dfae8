// The device SDKs (`mpush-ts/device`): the Node TCP client (MPush binary protocol) and the WebSocket
// JSON client, both one session state machine (DeviceSession) on one socket-free protocol object
// (DeviceProtocol) over a binary or a JSON wire. A browser imports `mpush-ts/device/browser`
// (browser.ts): it and what it imports have no Node imports.

export type { ClientTlsOptions } from '../tls.js';
export { backoffDelay } from './backoff.js';
export {
  BinaryWire,
  type BinaryWireOptions,
  type BinaryWireSettings,
  type BinaryWireTypes,
  binaryWireSettings,
  type HandshakeKeys,
} from './binary-wire.js';
export * from './browser.js';
export {
  type DeviceHandshake,
  type DeviceHost,
  type DeviceProfile,
  DeviceProtocol,
  type DeviceProtocolState,
  type DeviceWire,
  joinTags,
  type OkEvent,
  type ResumeSession,
  type WireHandler,
  type WireHttpRequest,
  type WireHttpResponse,
  type WireTypes,
} from './device-protocol.js';
export {
  DEFAULT_DEDUP_WINDOW,
  DeviceSession,
  type DeviceSessionEvents,
  type DeviceSessionOptions,
  pushMsgId,
  resolveDedupWindow,
  type SessionTransport,
} from './device-session.js';
export { TinyEmitter } from './emitter.js';
export { JsonWire, type JsonWireTypes } from './json-wire.js';
export {
  FileSessionStorage,
  isStoredSession,
  MemorySessionStorage,
  type SessionStorage,
  type StoredSession,
} from './session-storage.js';
export { DeviceClient } from './tcp-client.js';
export type {
  DeviceClientEvents,
  DeviceClientState,
  HandshakeEvent,
  PushEvent,
} from './tcp-client-events.js';
export type { DeviceClientOptions, ServerAddress } from './tcp-client-options.js';
