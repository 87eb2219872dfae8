// Request/reply over the fork() IPC channel between a benchmark driver and its child processes
// (server, device fleets, pusher): a request carries an id and the child answers with the same id;
// unsolicited messages carry `event` instead. Every child also answers `loop` (its GC and event-loop
// delay since the last `loop`) and `exit`.

import { type ChildProcess, fork } from 'node:child_process';
import { watchLoop } from './procstat.js';

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

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Every child this process forked (or spawned) that is still running: killed if the driver fails. */
export const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

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
      const done = (settle: () => void) => {
        clearTimeout(timer);
        settle();
      };
      this.pending.set(id, {
        resolve: (v) => done(() => resolve(v as T)),
        reject: (e) => done(() => reject(e)),
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

  /** Sends `cmd` (the child's exit or stop command), waits for the exit; SIGKILL after `ms`. */
  async stop(cmd = 'exit', ms = 10_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    await this.call(cmd, {}, ms * 3).catch(() => this.child.kill());
    await Promise.race([exited, sleep(ms).then(() => this.child.kill('SIGKILL'))]);
  }
}

/**
 * Forks a benchmark child (its stdout goes to our stderr: stdout carries only the report) and
 * waits for its `ready` event.
 */
export async function forkChild(
  script: URL,
  name: string,
  opts: { execArgv?: string[]; env?: Record<string, string> } = {},
): Promise<RpcClient> {
  const child = fork(script, [], {
    execArgv: opts.execArgv ?? [],
    stdio: ['ignore', 2, 2, 'ipc'],
    env: { ...process.env, ...opts.env },
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const rpc = new RpcClient(child, name);
  await rpc.once('ready', 60_000);
  return rpc;
}

/** The child side: dispatches requests to handlers and sends back their results; then `ready`. */
export function serveRequests(handlers: Record<string, (req: Request) => unknown>): void {
  const loop = watchLoop();
  const all: Record<string, (req: Request) => unknown> = {
    loop: () => loop.take(),
    exit: () => {
      setTimeout(() => process.exit(0), 20);
      return true;
    },
    ...handlers,
  };
  process.on('message', (req: Request) => {
    const handler = all[req.cmd];
    Promise.resolve()
      .then(() => {
        if (!handler) throw new Error(`unknown command ${req.cmd}`);
        return handler(req);
      })
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
  emit('ready');
}

/** Sends an unsolicited message to the parent. */
export function emit(event: string, payload: Record<string, unknown> = {}): void {
  process.send?.({ event, ...payload } satisfies EventMessage);
}
