import type { EventEmitter } from 'node:events';
import type { Connection } from '../connection/index.js';
import type { ConnectionServerEvents } from '../server/connection-server.js';

/** One closed connection, as the admin console lists it. */
export interface DisconnectRecord {
  /** Ms since epoch. */
  at: number;
  /** The disconnect catalogue's name (protocol/disconnect.ts). */
  reason: string;
  /** Whether the reason tells the device to come back. */
  reconnect: boolean;
  transport: 'tcp' | 'tls' | 'ws';
  /** '' when the connection never bound a user. */
  userId: string;
  clientType: number;
  deviceId: string;
}

/**
 * The last `capacity` disconnects of this node, in a ring: a fixed array written round, so a storm
 * of disconnects costs one small record each and never grows the memory (console.recentDisconnects).
 */
export class RecentDisconnects {
  private readonly ring: DisconnectRecord[] = [];
  private next = 0;
  /** Disconnects seen since start, the forgotten ones included. */
  total = 0;

  constructor(readonly capacity: number) {}

  /**
   * Records every close of `events`' connections. The user is read from the `offline` event that
   * a bound connection's close emits just before `close` (by then the connection has no user).
   */
  watch(events: EventEmitter<ConnectionServerEvents>): void {
    const users = new WeakMap<Connection, string>();
    events.on('offline', (conn, userId) => {
      if (conn.closeReason) users.set(conn, userId);
    });
    events.on('close', (conn, reason) => {
      this.add({
        at: Date.now(),
        reason: reason.name,
        reconnect: reason.reconnect,
        transport: conn.transport.kind,
        userId: users.get(conn) ?? conn.userId,
        clientType: conn.clientType,
        deviceId: conn.deviceId,
      });
    });
  }

  add(record: DisconnectRecord): void {
    this.total++;
    if (this.capacity === 0) return;
    this.ring[this.next] = record;
    this.next = (this.next + 1) % this.capacity;
  }

  /** Newest first. */
  list(): DisconnectRecord[] {
    const n = this.ring.length;
    const out: DisconnectRecord[] = [];
    for (let i = 1; i <= n; i++) out.push(this.ring[(this.next - i + n) % n]!);
    return out;
  }
}
