export * from './connection.js';
export * from './disconnect.js';
export * from './outbound.js';
export * from './tcp-transport.js';
export * from './transport.js';
export * from './ws-transport.js';
