/**
 * Something with a deadline in a {@link DeadlineQueue}. The links are the queue's: an item is in
 * at most one queue at a time, and holds no allocation of its own for it (a request is one object,
 * not an object plus a timer plus a node).
 */
export abstract class Deadline {
  /** @internal when the item expires, ms on the queue's clock */
  deadline = 0;
  /** @internal the queue's links */
  dlPrev: Deadline | null = null;
  /** @internal */
  dlNext: Deadline | null = null;
  /** @internal the lane holding the item, null when not queued */
  dlLane: Lane | null = null;

  /** The deadline passed. The item is already out of the queue; it may re-add itself. */
  abstract expire(now: number): void;
}

/** One lane: items whose deadlines were set from the same duration, in deadline order. */
class Lane {
  head: Deadline | null = null;
  tail: Deadline | null = null;
  constructor(readonly key: number) {}
}

/**
 * Deadlines for many short-lived requests behind one interval (ioredis gives each command its own
 * timer; at tens of thousands of pushes a second that is a timer, a closure and GC per push).
 *
 * Not the {@link TimerWheel}: the wheel never removes an item, which suits long-lived connections
 * re-checked on every tick, but would keep every completed request reachable until its deadline
 * (seconds of pushes promoted to the old generation). Here an item leaves in O(1) when it
 * completes. Items are kept in lanes, one per duration ("requests of timeout 3000"): items of one
 * lane are added in (almost) deadline order, so an insert walks back from the tail a step or none,
 * and a sweep pops each lane's due head until the first item not yet due.
 *
 * The interval holds the process only while items wait (a pending deadline is a promise to
 * answer). Once the queue empties it is unref'd, and it stops at the first sweep that finds the
 * queue still empty, which also drops empty lanes: an idle queue costs nothing and keeps no
 * process alive. Stopping at once instead, with one request in flight at a time, made a new
 * interval, a new lane and a re-made Map table per request (util/int-map.ts says what a re-made
 * table keeps alive).
 */
export class DeadlineQueue {
  private readonly lanes = new Map<number, Lane>();
  private timer: NodeJS.Timeout | undefined;
  private count = 0;

  /**
   * @param tickMs sweep interval: an item expires at most this late.
   * @param clock ms; tests pass a fake one and call {@link sweep} themselves.
   */
  constructor(
    private readonly tickMs: number,
    // Read Date.now at each call, not once: a test that fakes Date fakes it for both sides.
    readonly clock: () => number = () => Date.now(),
    private readonly autoStart = true,
  ) {}

  /** Items waiting. */
  get size(): number {
    return this.count;
  }

  /**
   * Queues `item` to expire at `deadline`. `lane` groups items whose deadlines come from the same
   * duration (a request's timeout): pass that duration. An item already queued is moved.
   */
  add(item: Deadline, deadline: number, lane: number): void {
    if (item.dlLane) this.remove(item);
    item.deadline = deadline;
    let l = this.lanes.get(lane);
    if (!l) {
      l = new Lane(lane);
      this.lanes.set(lane, l);
    }
    item.dlLane = l;
    let after = l.tail;
    while (after && after.deadline > deadline) after = after.dlPrev;
    if (after) {
      item.dlPrev = after;
      item.dlNext = after.dlNext;
      if (after.dlNext) after.dlNext.dlPrev = item;
      else l.tail = item;
      after.dlNext = item;
    } else {
      item.dlPrev = null;
      item.dlNext = l.head;
      if (l.head) l.head.dlPrev = item;
      else l.tail = item;
      l.head = item;
    }
    if (this.count++ === 0 && this.autoStart) {
      if (this.timer) this.timer.ref();
      else this.timer = setInterval(() => this.sweep(), this.tickMs);
    }
  }

  /** Takes `item` out (it completed): O(1), and harmless when it is not queued. */
  remove(item: Deadline): void {
    const l = item.dlLane;
    if (!l) return;
    if (item.dlPrev) item.dlPrev.dlNext = item.dlNext;
    else l.head = item.dlNext;
    if (item.dlNext) item.dlNext.dlPrev = item.dlPrev;
    else l.tail = item.dlPrev;
    item.dlPrev = item.dlNext = null;
    item.dlLane = null;
    if (--this.count === 0) this.timer?.unref();
  }

  /** Expires every item whose deadline is at or before the clock. */
  sweep(): void {
    const now = this.clock();
    if (this.count === 0) {
      this.lanes.clear();
      return this.idle();
    }
    for (const l of [...this.lanes.values()]) {
      if (l.head === null) {
        this.lanes.delete(l.key);
        continue;
      }
      while (l.head && l.head.deadline <= now) {
        const item = l.head;
        this.remove(item);
        try {
          item.expire(now);
        } catch (err) {
          // One item's failure must not stop the others' deadlines.
          process.nextTick(() => {
            throw err;
          });
        }
      }
    }
  }

  /** Every item still queued, taken out (the owner is stopping and settles them itself). */
  drain(): Deadline[] {
    const out: Deadline[] = [];
    for (const l of [...this.lanes.values()]) {
      while (l.head) {
        out.push(l.head);
        this.remove(l.head);
      }
    }
    this.lanes.clear();
    this.idle();
    return out;
  }

  private idle(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
