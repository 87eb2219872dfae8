// What the device clients wait on: requests answered by the server (bind, unbind, acked pushes), each
// with its own timer (ioredis `Command.setTimeout`), and promises settled by the connection's life
// (connected, bound after the next handshake). Browser-safe: timers are the platform's.

import { DeviceClientError } from './errors.js';

/** A request sent under one packet sessionId, settled by the server's reply or its timer. */
export interface PendingRequest {
  cmd: number;
  /** The user a BIND or UNBIND names. */
  userId: string;
  /** Settles the request's promise with the reply's value (none for BIND, UNBIND and acked pushes). */
  resolve: (value?: unknown) => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

function onRequestTimeout(requests: PendingRequests, id: number): void {
  requests.expire(id);
}

/** Requests in flight by packet sessionId; each fails with `MPUSH_ERR_TIMEOUT` when unanswered in time. */
export class PendingRequests {
  private readonly pending = new Map<number, PendingRequest>();

  constructor(private readonly timeoutMs: number) {}

  /**
   * Registers request `id` (before it is written) and returns its outcome: `R` is what its reply
   * resolves it with. `timeoutMs` defaults to the client's request timeout.
   */
  add<R = void>(id: number, cmd: number, userId: string, timeoutMs = this.timeoutMs): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(onRequestTimeout, timeoutMs, this, id);
      this.pending.set(id, { cmd, userId, resolve: resolve as (value?: unknown) => void, reject, timer });
    });
  }

  /** The request waiting under `id`, left in place. */
  get(id: number): PendingRequest | undefined {
    return this.pending.get(id);
  }

  /** Removes the request waiting under `id` and stops its timer; the caller settles it. */
  take(id: number): PendingRequest | undefined {
    const pending = this.pending.get(id);
    if (pending === undefined) return undefined;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    return pending;
  }

  /** Fails every request (the connection is gone). */
  rejectAll(err: Error): void {
    if (this.pending.size === 0) return;
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const pending of all) {
      clearTimeout(pending.timer);
      pending.reject(err);
    }
  }

  /** @internal The timer of request `id` fired. */
  expire(id: number): void {
    const pending = this.pending.get(id);
    if (pending === undefined) return;
    this.pending.delete(id);
    pending.reject(
      new DeviceClientError('MPUSH_ERR_TIMEOUT', `no reply to command ${pending.cmd} (sessionId ${id})`),
    );
  }
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

/** Promises settled together by one event of the connection (connected, bound). */
export class Waiters {
  private list: Waiter[] = [];

  get size(): number {
    return this.list.length;
  }

  /** A promise settled by the next {@link settle}. */
  add(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.list.push({ resolve, reject });
    });
  }

  /** Like {@link add}, but fails with `MPUSH_ERR_TIMEOUT` (`message`) if not settled within `timeoutMs`. */
  addWithTimeout(timeoutMs: number, message: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        this.list = this.list.filter((w) => w !== waiter);
        reject(new DeviceClientError('MPUSH_ERR_TIMEOUT', message));
      }, timeoutMs);
      this.list.push(waiter);
    });
  }

  /** Resolves every waiter, or rejects them all with `err`. */
  settle(err?: Error): void {
    const waiters = this.list;
    if (waiters.length === 0) return;
    this.list = [];
    for (const w of waiters) {
      if (err === undefined) w.resolve();
      else w.reject(err);
    }
  }
}
