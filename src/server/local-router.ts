import type { Connection } from '../connection/index.js';
import { slotDelete, slotGet, slotSet, slotValues, type TypeSlots } from '../util/type-slots.js';

/**
 * Who is connected here: user → client type → connection, at most one connection per
 * (user, client type) (mpush-wire §8). Counts are kept, not computed.
 */
export class LocalRouter {
  private readonly users = new Map<string, TypeSlots<Connection>>();
  private bound = 0;

  /**
   * Binds `conn` to `conn.userId` for its client type.
   * @returns the connection it displaces (to be kicked), if any.
   */
  bind(conn: Connection): Connection | undefined {
    const slots = this.users.get(conn.userId);
    if (!slots) {
      this.users.set(conn.userId, [conn.clientType, conn]); // exact size: [] + push reserves 17 slots
      this.bound++;
      return undefined;
    }
    if (slotGet(slots, conn.clientType) === conn) return undefined;
    const previous = slotSet(slots, conn.clientType, conn);
    if (!previous) this.bound++;
    return previous;
  }

  /** Removes `conn` if it is the one bound for its user and type. True when it was. */
  unbind(conn: Connection, userId = conn.userId): boolean {
    const slots = this.users.get(userId);
    if (!slots || slotGet(slots, conn.clientType) !== conn) return false;
    slotDelete(slots, conn.clientType);
    if (slots.length === 0) this.users.delete(userId);
    this.bound--;
    return true;
  }

  get(userId: string, clientType: number): Connection | undefined {
    const slots = this.users.get(userId);
    return slots ? slotGet(slots, clientType) : undefined;
  }

  /** Every bound connection of a user. */
  connectionsOf(userId: string): Connection[] {
    const slots = this.users.get(userId);
    return slots ? slotValues(slots) : [];
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
    for (const slots of this.users.values()) {
      for (let i = 1; i < slots.length; i += 2) yield slots[i] as Connection;
    }
  }
}
