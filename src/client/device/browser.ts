// The browser entry of the device SDK (`mpush-ts/device/browser`): the WebSocket JSON client and what
// its API names. Nothing here or in what it imports uses a Node module or Buffer, so a page can import
// it as it is (test/unit/client/browser-safe.test.ts checks the graph, test/browser/ runs it in Chromium).

export {
  Disconnect,
  type DisconnectName,
  type DisconnectReason,
  disconnectByWsCode,
} from '../../protocol/disconnect.js';
export type { ReconnectOptions } from './backoff.js';
export type { AckModel, DevicePush, KickEvent, ServerErrorEvent } from './device-protocol.js';
export type {
  DeviceSessionState,
  DisconnectedEvent,
  DuplicatePushEvent,
  ReconnectingEvent,
} from './device-session.js';
export { DeviceClientError, type DeviceClientErrorCode, ServerReplyError } from './errors.js';
export type { HttpProxyMethod, HttpProxyRequest, HttpProxyResponse } from './http-request.js';
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
