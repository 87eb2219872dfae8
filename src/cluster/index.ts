/** Cluster stores and bus: one interface each, an in-memory and a Redis implementation. */
export { type BusMessage, type ClusterBus, kickTopic, MemoryClusterBus } from './cluster-bus.js';
export {
  INBOX_CLIENT_TYPES,
  type InboxEntry,
  type InboxStore,
  MemoryInboxStore,
  type Receipt,
  type ReceiptEvent,
  type ReceiptState,
} from './inbox-store.js';
export { MemoryNodeRegistry, type NodeInfo, type NodeRegistry } from './node-registry.js';
export { RedisClusterBus } from './redis-cluster-bus.js';
export {
  type CreateRedisOptions,
  closeRedis,
  createRedis,
  type RedisAddress,
  type RedisClient,
  type RedisEndpoint,
  retryDelay,
} from './redis-connection.js';
export { RedisInboxStore } from './redis-inbox-store.js';
export { RedisNodeRegistry, type RedisNodeRegistryOptions } from './redis-node-registry.js';
export {
  decodeRoute,
  encodeRoute,
  RedisRouteStore,
  type RedisStoreOptions,
} from './redis-route-store.js';
export { RedisSessionStore } from './redis-session-store.js';
export { createRedisStores, type RedisStores, type RedisStoresOptions } from './redis-stores.js';
export { MemoryRouteStore, type Route, type RouteStore } from './route-store.js';
export { MemorySessionStore, type SessionStore, type StoredSession } from './session-store.js';
