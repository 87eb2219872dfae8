import type { DeadlineQueue } from '../../util/deadline-queue.js';
import { type ChannelHost, GatewayChannel, type GatewayChannelOptions } from './gateway-channel.js';
import type { PushLogger } from './types.js';

/** Someone waiting for a connection of a pool (a request not yet written): none is up yet, or every one is congested. */
export interface PoolWaiter {
  /** A connection is up: write on it now. */
  onChannel(ch: GatewayChannel): void;
  /** No connection could be had. */
  onUnavailable(reason: string): void;
}

export interface GatewayPoolOptions extends GatewayChannelOptions {
  /** Connections kept to this gateway; requests go round-robin over those that are up. */
  connectionsPerGateway: number;
  /** First reconnect delay after a failure, ms; it doubles per failure up to `reconnectMaxMs`. */
  reconnectMinMs: number;
  reconnectMaxMs: number;
}

/** Where the pools of one sender keep their deadlines and report. */
export interface PoolHost {
  readonly deadlines: DeadlineQueue;
  readonly log: PushLogger;
}

/**
 * The connections to one gateway. Requests take the next connection that is up (round-robin); a
 * request finding none waits for the attempt in progress (or starts one). A connection that fails
 * is parked for a backoff (doubling from `reconnectMinMs` to `reconnectMaxMs`, with jitter so that
 * many clients of a restarted node do not come back in one wave); while every connection of the
 * pool is parked, requests fail at once rather than wait on a gateway known to be down.
 *
 * An `eager` pool (a configured gateway) reconnects when its backoff ends; any other pool (a node
 * a route pointed at) reconnects on its next request.
 */
export class GatewayPool implements ChannelHost {
  readonly channels: GatewayChannel[];
  private next = 0;
  private readonly waiters = new Set<PoolWaiter>();
  private lastError = '';
  private closed = false;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly opts: GatewayPoolOptions,
    private readonly owner: PoolHost,
    private readonly eager: boolean,
  ) {
    this.address = `${host}:${port}`;
    const n = Math.max(1, opts.connectionsPerGateway);
    this.channels = Array.from({ length: n }, () => new GatewayChannel(host, port, opts, this));
  }

  /** `host:port` */
  readonly address: string;

  get deadlines(): DeadlineQueue {
    return this.owner.deadlines;
  }

  get log(): PushLogger {
    return this.owner.log;
  }

  /** Some connection is up. */
  get live(): boolean {
    for (const ch of this.channels) if (ch.connected) return true;
    return false;
  }

  /** A connection that is up and not congested, round-robin; null when none is. */
  pick(): GatewayChannel | null {
    const chs = this.channels;
    const n = chs.length;
    for (let i = 0; i < n; i++) {
      const ch = chs[(this.next + i) % n]!;
      if (ch.connected && !ch.congested) {
        this.next = (this.next + i + 1) % n;
        return ch;
      }
    }
    return null;
  }

  /** Connects every idle connection (at start, or to warm a pool). */
  open(): void {
    if (this.closed) return;
    for (const ch of this.channels) if (ch.state === 'idle') ch.connect();
  }

  /**
   * Hands `w` a connection that is up, now or once one comes up; or tells it none can be had
   * (every connection is parked after a failure, or the attempt it waited for failed).
   */
  acquire(w: PoolWaiter): void {
    if (this.closed) return w.onUnavailable('push sender stopped');
    const ch = this.pick();
    if (ch) return w.onChannel(ch);
    let trying = false;
    for (const c of this.channels) {
      if (c.state === 'idle') c.connect();
      // Up but congested: it drains (or its drain deadline drops it), and the waiters go on.
      if (c.state === 'connecting' || c.connected) trying = true;
    }
    if (!trying) return w.onUnavailable(this.unavailable());
    this.waiters.add(w);
  }

  /** `w` no longer waits (its deadline passed). */
  release(w: PoolWaiter): void {
    this.waiters.delete(w);
  }

  private unavailable(): string {
    return `gateway ${this.address} unavailable (reconnecting): ${this.lastError || 'not connected'}`;
  }

  /** @internal ChannelHost */
  channelUp(_ch: GatewayChannel): void {
    if (this.waiters.size === 0) return;
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) {
      const ch = this.pick();
      if (ch) w.onChannel(ch);
      else this.waiters.add(w); // went down again inside an earlier waiter's write
    }
  }

  /** @internal ChannelHost */
  channelDown(ch: GatewayChannel, reason: string, wasUp: boolean): void {
    if (this.closed) return;
    if (reason === '') {
      // A backoff ended. Reconnect now when this pool keeps its connections, or someone waits.
      if (this.eager || this.waiters.size > 0) ch.connect();
      return;
    }
    this.lastError = reason;
    if (!wasUp) this.log.warn('gateway connect failed', { gateway: this.address, reason });
    else this.log.warn('gateway connection lost', { gateway: this.address, reason });
    ch.backoff(this.deadlines.clock() + this.delay(ch.failures));
    if (this.waiters.size === 0) return;
    for (const c of this.channels) if (c.state === 'connecting' || c.connected) return;
    // Nothing up and nothing trying: whoever waits learns now, not at its deadline.
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w.onUnavailable(reason);
  }

  /** Backoff after `failures` consecutive failures: doubling, capped, jittered to 50-100 %. */
  private delay(failures: number): number {
    const base = Math.min(
      this.opts.reconnectMaxMs,
      this.opts.reconnectMinMs * 2 ** Math.max(0, failures - 1),
    );
    return Math.round(base / 2 + (Math.random() * base) / 2);
  }

  /** Closes every connection; requests on them and waiters fail with `reason`. */
  close(reason = 'push sender stopped'): void {
    this.closed = true;
    for (const ch of this.channels) ch.close(reason);
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w.onUnavailable(reason);
  }
}
