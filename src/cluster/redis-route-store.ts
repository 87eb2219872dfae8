import type { RedisClient } from './redis-connection.js';
import { readJson } from './redis-json.js';
import { RedisScript } from './redis-script.js';
import { type Route, type RouteStore, routeSchema } from './route-store.js';

/** Options shared by the Redis stores. */
export interface RedisStoreOptions {
  /** Runs at the end of `close()`: e.g. quits a connection the stores share (see createRedisStores). */
  onClose?: () => Promise<void>;
}

// Set-and-return-previous, atomically: the binding node learns which route it replaced (and so
// which node has a device to kick) with no window for a third writer in between.
const REGISTER = new RedisScript(`
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return old
`);

// Compare-and-delete: the route goes only if it is still this connection's, so an old node's
// cleanup never removes the route a newer connection (on another node) registered.
const UNREGISTER = new RedisScript(`
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local ok, r = pcall(cjson.decode, v)
if ok and type(r) == 'table' and r['connId'] == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
`);

/** MPush's route value: exactly these keys in this order (mpush-wire §8). */
export function encodeRoute(r: Route): string {
  return JSON.stringify({
    host: r.host,
    port: r.port,
    deviceId: r.deviceId,
    osName: r.osName,
    clientVersion: r.clientVersion,
    connId: r.connId,
  });
}

/** A route read back, or undefined when the value is not one (written by something else). */
export function decodeRoute(json: string): Route | undefined {
  return readJson(routeSchema, json);
}

/**
 * Routes in Redis, in MPush's schema so MPush's tools read them: hash `<prefix>ur:<userId>`,
 * field = client type in decimal, value = the route's JSON. Online users per node in MPush's
 * sorted set `<prefix>oul:<nodeId>` (score 0, as MPush). Every operation is one command on one
 * key (Cluster-safe).
 *
 * Redis commands: register = 1 EVALSHA (HGET + HSET, atomic); unregister = 1 EVALSHA (HGET + compare + HDEL, atomic);
 * lookup = 1 HGETALL; markOnline = 1 ZADD; markOffline = 1 ZREM; onlineCount = 1 ZCARD;
 * clearOnline = 1 DEL.
 */
export class RedisRouteStore implements RouteStore {
  readonly writesAtOnce = false;
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix = 'mp:',
    private readonly opts: RedisStoreOptions = {},
  ) {}

  /** The hash holding a user's routes. */
  routeKey(userId: string): string {
    return `${this.prefix}ur:${userId}`;
  }

  /** The sorted set of a node's online users. */
  onlineKey(nodeId: string): string {
    return `${this.prefix}oul:${nodeId}`;
  }

  async register(userId: string, clientType: number, route: Route): Promise<Route | undefined> {
    const key = this.routeKey(userId);
    const old = await REGISTER.run(this.redis, [key], [String(clientType), encodeRoute(route)]);
    return typeof old === 'string' ? decodeRoute(old) : undefined;
  }

  async unregister(userId: string, clientType: number, connId: string): Promise<void> {
    await UNREGISTER.run(this.redis, [this.routeKey(userId)], [String(clientType), connId]);
  }

  async lookup(userId: string): Promise<Map<number, Route>> {
    const all = await this.redis.hgetall(this.routeKey(userId));
    const routes = new Map<number, Route>();
    for (const [field, json] of Object.entries(all)) {
      const route = /^-?\d+$/.test(field) ? decodeRoute(json) : undefined;
      if (route) routes.set(Number(field), route);
    }
    return routes;
  }

  async markOnline(nodeId: string, userId: string): Promise<void> {
    await this.redis.zadd(this.onlineKey(nodeId), 0, userId);
  }

  async markOffline(nodeId: string, userId: string): Promise<void> {
    await this.redis.zrem(this.onlineKey(nodeId), userId);
  }

  async onlineCount(nodeId: string): Promise<number> {
    return await this.redis.zcard(this.onlineKey(nodeId));
  }

  async clearOnline(nodeId: string): Promise<void> {
    await this.redis.del(this.onlineKey(nodeId));
  }

  /** Leaves the routes in Redis (they outlive this process); runs `onClose`. */
  async close(): Promise<void> {
    await this.opts.onClose?.();
  }
}
