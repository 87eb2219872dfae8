export * from './body.js';
export * from './client-type.js';
export * from './command.js';
export * from './errors.js';
export * from './frame-decoder.js';
export * from './json-packet.js';
export * from './messages.js';
export * from './packet.js';
