import type { Connection } from '../connection/index.js';
import { TimerWheel } from '../util/timer-wheel.js';

/** Told how an awaited ack ended: exactly one of the two, once. */
export interface AckWaiter {
  onAck(): void;
  onAckTimeout(): void;
}

/**
 * What a finished task holds instead of its waiter: a finished task stays filed in the wheel until
 * its deadline tick, and must not keep the push's job (and what that captures) alive until then.
 */
const RELEASED: AckWaiter = { onAck() {}, onAckTimeout() {} };

interface AckTask {
  sessionId: number;
  conn: Connection;
  deadline: number;
  waiter: AckWaiter;
  done: boolean;
}

/**
 * Pushes awaiting a device ACK, keyed by the pushed packet's sessionId (the server's own
 * counter, so unique on this node). A task is registered **before** the push is written, so an
 * ACK that beats the write's completion is never lost (MPush's race: mpush-wire §12). Timeouts
 * run on one timer wheel.
 */
export class AckTracker {
  private readonly tasks = new Map<number, AckTask>();
  private readonly wheel: TimerWheel<AckTask>;

  constructor(tickMs: number, clock?: () => number) {
    this.wheel = new TimerWheel<AckTask>(tickMs, (task, now) => this.due(task, now), clock, true);
    this.wheel.start();
  }

  /** Waits for the ack of packet `sessionId` written to `conn`, until `deadline` (ms). */
  add(sessionId: number, conn: Connection, deadline: number, waiter: AckWaiter): void {
    const task: AckTask = { sessionId, conn, deadline, waiter, done: false };
    this.tasks.set(sessionId, task);
    this.wheel.schedule(task, deadline);
  }

  /** Drops a task whose push could not be written. */
  cancel(sessionId: number): void {
    const task = this.tasks.get(sessionId);
    if (!task) return;
    task.done = true;
    task.waiter = RELEASED;
    this.tasks.delete(sessionId);
  }

  /** An ACK arrived. False when nothing waited for it (late, unknown, or from another connection). */
  ack(conn: Connection, sessionId: number): boolean {
    const task = this.tasks.get(sessionId);
    if (!task || task.conn !== conn) return false;
    task.done = true;
    this.tasks.delete(sessionId);
    const waiter = task.waiter;
    task.waiter = RELEASED;
    waiter.onAck();
    return true;
  }

  get pending(): number {
    return this.tasks.size;
  }

  private due(task: AckTask, now: number): void {
    if (task.done) return;
    if (now < task.deadline) return this.wheel.schedule(task, task.deadline);
    task.done = true;
    this.tasks.delete(task.sessionId);
    task.waiter.onAckTimeout();
  }

  close(): void {
    this.wheel.stop();
    this.tasks.clear();
  }
}
