// Request/reply over the fork() IPC channel, shared by the bench driver and its child processes.
// A request carries an id; the child answers with the same id. Unsolicited messages (progress) carry
// `event` instead.

import type { ChildProcess } from 'node:child_process';

export interface Request {
  id: number;
  cmd: string;
  [key: string]: unknown;
}

export interface Reply {
  id: number;
  result?: unknown;
  error?: string;
}

export interface EventMessage {
  event: string;
  [key: string]: unknown;
}

/** process.memoryUsage(), in bytes. */
export interface MemorySample {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

/** What a server child (mpush or bare) reports for `{cmd: 'stats'}`. */
export interface ServerStats {
  /** Epoch ms (fractional) when sampled. */
  at: number;
  memory: MemorySample;
  /** process.cpuUsage(), µs. */
  cpu: { user: number; system: number };
  /** Event-loop utilisation since the process started (performance.eventLoopUtilization()). */
  elu: { idle: number; active: number; utilization: number };
  connections: number;
  bound: number;
  counters: Record<string, unknown>;
}

/** Fractional epoch milliseconds, comparable across processes on one machine. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
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
        for (const l of this.listeners) l(m);
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

  onEvent(listener: (m: EventMessage) => void): void {
    this.listeners.push(listener);
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

  /** Resolves with the first event named `name` (and its payload). */
  once(name: string, timeoutMs = 60_000): Promise<EventMessage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.name}: no "${name}" within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const l = (m: EventMessage) => {
        if (m.event !== name) return;
        clearTimeout(timer);
        const i = this.listeners.indexOf(l);
        if (i >= 0) this.listeners.splice(i, 1);
        resolve(m);
      };
      this.listeners.push(l);
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
            error: err instanceof Error ? err.message : String(err),
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

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Memory after a full collection. Two gc passes with a pause between them let weak callbacks and
 * finalisers (native handles freed from JS objects) run before the second pass.
 */
export async function measureMemory(): Promise<MemorySample> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    await sleep(100);
    gc();
    await sleep(100);
  }
  const m = process.memoryUsage();
  return {
    rss: m.rss,
    heapTotal: m.heapTotal,
    heapUsed: m.heapUsed,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
  };
}

export function memoryNow(): MemorySample {
  const m = process.memoryUsage();
  return {
    rss: m.rss,
    heapTotal: m.heapTotal,
    heapUsed: m.heapUsed,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
  };
}

export { sleep };
