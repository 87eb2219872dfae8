import type { Packet } from '../../protocol/index.js';
import { Deadline, type DeadlineQueue } from '../../util/deadline-queue.js';
import type { GatewayChannel, ReplyHandler } from './gateway-channel.js';
import type { GatewayPool, PoolWaiter } from './gateway-pool.js';
import { decodeReply } from './gateway-reply.js';

/** How one gateway request ended. */
export type CallOutcome =
  | { ok: true; data: string }
  | {
      ok: false;
      reason: string;
      /** The gateway's ERROR code, when it answered one. */
      code?: number;
      /** No reply within the deadline. */
      timeout?: boolean;
      /** The request reached the wire (a resend could repeat it). */
      written: boolean;
    };

/**
 * One request/reply on a gateway that is not a push to a user: a route query, a broadcast, a
 * broadcast control. It has its own deadline, set when it is made, and ends exactly once: by the
 * reply, the connection's loss, the pool having no connection, its deadline, or {@link abort}.
 */
export class GatewayCall extends Deadline implements ReplyHandler, PoolWaiter {
  private ch: GatewayChannel | null = null;
  private sessionId = -1;
  private done = false;
  private tries = 0;

  constructor(
    private readonly deadlines: DeadlineQueue,
    private readonly pool: GatewayPool,
    private readonly cmd: number,
    private readonly flags: number,
    private readonly body: Buffer,
    private readonly onDone: (outcome: CallOutcome) => void,
  ) {
    super();
  }

  get gateway(): string {
    return this.pool.address;
  }

  /** Sends, bounded by `deadline` (ms on the queue's clock); `lane` is the duration it came from. */
  start(deadline: number, lane: number): void {
    this.deadlines.add(this, deadline, lane);
    this.pool.acquire(this);
  }

  /** @internal PoolWaiter */
  onChannel(ch: GatewayChannel): void {
    if (this.done) return;
    const sid = ch.send(this.cmd, this.flags, this.body, this);
    if (sid < 0) {
      // Not written (the connection went down under us): another connection may take it.
      if (++this.tries < this.pool.channels.length) return this.pool.acquire(this);
      return this.finish({ ok: false, reason: `gateway ${ch.address} not writable`, written: false });
    }
    this.ch = ch;
    this.sessionId = sid;
  }

  /** @internal PoolWaiter */
  onUnavailable(reason: string): void {
    this.finish({ ok: false, reason, written: false });
  }

  /** @internal ReplyHandler: throws on a reply that does not decode (the channel fails us then). */
  onReply(p: Packet): void {
    if (this.done) return;
    const r = decodeReply(p);
    this.finish(r.ok ? r : { ok: false, reason: r.reason, code: r.code, written: true });
  }

  /** @internal ReplyHandler */
  onChannelClosed(reason: string): void {
    this.finish({ ok: false, reason, written: true });
  }

  /** @internal Deadline */
  expire(): void {
    this.finish({ ok: false, reason: 'timeout', timeout: true, written: this.ch !== null });
  }

  abort(reason: string): void {
    this.finish({ ok: false, reason, written: this.ch !== null });
  }

  private finish(outcome: CallOutcome): void {
    if (this.done) return;
    this.done = true;
    this.deadlines.remove(this);
    this.pool.release(this);
    if (this.ch && this.sessionId > 0) this.ch.forget(this.sessionId);
    this.onDone(outcome);
  }
}
