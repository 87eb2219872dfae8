import { closeRedis, type RedisClient } from './redis-connection.js';
import { RedisInboxStore } from './redis-inbox-store.js';
import { RedisNodeRegistry, type RedisNodeRegistryOptions } from './redis-node-registry.js';
import { RedisRouteStore } from './redis-route-store.js';
import { RedisSessionStore } from './redis-session-store.js';

export interface RedisStoresOptions {
  /** Key prefix of every store (default `mp:`, MPush's). */
  prefix?: string;
  /** Node registry timing. */
  registry?: Pick<RedisNodeRegistryOptions, 'ttlMs' | 'refreshMs'>;
  /** Registry refresh failures. */
  onError?: (err: Error) => void;
  /** Quit the connection once all four stores are closed (default true). */
  closeConnection?: boolean;
}

/** A node's four stores on one Redis connection. */
export interface RedisStores {
  redis: RedisClient;
  sessions: RedisSessionStore;
  routes: RedisRouteStore;
  registry: RedisNodeRegistry;
  inbox: RedisInboxStore;
}

/**
 * The stores of a cluster node on one shared connection, which the last store to close quits
 * (a node closes its stores together on stop).
 */
export function createRedisStores(redis: RedisClient, opts: RedisStoresOptions = {}): RedisStores {
  const prefix = opts.prefix ?? 'mp:';
  let open = 4;
  const release = () => {
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      if (--open === 0 && opts.closeConnection !== false) await closeRedis(redis);
    };
  };
  return {
    redis,
    sessions: new RedisSessionStore(redis, prefix, { onClose: release() }),
    routes: new RedisRouteStore(redis, prefix, { onClose: release() }),
    inbox: new RedisInboxStore(redis, prefix, { onClose: release() }),
    registry: new RedisNodeRegistry(redis, {
      prefix,
      ...opts.registry,
      ...(opts.onError ? { onError: opts.onError } : {}),
      onClose: release(),
    }),
  };
}
