import { z } from 'zod';
import { slotDelete, slotEntries, slotGet, slotSet, type TypeSlots } from '../util/type-slots.js';

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
  /** `<nodeId>:<connection id>`: tells two connections of one device apart. */
  connId: optionalText,
});

export interface RouteStore {
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

/** In-memory routes for one machine. */
export class MemoryRouteStore implements RouteStore {
  private readonly routes = new Map<string, TypeSlots<Route>>();
  private readonly online = new Map<string, Set<string>>();

  async register(userId: string, clientType: number, route: Route): Promise<Route | undefined> {
    const slots = this.routes.get(userId);
    if (!slots) {
      this.routes.set(userId, [clientType, route]); // exact size: [] + push reserves 17 slots
      return undefined;
    }
    return slotSet(slots, clientType, route);
  }

  async unregister(userId: string, clientType: number, connId: string): Promise<void> {
    const slots = this.routes.get(userId);
    if (!slots || slotGet(slots, clientType)?.connId !== connId) return;
    slotDelete(slots, clientType);
    if (slots.length === 0) this.routes.delete(userId);
  }

  async lookup(userId: string): Promise<Map<number, Route>> {
    const slots = this.routes.get(userId);
    return new Map(slots ? slotEntries(slots) : []);
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
