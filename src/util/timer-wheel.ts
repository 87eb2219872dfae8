import type { DeadlineQueue } from './deadline-queue.js';

/**
 * One timer for many deadlines. Items are filed in buckets by due tick; a single interval walks
 * the due buckets. Scheduling is O(1) and nothing is ever removed: an item whose deadline moved
 * or that was closed is simply re-checked (or skipped) when its bucket comes due. This is what
 * holds 100k connections' heartbeats and deadlines without 100k timers. Short-lived requests
 * (ack timeouts) belong in a {@link DeadlineQueue} instead, which lets a finished one go at once.
 */
export class TimerWheel<T> {
  private readonly buckets = new Map<number, T[]>();
  private readonly tickMs: number;
  private timer: NodeJS.Timeout | undefined;
  private lastTick: number;
  /** Coarse clock, updated every tick: cheap to read on the hot path. */
  now: number;

  /**
   * @param onDue called for each item whose bucket came due, with the current coarse time.
   * @param clock the time source; tests may pass a fake one and call {@link advance}.
   */
  constructor(
    tickMs: number,
    private readonly onDue: (item: T, now: number) => void,
    private readonly clock: () => number = Date.now,
  ) {
    this.tickMs = tickMs;
    this.now = clock();
    this.lastTick = Math.floor(this.now / tickMs);
  }

  /** The wheel's clock read now, not the coarse {@link now}. */
  exactNow(): number {
    return this.clock();
  }

  /** Starts the interval (unref'd: it never keeps the process alive). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.advance(), this.tickMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Files `item` to be checked at (or just after) `atMs`. */
  schedule(item: T, atMs: number): void {
    const tick = Math.max(Math.ceil(atMs / this.tickMs), this.lastTick + 1);
    const bucket = this.buckets.get(tick);
    if (bucket) bucket.push(item);
    else this.buckets.set(tick, [item]);
  }

  /** Items waiting, counting duplicates and closed ones not yet skipped. */
  get size(): number {
    let n = 0;
    for (const b of this.buckets.values()) n += b.length;
    return n;
  }

  /** Reads the clock and runs every bucket that came due. */
  advance(): void {
    this.now = this.clock();
    const current = Math.floor(this.now / this.tickMs);
    for (let t = this.lastTick + 1; t <= current; t++) {
      // Advance first: an item rescheduled into the past from inside onDue lands in the next
      // tick, never in a bucket this loop has already passed.
      this.lastTick = t;
      const bucket = this.buckets.get(t);
      if (!bucket) continue;
      this.buckets.delete(t);
      for (const item of bucket) {
        try {
          this.onDue(item, this.now);
        } catch (err) {
          // One item's failure must not stop the others' checks.
          process.nextTick(() => {
            throw err;
          });
        }
      }
    }
    this.lastTick = Math.max(this.lastTick, current);
  }
}
