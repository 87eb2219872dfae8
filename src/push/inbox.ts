import {
  INBOX_CLIENT_TYPES,
  type InboxEntry,
  type InboxStore,
  type Receipt,
  type ReceiptEvent,
  type StoreOutcome,
} from '../cluster/inbox-store.js';
import type { Config } from '../config/index.js';
import type { Connection } from '../connection/index.js';
import type { Logger } from '../log.js';
import type { Delivery, PushCenter } from './push-center.js';

/** A push that asked to be kept for later (`store: true`), as the gateway or the HTTP API saw it. */
export interface StoreTicket {
  messageId: string;
  userId: string;
  /** The PUSH body the device gets. */
  content: Buffer;
  ackFlags: number;
  /** The push's ack timeout, ms: a replay waits as long. */
  timeoutMs: number;
  /** Seconds; default `inbox.defaultTtlSeconds`. */
  ttlSeconds?: number;
}

/** How the live push to one device type ended, for the inbox. */
export type LiveEnd =
  /** Written with NO_ACK. */
  | 'sent'
  | 'acked'
  /** Offline, not written, or not acked in time: keep it. */
  | 'missed';

/** What the result of a push says of its inbox copy. */
export interface InboxVerdict {
  stored: boolean;
  /** Why it could not be kept (or its delivery could not be recorded): the push result stays as it is. */
  storeError?: string;
}

export interface InboxStats {
  stored: number;
  /** Pushed out by `inbox.maxMessagesPerUser`. */
  dropped: number;
  expired: number;
  /** Stored messages written to a device on bind. */
  replayed: number;
  /** Refused by `inbox.maxMessageBytes`. */
  tooLarge: number;
  /** Store operations that failed or passed `inbox.storeTimeoutMs`. */
  storeFailures: number;
}

/**
 * A step of a stored message, as the inbox sees it happen. `dropped`: pushed out of a full inbox
 * by a newer message (`inbox.maxMessagesPerUser`).
 */
export type InboxEventType = 'stored' | 'delivered' | 'acked' | 'expired' | 'dropped';

/**
 * Told of each step of a `store: true` message (the webhooks listen). Positional arguments, so
 * the inbox allocates nothing for it; absent, the inbox does not call it at all.
 */
export interface InboxEventSink {
  /** `clientType`: the device type it concerns; null for the message as a whole (expiry, no route). */
  onInboxEvent(type: InboxEventType, messageId: string, userId: string, clientType: number | null): void;
}

export interface InboxOptions {
  config: Pick<Config, 'inbox'>;
  log: Logger;
  store: InboxStore;
  push: PushCenter;
  /** Told of stored, delivered, acked, expired and dropped messages. */
  events?: InboxEventSink | undefined;
  clock?: () => number;
}

class StoreTimeout extends Error {}

/** The verdict of every message kept (read only by its callers). */
const STORED: InboxVerdict = Object.freeze({ stored: true });

/** A store call bounded by `inbox.storeTimeoutMs`. */
interface BoundedCall {
  deadline: number;
  /** Answered or timed out. */
  done: boolean;
  reject(err: unknown): void;
}

/**
 * The inbox policy of a node: keeps what a `store: true` push missed, records its receipt, and
 * replays a user's pending messages to each device that binds here (whichever node stored
 * them), before any new push to it. A failing or slow store never holds a live push: every
 * store operation is bounded by `inbox.storeTimeoutMs` and its failure is reported, not thrown.
 */
export class Inbox {
  readonly stats: InboxStats = {
    stored: 0,
    dropped: 0,
    expired: 0,
    replayed: 0,
    tooLarge: 0,
    storeFailures: 0,
  };
  private readonly clock: () => number;
  /** @internal ReplayDelivery reads it. */
  readonly events: InboxEventSink | undefined;
  /**
   * Store calls from `head` on, oldest first (answered ones wait for those before them to go),
   * and the timer for the oldest one's deadline. An array, not a Set: a burst of stores adds and
   * removes thousands a second, and a Set's table churns for it.
   */
  private readonly inflight: BoundedCall[] = [];
  private head = 0;
  private sweepTimer: NodeJS.Timeout | undefined;
  /** Replays reading or writing now, and the binds waiting for one (in bind order) → their attempt. */
  private replaying = 0;
  private readonly waiting = new Map<Connection, number>();

  constructor(private readonly opts: InboxOptions) {
    this.clock = opts.clock ?? (() => Date.now());
    this.events = opts.events;
  }

  private get config(): Config['inbox'] {
    return this.opts.config.inbox;
  }

  /**
   * `p`'s value once `p` and `also` (when given) are both done, or the first failure, or a
   * StoreTimeout once `inbox.storeTimeoutMs` passed. Every call has the same timeout, so the
   * calls in flight are in deadline order and one timer, set for the oldest, serves them all
   * (not a timer per call: a burst of pushes makes thousands). `also`, not Promise.all: a store
   * and its receipt wait on Redis together, with as few objects as can be.
   */
  private bounded<T>(p: Promise<T>, also?: Promise<unknown>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const deadline = performance.now() + this.config.storeTimeoutMs;
      const call: BoundedCall = { deadline, done: false, reject };
      this.inflight.push(call);
      if (!this.sweepTimer) this.armSweep();
      let left = also ? 2 : 1;
      let value: T;
      const part = () => {
        if (--left > 0 || call.done) return;
        call.done = true;
        this.dropAnswered();
        resolve(value);
      };
      const fail = (err: unknown) => {
        if (call.done) return;
        call.done = true;
        this.dropAnswered();
        reject(err);
      };
      p.then((v) => {
        value = v;
        part();
      }, fail);
      also?.then(part, fail);
    });
  }

  /** Moves `head` past the calls already answered; the array is cut once half of it is behind. */
  private dropAnswered(): void {
    const q = this.inflight;
    let h = this.head;
    while (h < q.length && q[h]!.done) h++;
    if (h === q.length) {
      q.length = 0;
      h = 0;
    } else if (h > 1024 && h * 2 > q.length) {
      q.splice(0, h);
      h = 0;
    }
    this.head = h;
  }

  private armSweep(): void {
    const oldest = this.inflight[this.head];
    this.sweepTimer = oldest && setTimeout(this.sweep, Math.max(0, oldest.deadline - performance.now()));
  }

  private readonly sweep = (): void => {
    const now = performance.now();
    const q = this.inflight;
    for (; this.head < q.length; this.head++) {
      const call = q[this.head]!;
      if (call.done) continue;
      if (call.deadline > now) break;
      call.done = true;
      call.reject(new StoreTimeout('inbox store timed out (inbox.storeTimeoutMs)'));
    }
    this.dropAnswered();
    this.armSweep();
  };

  private receiptTtlMs(): number {
    return this.config.receiptTtlSeconds * 1000;
  }

  private record(messageId: string, events: ReceiptEvent[]): Promise<void> {
    return this.opts.store.record(messageId, events, this.receiptTtlMs());
  }

  /** Records without waiting; a failure is counted and logged at debug (a store outage is logged once elsewhere). */
  private recordLater(messageId: string, events: ReceiptEvent[]): void {
    this.bounded(this.record(messageId, events)).catch((err: Error) => {
      this.stats.storeFailures++;
      this.opts.log.debug('receipt not recorded', { messageId, err: err.message });
    });
  }

  /**
   * The live push of `t` to `clientType` (-1: the user had no route at all) ended: a delivered
   * one is marked so that type never gets it again; a missed one is kept for later.
   */
  afterPush(t: StoreTicket, clientType: number, end: LiveEnd): Promise<InboxVerdict> {
    const now = this.clock();
    const ttlMs = (t.ttlSeconds ?? this.config.defaultTtlSeconds) * 1000;
    if (end !== 'missed') return this.afterDelivered(t, clientType, end, now, ttlMs);
    if (t.content.length > this.config.maxMessageBytes) {
      this.stats.tooLarge++;
      return Promise.resolve({ stored: false, storeError: 'content exceeds inbox.maxMessageBytes' });
    }
    const entry: InboxEntry = {
      messageId: t.messageId,
      content: t.content,
      ackFlags: t.ackFlags,
      timeoutMs: t.timeoutMs,
      storedAt: now,
      expiresAt: now + ttlMs,
    };
    const steps: ReceiptEvent[] = [{ userId: t.userId, clientType: null, state: 'stored', at: now }];
    if (clientType >= 0) steps.push({ userId: t.userId, clientType, state: 'stored', at: now });
    // A chain, not an async function: thousands of these wait on Redis at once, and each
    // object one holds is copied by every young-generation GC while it waits.
    return this.bounded(
      this.opts.store.store(t.userId, entry, this.config.maxMessagesPerUser),
      this.record(t.messageId, steps),
    ).then((outcome) => this.kept(t, clientType, outcome, now), this.storeFailed);
  }

  /**
   * A missed push is in the inbox: counts it and tells the events of it and of what it pushed
   * out (a sink that throws makes it a store failure, as in the store itself: never a rejection).
   */
  private kept(t: StoreTicket, clientType: number, outcome: StoreOutcome, now: number): InboxVerdict {
    const events = this.events;
    if (outcome.added) this.stats.stored++;
    try {
      events?.onInboxEvent('stored', t.messageId, t.userId, clientType >= 0 ? clientType : null);
      for (const id of outcome.dropped) {
        this.stats.dropped++;
        this.recordLater(id, [{ userId: t.userId, clientType: null, state: 'dropped', at: now }]);
        events?.onInboxEvent('dropped', id, t.userId, null);
      }
    } catch (err) {
      return this.storeFailed(err);
    }
    return STORED;
  }

  private readonly storeFailed = (err: unknown): InboxVerdict => {
    this.stats.storeFailures++;
    const reason = err instanceof StoreTimeout ? err.message : `inbox store: ${(err as Error).message}`;
    return { stored: false, storeError: reason };
  };

  /** The live push reached `clientType`: that type never gets it from the inbox. */
  private async afterDelivered(
    t: StoreTicket,
    clientType: number,
    end: 'sent' | 'acked',
    now: number,
    ttlMs: number,
  ): Promise<InboxVerdict> {
    const events = this.events;
    if (events) {
      events.onInboxEvent('delivered', t.messageId, t.userId, clientType);
      if (end === 'acked') events.onInboxEvent('acked', t.messageId, t.userId, clientType);
    }
    try {
      await this.bounded(
        this.opts.store.settle(t.userId, clientType, t.messageId, ttlMs),
        this.record(t.messageId, [{ userId: t.userId, clientType, state: end, at: now }]),
      );
      return { stored: false };
    } catch (err) {
      return this.storeFailed(err);
    }
  }

  /**
   * `conn` just bound: writes its user's pending messages for its device type, in order, before
   * any new unicast to it (the push center holds those until the replay is written). At most
   * `inbox.maxConcurrentReplays` run at once; a mass reconnect waits its turn (oldest first), so
   * each read gets its whole `inbox.storeTimeoutMs` instead of timing out in a queue; a read that
   * fails goes to the back of the queue, up to `inbox.replayAttempts` reads.
   */
  replay(conn: Connection): void {
    this.opts.push.beginReplay(conn);
    if (this.replaying < this.config.maxConcurrentReplays) this.startReplay(conn, 1);
    else if (!this.waiting.has(conn)) this.waiting.set(conn, 1);
  }

  private startReplay(conn: Connection, attempt: number): void {
    const { userId, clientType } = conn;
    const push = this.opts.push;
    let again = false;
    this.replaying++;
    this.bounded(this.opts.store.pending(userId, clientType, this.clock()))
      .then(async ({ entries, expired }) => {
        for (const id of expired) {
          this.stats.expired++;
          this.events?.onInboxEvent('expired', id, userId, null);
          this.recordLater(id, [{ userId, clientType: null, state: 'expired', at: this.clock() }]);
        }
        for (const e of entries) {
          if (conn.closed || conn.userId !== userId) return;
          if (conn.backpressured) await new Promise<void>((r) => conn.whenDrained(r));
          if (conn.closed || conn.userId !== userId) return;
          this.stats.replayed++;
          push.deliver(
            conn,
            e.content,
            e.ackFlags,
            e.timeoutMs,
            new ReplayDelivery(this, userId, clientType, e),
          );
        }
      })
      .catch((err: Error) => {
        this.stats.storeFailures++;
        again = attempt < this.config.replayAttempts && !conn.closed && conn.userId === userId;
        if (!again) this.opts.log.warn('inbox replay failed', { userId, attempt, err: err.message });
      })
      .finally(() => {
        this.replaying--;
        // Tried again later: its live pushes stay held behind it.
        if (again) this.waiting.set(conn, attempt + 1);
        else push.endReplay(conn);
        for (const [next, n] of this.waiting) {
          if (this.replaying >= this.config.maxConcurrentReplays) break;
          this.waiting.delete(next);
          if (next.closed) push.endReplay(next);
          else this.startReplay(next, n);
        }
      });
  }

  /**
   * What `userId`'s inbox still holds, oldest first, each with the device types it waits for (the
   * admin console's view). A read only: it asks the store as of time 0, so nothing is expired by
   * it (expiry stays with the replay, which reports it); messages past their time are left out.
   * Bounded by `inbox.storeTimeoutMs`; a store failure rejects.
   */
  async peek(userId: string): Promise<Array<{ entry: InboxEntry; pendingFor: number[] }>> {
    const now = this.clock();
    const byType = await this.bounded(
      Promise.all(INBOX_CLIENT_TYPES.map((t) => this.opts.store.pending(userId, t, 0))),
    );
    const held = new Map<string, { entry: InboxEntry; pendingFor: number[] }>();
    byType.forEach(({ entries }, i) => {
      for (const entry of entries) {
        if (entry.expiresAt <= now) continue;
        const h = held.get(entry.messageId) ?? { entry, pendingFor: [] };
        h.pendingFor.push(INBOX_CLIENT_TYPES[i]!);
        held.set(entry.messageId, h);
      }
    });
    return [...held.values()].sort((a, b) => a.entry.storedAt - b.entry.storedAt);
  }

  /** A message's receipt (bounded by `inbox.storeTimeoutMs`; a store failure rejects). */
  receipt(messageId: string): Promise<Receipt | undefined> {
    return this.bounded(this.opts.store.receipt(messageId));
  }

  /** @internal ReplayDelivery: a replayed message reached its device type. */
  delivered(userId: string, clientType: number, e: InboxEntry, state: 'sent' | 'acked'): void {
    const at = this.clock();
    this.bounded(
      this.opts.store.settle(userId, clientType, e.messageId, Math.max(1, e.expiresAt - at)),
      this.record(e.messageId, [{ userId, clientType, state, at }]),
    ).catch((err: Error) => {
      // Not marked: the device may get it once more on its next bind (it deduplicates by msgId).
      this.stats.storeFailures++;
      this.opts.log.debug('replayed message not settled', { messageId: e.messageId, err: err.message });
    });
  }

  /** @internal ReplayDelivery: written, awaiting its ack; or not acked in time (still kept). */
  note(userId: string, clientType: number, e: InboxEntry, state: 'sent' | 'stored'): void {
    this.recordLater(e.messageId, [{ userId, clientType, state, at: this.clock() }]);
  }
}

/** One stored message written to a device on bind. */
class ReplayDelivery implements Delivery {
  constructor(
    private readonly inbox: Inbox,
    private readonly userId: string,
    private readonly clientType: number,
    private readonly entry: InboxEntry,
  ) {}

  onWritten(final: boolean): void {
    this.inbox.events?.onInboxEvent('delivered', this.entry.messageId, this.userId, this.clientType);
    if (final) this.inbox.delivered(this.userId, this.clientType, this.entry, 'sent');
    else this.inbox.note(this.userId, this.clientType, this.entry, 'sent');
  }

  onAck(): void {
    this.inbox.events?.onInboxEvent('acked', this.entry.messageId, this.userId, this.clientType);
    this.inbox.delivered(this.userId, this.clientType, this.entry, 'acked');
  }

  onAckTimeout(): void {
    // Stays in the inbox: the device gets it again when it binds next.
    this.inbox.note(this.userId, this.clientType, this.entry, 'stored');
  }

  fail(): void {}
}
