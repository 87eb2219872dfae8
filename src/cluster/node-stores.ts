import { type ClusterBus, MemoryClusterBus } from './cluster-bus.js';
import { type InboxStore, MemoryInboxStore } from './inbox-store.js';
import { MemoryNodeRegistry, type NodeRegistry } from './node-registry.js';
import { RedisClusterBus } from './redis-cluster-bus.js';
import {
  createRedis,
  instrumentRedis,
  type RedisAddress,
  RedisCommandStats,
  type RedisEndpoint,
} from './redis-connection.js';
import { createRedisStores } from './redis-stores.js';
import { MemoryRouteStore, type RouteStore } from './route-store.js';
import { MemorySessionStore, type SessionStore } from './session-store.js';

/** The stores a node runs on: memory for one machine, Redis for a cluster. */
export interface NodeStores {
  sessions: SessionStore;
  routes: RouteStore;
  registry: NodeRegistry;
  bus: ClusterBus;
  /** The durable inbox and message receipts. */
  inbox: InboxStore;
  /** Subscribes to "the shared store is reachable again" (Redis reconnected). */
  onReconnect?(listener: () => void): void;
  /** Label for logs and the start-up banner. */
  kind?: string;
  /** The Redis connection's command counts and latency (Redis stores only). */
  redisCommands?: RedisCommandStats;
}

export interface ClusterSettings {
  redis: string;
  prefix: string;
  registryTtlMs: number;
  registryRefreshMs: number;
}

function addresses(list: string, defaultPort: number): RedisAddress[] {
  return list.split(',').map((hp) => {
    const [host, port] = hp.trim().split(':');
    return { host: host || '127.0.0.1', port: Number(port || defaultPort) };
  });
}

/**
 * Where `cluster.redis` points: `redis://` / `rediss://` URLs as they are,
 * `redis-sentinel://h1:26379,h2:26379/<master>` and `redis-cluster://h1:7000,h2:7001`.
 */
export function parseRedisEndpoint(url: string): RedisEndpoint {
  const sentinel = /^redis-sentinel:\/\/([^/]+)\/(.+)$/.exec(url);
  if (sentinel) return { sentinels: addresses(sentinel[1]!, 26379), name: sentinel[2]! };
  const cluster = /^redis-cluster:\/\/(.+)$/.exec(url);
  if (cluster) return { cluster: addresses(cluster[1]!, 6379) };
  if (!/^rediss?:\/\//.test(url))
    throw new Error(
      `cluster.redis must be a redis://, rediss://, redis-sentinel:// or redis-cluster:// URL, got ${url}`,
    );
  return url;
}

/** In-memory stores: one machine. */
export function memoryStores(maxSessions?: number, maxInboxUsers?: number): NodeStores {
  return {
    sessions: new MemorySessionStore(60_000, Date.now, maxSessions),
    routes: new MemoryRouteStore(),
    registry: new MemoryNodeRegistry(),
    bus: new MemoryClusterBus(),
    inbox: new MemoryInboxStore(maxInboxUsers),
    kind: 'in-memory stores',
  };
}

/** Redis stores (routes, sessions, registry, bus, inbox) for a node of a cluster. */
export function redisStores(settings: ClusterSettings, onError?: (err: Error) => void): NodeStores {
  const redis = createRedis(parseRedisEndpoint(settings.redis), onError ? { onError } : {});
  const redisCommands = new RedisCommandStats();
  instrumentRedis(redis, redisCommands);
  const s = createRedisStores(redis, {
    prefix: settings.prefix,
    registry: { ttlMs: settings.registryTtlMs, refreshMs: settings.registryRefreshMs },
    ...(onError ? { onError } : {}),
  });
  // Counted from the connection's creation, not from subscription: a node subscribes once its
  // first connection is up, so the next 'ready' it sees is already a reconnect.
  let readies = 0;
  const reconnectListeners: Array<() => void> = [];
  redis.on('ready', () => {
    if (readies++ > 0) for (const listener of reconnectListeners) listener();
  });
  return {
    sessions: s.sessions,
    routes: s.routes,
    registry: s.registry,
    inbox: s.inbox,
    bus: new RedisClusterBus(redis, settings.prefix),
    onReconnect(listener) {
      reconnectListeners.push(listener);
    },
    kind: `Redis ${settings.redis.replace(/\/\/[^@]*@/, '//***@')}`,
    redisCommands,
  };
}
