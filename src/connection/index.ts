// The catalogue lives in protocol/ (clients read it too); re-exported for connection-level importers.
export { Disconnect, type DisconnectName, type DisconnectReason } from '../protocol/disconnect.js';
export * from './connection.js';
export * from './outbound.js';
export * from './tcp-transport.js';
export * from './transport.js';
export * from './ws-transport.js';
