export * from './load.js';
export * from './redact.js';
export * from './schema.js';
