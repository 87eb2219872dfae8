import { z } from 'zod';

/**
 * Where each user's devices are connected: user → client type → route. Memory here; Redis for a
 * cluster, in MPush's schema (hash `mp:ur:<userId>`, field = client type, value = the JSON
 * below), so MPush's own tools can read it.
 */
export type Route = z.infer<typeof routeSchema>;

/** A string field MPush's writers may leave out (connId, before mpush-ts): read as ''. */
const optionalText = z.string().catch('');

/**
 * A route read back from a shared store, as MPush writes it too: host and port are required (a
 * port may be a decimal string); other fields that are missing or not strings read as ''.
 */
export const routeSchema = z.object({
  /** Gateway address of the node holding the connection (mpush-wire §8). */
  host: z.string(),
  port: z.union([z.int(), z.string().transform(Number).pipe(z.int())]),
  deviceId: optionalText,
  osName: optionalText,
  clientVersion: optionalText,
  /**
   * Tells two connections of one device apart. mpush-ts nodes write
   * `<nodeId>:<connection id>@<opened at, epoch ms in base 36>`; to others it is opaque.
   */
  connId: optionalText,
});

export interface RouteStore {
  /**
   * True when a route is written, for every reader, by the time register() returns (one process's
   * memory); false when the write takes a round trip to a store other processes share.
   */
  readonly writesAtOnce: boolean;
  /**
   * Sets the route of (user, client type), replacing any other, atomically.
   * @returns the route it replaced (its node may have a device to kick), if any.
   */
  register(userId: string, clientType: number, route: Route): Promise<Route | undefined>;
  /**
   * Removes the route of (user, client type) only if it is still `connId`'s: a device that
   * moved elsewhere must not lose its new route to the old node's cleanup.
   */
  unregister(userId: string, clientType: number, connId: string): Promise<void>;
  /** Every route of a user, by client type (empty map when offline). */
  lookup(userId: string): Promise<Map<number, Route>>;
  /** Adds a user to a node's online set (MPush: sorted set `mp:oul:<ip>`, mpush-wire §8). */
  markOnline(nodeId: string, userId: string): Promise<void>;
  /** Removes a user from a node's online set. */
  markOffline(nodeId: string, userId: string): Promise<void>;
  /** How many users a node's online set holds. */
  onlineCount(nodeId: string): Promise<number>;
  /** Empties a node's online set: a node starting again drops what a crash left (as MPush). */
  clearOnline(nodeId: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * A route as the memory store keeps it: one flat copy with its client type, so the one route of
 * most users needs no slot array (a Route and its slots cost about 56 bytes more per user).
 */
type Held = Route & { clientType: number };

const held = (clientType: number, r: Route): Held => {
  const { host, port, deviceId, osName, clientVersion, connId } = r;
  return { clientType, host, port, deviceId, osName, clientVersion, connId };
};

const routeOf = (h: Held): Route => {
  const { host, port, deviceId, osName, clientVersion, connId } = h;
  return { host, port, deviceId, osName, clientVersion, connId };
};

/** In-memory routes for one machine: a user's one route as it is, two or more in an array. */
export class MemoryRouteStore implements RouteStore {
  readonly writesAtOnce = true;
  private readonly routes = new Map<string, Held | Held[]>();
  private readonly online = new Map<string, Set<string>>();

  async register(userId: string, clientType: number, route: Route): Promise<Route | undefined> {
    const h = held(clientType, route);
    const cur = this.routes.get(userId);
    if (cur === undefined) {
      this.routes.set(userId, h);
      return undefined;
    }
    if (!Array.isArray(cur)) {
      this.routes.set(userId, cur.clientType === clientType ? h : [cur, h]);
      return cur.clientType === clientType ? routeOf(cur) : undefined;
    }
    const i = cur.findIndex((x) => x.clientType === clientType);
    if (i < 0) {
      cur.push(h);
      return undefined;
    }
    const previous = cur[i]!;
    cur[i] = h;
    return routeOf(previous);
  }

  async unregister(userId: string, clientType: number, connId: string): Promise<void> {
    const cur = this.routes.get(userId);
    if (cur === undefined) return;
    if (!Array.isArray(cur)) {
      if (cur.clientType === clientType && cur.connId === connId) this.routes.delete(userId);
      return;
    }
    const i = cur.findIndex((x) => x.clientType === clientType && x.connId === connId);
    if (i < 0) return;
    cur.splice(i, 1);
    if (cur.length === 1) this.routes.set(userId, cur[0]!);
  }

  async lookup(userId: string): Promise<Map<number, Route>> {
    const cur = this.routes.get(userId);
    const all = cur === undefined ? [] : Array.isArray(cur) ? cur : [cur];
    return new Map(all.map((h) => [h.clientType, routeOf(h)]));
  }

  async markOnline(nodeId: string, userId: string): Promise<void> {
    let users = this.online.get(nodeId);
    if (!users) {
      users = new Set();
      this.online.set(nodeId, users);
    }
    users.add(userId);
  }

  async markOffline(nodeId: string, userId: string): Promise<void> {
    const users = this.online.get(nodeId);
    users?.delete(userId);
    if (users?.size === 0) this.online.delete(nodeId);
  }

  async onlineCount(nodeId: string): Promise<number> {
    return this.online.get(nodeId)?.size ?? 0;
  }

  async clearOnline(nodeId: string): Promise<void> {
    this.online.delete(nodeId);
  }

  get size(): number {
    return this.routes.size;
  }

  async close(): Promise<void> {
    this.routes.clear();
    this.online.clear();
  }
}
