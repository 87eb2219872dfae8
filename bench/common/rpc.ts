// Request/reply over the fork() IPC channel between a benchmark driver and its child processes
// (server, device processes, pusher): a request carries an id and the child answers with the same
// id; unsolicited messages carry `event` instead. Plus the percentile helpers every process uses.
// Shared by bench/push and bench/cluster.

import type { ChildProcess } from 'node:child_process';

export interface Request {
  id: number;
  cmd: string;
  [key: string]: unknown;
}

interface Reply {
  id: number;
  result?: unknown;
  error?: string;
}

export interface EventMessage {
  event: string;
  [key: string]: unknown;
}

/** The parent side: sends requests to a child and resolves their replies. */
export class RpcClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private readonly listeners: Array<(m: EventMessage) => void> = [];

  constructor(
    readonly child: ChildProcess,
    readonly name: string,
  ) {
    child.on('message', (m: Reply | EventMessage) => {
      if ('event' in m) {
        for (const l of [...this.listeners]) l(m);
        return;
      }
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error !== undefined) p.reject(new Error(`${name}: ${m.error}`));
      else p.resolve(m.result);
    });
    child.on('exit', (code, signal) => {
      for (const p of this.pending.values()) p.reject(new Error(`${name} exited (${code ?? signal})`));
      this.pending.clear();
    });
  }

  onEvent(listener: (m: EventMessage) => void): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  call<T>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 120_000): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: ${cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ id, cmd, ...args } satisfies Request);
    });
  }

  /** Resolves with the first event named `name`. */
  once(name: string, timeoutMs = 60_000): Promise<EventMessage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`${this.name}: no "${name}" within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.onEvent((m) => {
        if (m.event !== name) return;
        clearTimeout(timer);
        off();
        resolve(m);
      });
      this.child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited (${code ?? signal}) before "${name}"`));
      });
    });
  }
}

/** The child side: dispatches requests to handlers and sends back their results. */
export function serveRequests(handlers: Record<string, (req: Request) => unknown>): void {
  process.on('message', (req: Request) => {
    const handler = handlers[req.cmd];
    if (!handler) {
      process.send?.({ id: req.id, error: `unknown command ${req.cmd}` } satisfies Reply);
      return;
    }
    Promise.resolve()
      .then(() => handler(req))
      .then(
        (result) => process.send?.({ id: req.id, result } satisfies Reply),
        (err: unknown) =>
          process.send?.({
            id: req.id,
            error: err instanceof Error ? (err.stack ?? err.message) : String(err),
          } satisfies Reply),
      );
  });
  // The parent going away must not leave a child holding thousands of sockets.
  process.on('disconnect', () => process.exit(0));
}

/** Sends an unsolicited message to the parent. */
export function emit(event: string, payload: Record<string, unknown> = {}): void {
  process.send?.({ event, ...payload } satisfies EventMessage);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export const round = (x: number, digits = 0): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

/** Latency percentiles, ms. */
export interface Percentiles {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/** Percentiles of the first `n` values of `v` (sorted in place). */
export function percentiles(v: Float64Array, n = v.length): Percentiles {
  if (n === 0) return { n: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 };
  const s = v.subarray(0, n).sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += s[i]!;
  const at = (q: number) => round(s[Math.min(n - 1, Math.floor(q * n))]!, 3);
  return {
    n,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    p999: at(0.999),
    max: round(s[n - 1]!, 3),
    mean: round(sum / n, 3),
  };
}
