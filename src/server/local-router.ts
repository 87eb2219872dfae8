import type { Connection } from '../connection/index.js';

/**
 * Who is connected here: user → client type → connection, at most one connection per
 * (user, client type) (mpush-wire §8). Counts are kept, not computed.
 */
export class LocalRouter {
  private readonly users = new Map<string, Map<number, Connection>>();
  private bound = 0;

  /**
   * Binds `conn` to `conn.userId` for its client type.
   * @returns the connection it displaces (to be kicked), if any.
   */
  bind(conn: Connection): Connection | undefined {
    let byType = this.users.get(conn.userId);
    if (!byType) {
      byType = new Map();
      this.users.set(conn.userId, byType);
    }
    const previous = byType.get(conn.clientType);
    if (previous === conn) return undefined;
    byType.set(conn.clientType, conn);
    if (!previous) this.bound++;
    return previous;
  }

  /** Removes `conn` if it is the one bound for its user and type. True when it was. */
  unbind(conn: Connection, userId = conn.userId): boolean {
    const byType = this.users.get(userId);
    if (!byType || byType.get(conn.clientType) !== conn) return false;
    byType.delete(conn.clientType);
    if (byType.size === 0) this.users.delete(userId);
    this.bound--;
    return true;
  }

  get(userId: string, clientType: number): Connection | undefined {
    return this.users.get(userId)?.get(clientType);
  }

  /** Every bound connection of a user. */
  connectionsOf(userId: string): Connection[] {
    const byType = this.users.get(userId);
    return byType ? [...byType.values()] : [];
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
    for (const byType of this.users.values()) yield* byType.values();
  }
}
