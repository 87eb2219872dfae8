import type { Connection } from '../connection/index.js';
import { Deadline, DeadlineQueue } from '../util/deadline-queue.js';
import { IntMap } from '../util/int-map.js';

/** Told how an awaited ack ended: exactly one of the two, once. */
export interface AckWaiter {
  onAck(): void;
  onAckTimeout(): void;
}

/** One push awaiting its ack: a single object, its queue links included (no timer, no closure). */
class AckTask extends Deadline {
  constructor(
    readonly sessionId: number,
    readonly conn: Connection,
    readonly waiter: AckWaiter,
    readonly tracker: AckTracker,
  ) {
    super();
  }

  expire(): void {
    this.tracker.expired(this);
  }
}

/**
 * Pushes awaiting a device ACK, keyed by the pushed packet's sessionId (the server's own
 * counter, so unique on this node). A task is registered **before** the push is written, so an
 * ACK that beats the write's completion is never lost (MPush's race: mpush-wire §12).
 *
 * Deadlines live in a {@link DeadlineQueue}, not a timer wheel: an acked task leaves it at once
 * and dies young. Filed in a wheel until its deadline, every push's task (10 s by default) outlived
 * two scavenges and was promoted to the old generation: at 20,000 pushes/s, 200,000 dead tasks
 * held, copied twice each and swept by major GCs.
 */
export class AckTracker {
  /** By sessionId; an IntMap, not a Map, so tasks that come and go one at a time are not promoted. */
  private readonly tasks = new IntMap<AckTask>(1024);
  private readonly queue: DeadlineQueue;

  /**
   * @param tickMs how late a timeout may fire (`push.ackTickMs`).
   * @param clock ms; tests pass a fake one.
   */
  constructor(tickMs: number, clock?: () => number) {
    this.queue = new DeadlineQueue(tickMs, clock);
  }

  /** Waits for the ack of packet `sessionId` written to `conn`, for `timeoutMs`. */
  add(sessionId: number, conn: Connection, timeoutMs: number, waiter: AckWaiter): void {
    const task = new AckTask(sessionId, conn, waiter, this);
    this.tasks.set(sessionId, task);
    this.queue.add(task, this.queue.clock() + timeoutMs, timeoutMs);
  }

  /** Drops a task whose push could not be written. */
  cancel(sessionId: number): void {
    const task = this.tasks.get(sessionId);
    if (!task) return;
    this.tasks.delete(sessionId);
    this.queue.remove(task);
  }

  /** An ACK arrived. False when nothing waited for it (late, unknown, or from another connection). */
  ack(conn: Connection, sessionId: number): boolean {
    const task = this.tasks.get(sessionId);
    if (!task || task.conn !== conn) return false;
    this.tasks.delete(sessionId);
    this.queue.remove(task);
    task.waiter.onAck();
    return true;
  }

  /** Acks awaited. */
  get pending(): number {
    return this.tasks.size;
  }

  /** Tasks the deadline queue holds: the awaited ones only, never a finished one. */
  get queued(): number {
    return this.queue.size;
  }

  /** @internal the queue took `task` out at its deadline. */
  expired(task: AckTask): void {
    // The sessionId may since await another push (the counter wrapped): that task is not this one.
    if (this.tasks.get(task.sessionId) === task) this.tasks.delete(task.sessionId);
    task.waiter.onAckTimeout();
  }

  /** Stops the timer; awaited tasks are dropped unanswered (the node is stopping). */
  close(): void {
    this.queue.drain();
    this.tasks.clear();
  }
}
