import type { Connection } from '../connection/index.js';
import { slotDelete, slotGet, slotSet, slotValues, type TypeSlots } from '../util/type-slots.js';

/**
 * A user's connections: most users have one device, kept as it is (it knows its client type);
 * two or more are type slots. The single form saves a slot array (64 bytes) per online user.
 */
type Held = Connection | TypeSlots<Connection>;

/**
 * Who is connected here: user → client type → connection, at most one connection per
 * (user, client type) (mpush-wire §8). Counts are kept, not computed. A bound connection's client
 * type does not change (a new identity unbinds first).
 */
export class LocalRouter {
  private readonly users = new Map<string, Held>();
  private bound = 0;

  /**
   * Binds `conn` to `conn.userId` for its client type.
   * @returns the connection it displaces (to be kicked), if any.
   */
  bind(conn: Connection): Connection | undefined {
    const held = this.users.get(conn.userId);
    if (held === undefined) {
      this.users.set(conn.userId, conn);
      this.bound++;
      return undefined;
    }
    if (!Array.isArray(held)) {
      if (held === conn) return undefined;
      if (held.clientType === conn.clientType) {
        this.users.set(conn.userId, conn);
        return held;
      }
      this.users.set(conn.userId, [held.clientType, held, conn.clientType, conn]);
      this.bound++;
      return undefined;
    }
    if (slotGet(held, conn.clientType) === conn) return undefined;
    const previous = slotSet(held, conn.clientType, conn);
    if (!previous) this.bound++;
    return previous;
  }

  /** Removes `conn` if it is the one bound for its user and type. True when it was. */
  unbind(conn: Connection, userId = conn.userId): boolean {
    const held = this.users.get(userId);
    if (held === undefined) return false;
    if (!Array.isArray(held)) {
      if (held !== conn) return false;
      this.users.delete(userId);
    } else {
      if (slotGet(held, conn.clientType) !== conn) return false;
      slotDelete(held, conn.clientType);
      if (held.length === 2) this.users.set(userId, held[1] as Connection);
    }
    this.bound--;
    return true;
  }

  get(userId: string, clientType: number): Connection | undefined {
    const held = this.users.get(userId);
    if (held === undefined || !Array.isArray(held)) return held?.clientType === clientType ? held : undefined;
    return slotGet(held, clientType);
  }

  /** Every bound connection of a user. */
  connectionsOf(userId: string): Connection[] {
    const held = this.users.get(userId);
    if (held === undefined) return [];
    return Array.isArray(held) ? slotValues(held) : [held];
  }

  /** Users with at least one bound connection. */
  get onlineUsers(): number {
    return this.users.size;
  }

  /** Bound connections. */
  get boundConnections(): number {
    return this.bound;
  }

  /** Iterates over every bound connection (broadcast). */
  *all(): IterableIterator<Connection> {
    for (const held of this.users.values()) {
      if (!Array.isArray(held)) yield held;
      else for (let i = 1; i < held.length; i += 2) yield held[i] as Connection;
    }
  }
}
