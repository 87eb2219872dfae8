export * from './http-proxy.js';
export * from './load.js';
export * from './redact.js';
export * from './schema.js';
