export * from './http-proxy.js';
export * from './load.js';
export * from './schema.js';
