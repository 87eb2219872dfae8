import { performance } from 'node:perf_hooks';
import { Cluster, type ClusterOptions, type Command, Redis, type RedisOptions } from 'ioredis';
import { LatencyHistogram } from '../util/latency-histogram.js';

/** A connection the Redis stores run on: one server (plain or behind Sentinel) or a Cluster. */
export type RedisClient = Redis | Cluster;

/** A `host:port` pair. */
export interface RedisAddress {
  host: string;
  port: number;
}

/**
 * Where Redis is: a URL (`redis://[:password@]host:port[/db]`, `rediss://` for TLS), a Sentinel
 * group (the sentinels and the master's name), or the seed nodes of a Redis Cluster.
 */
export type RedisEndpoint =
  | string
  | { sentinels: RedisAddress[]; name: string }
  | { cluster: Array<RedisAddress | string> };

export interface CreateRedisOptions {
  /**
   * Connection errors (refused, reset, auth, …). The client reconnects by itself; this is for
   * logging or metrics. Without it errors are dropped, never printed.
   */
  onError?: (err: Error) => void;
  /**
   * A command queued while Redis is unreachable fails after this many reconnection attempts
   * (default 3): a store call rejects instead of waiting for Redis forever.
   */
  maxRetriesPerRequest?: number;
  /** Reconnection delay cap in ms (default 2000); the delay doubles from 50 ms up to it. */
  maxRetryDelayMs?: number;
  /** Time allowed to open a TCP connection, in ms (default 5000). */
  connectTimeoutMs?: number;
  /**
   * A command without a reply after this many ms fails (default 5000): bounds a call to a
   * Redis that accepts connections but does not answer.
   */
  commandTimeoutMs?: number;
  /** Further ioredis options (password, tls, db, …), applied over the defaults above. */
  redis?: RedisOptions;
  /** Further Cluster options (natMap, scaleReads, …), for a Cluster endpoint. */
  cluster?: ClusterOptions;
}

/** Capped exponential backoff: 50, 100, 200, … ms, never more than `maxMs`. */
export function retryDelay(attempt: number, maxMs: number): number {
  return Math.min(50 * 2 ** Math.min(Math.max(attempt - 1, 0), 16), maxMs);
}

function parseAddress(a: RedisAddress | string): RedisAddress {
  if (typeof a !== 'string') return a;
  const u = new URL(a.includes('://') ? a : `redis://${a}`);
  return { host: u.hostname, port: Number(u.port || 6379) };
}

/**
 * Opens a Redis connection for the cluster stores: single server, Sentinel or Cluster, with
 * bounded retries, a command timeout and an offline queue (commands issued while reconnecting
 * wait for the connection, up to the retry bound). Connects at once (not lazily).
 *
 * In Cluster mode, keys that one command or transaction uses together share a hash tag (the
 * node registry's keys are `<prefix>{nodes}…`); every other operation touches a single key.
 */
export function createRedis(endpoint: RedisEndpoint, opts: CreateRedisOptions = {}): RedisClient {
  const maxRetries = opts.maxRetriesPerRequest ?? 3;
  const maxDelay = opts.maxRetryDelayMs ?? 2000;
  const common: RedisOptions = {
    maxRetriesPerRequest: maxRetries,
    enableOfflineQueue: true,
    // Commands issued in the same tick (a bind's route register, online-set add and session write;
    // a burst of binds) go out in one write instead of one each.
    enableAutoPipelining: true,
    lazyConnect: false,
    connectTimeout: opts.connectTimeoutMs ?? 5000,
    commandTimeout: opts.commandTimeoutMs ?? 5000,
    retryStrategy: (times) => retryDelay(times, maxDelay),
    ...opts.redis,
  };
  let client: RedisClient;
  if (typeof endpoint === 'string') {
    client = new Redis(endpoint, common);
  } else if ('sentinels' in endpoint) {
    client = new Redis({
      ...common,
      sentinels: endpoint.sentinels,
      name: endpoint.name,
      sentinelRetryStrategy: (times) => retryDelay(times, maxDelay),
    });
  } else {
    const cluster: Cluster = new Cluster(endpoint.cluster.map(parseAddress), {
      enableOfflineQueue: true,
      enableAutoPipelining: true,
      lazyConnect: false,
      clusterRetryStrategy: (times) => {
        // A Cluster's own offline queue has no retry bound (a single node's does): apply
        // maxRetriesPerRequest the way ioredis does for one node, so calls fail, not hang.
        if (times % (maxRetries + 1) === 0) {
          (cluster as unknown as { flushQueue?(e: Error): void }).flushQueue?.(
            new Error(`Redis Cluster unreachable after ${times} attempts`),
          );
        }
        return retryDelay(times, maxDelay);
      },
      redisOptions: common,
      ...opts.cluster,
    });
    client = cluster;
  }
  client.on('error', (err: Error) => opts.onError?.(err));
  return client;
}

/** The commands a connection sent, by name (the stores' fixed set): calls, failures, and their latency. */
export class RedisCommandStats {
  readonly calls = new Map<string, number>();
  readonly errors = new Map<string, number>();
  /** Sent → replied (or failed), every command together. */
  readonly latency = new LatencyHistogram();

  /** @internal */
  settled(name: string, start: number, failed: boolean): void {
    this.calls.set(name, (this.calls.get(name) ?? 0) + 1);
    if (failed) this.errors.set(name, (this.errors.get(name) ?? 0) + 1);
    this.latency.observe(performance.now() - start);
  }
}

/**
 * Counts and times every command `client` sends, once each (ioredis passes a command through
 * `sendCommand` again when it replays its offline queue). Redis has no command events to listen
 * to; ioredis's tracing channel is process-wide and builds a context per command.
 */
export function instrumentRedis(client: RedisClient, stats: RedisCommandStats): void {
  const seen = new WeakSet<Command>();
  const target = client as unknown as { sendCommand(command: Command, ...rest: unknown[]): unknown };
  const send = target.sendCommand;
  target.sendCommand = function (this: unknown, command: Command, ...rest: unknown[]) {
    if (!seen.has(command)) {
      seen.add(command);
      const start = performance.now();
      const name = command.name;
      command.promise.then(
        () => stats.settled(name, start, false),
        () => stats.settled(name, start, true),
      );
    }
    return send.call(this, command, ...rest);
  };
}

/**
 * Closes a connection: QUIT (pending replies arrive first) when connected, else an immediate
 * disconnect, so closing never waits for an unreachable Redis.
 */
export async function closeRedis(redis: RedisClient): Promise<void> {
  if (redis.status !== 'ready') {
    redis.disconnect();
    return;
  }
  try {
    await redis.quit();
  } catch {
    redis.disconnect();
  }
}
