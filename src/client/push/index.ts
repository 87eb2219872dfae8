export type { ClientTlsOptions } from '../tls.js';
export * from './gateway-channel.js';
export * from './local-gateway.js';
export * from './push-request.js';
export * from './push-sender.js';
export * from './route-source.js';
export * from './types.js';
