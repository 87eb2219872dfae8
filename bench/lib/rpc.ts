// Request/reply over the fork() IPC channel between a driver and its children: a reply carries its
// request's id, an unsolicited message `event` instead. Every child answers `loop` and `exit`.

import { type ChildProcess, fork } from 'node:child_process';
import { watchLoop } from './procstat.js';

export type Request = { id: number; cmd: string } & Record<string, unknown>;
type Reply = { id: number; result?: unknown; error?: string };
export type EventMessage = { event: string } & Record<string, unknown>;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Every child this process started that may still run: killed when the driver exits. */
export const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** The parent side: sends requests to a child and resolves their replies. */
export class RpcClient {
  private nextId = 1;
  private readonly pending = new Map<number, (r: Reply) => void>();
  private readonly listeners = new Set<(m: EventMessage) => void>();

  constructor(
    readonly child: ChildProcess,
    readonly name: string,
  ) {
    child.on('message', (m: Reply | EventMessage) => {
      if ('event' in m) for (const l of [...this.listeners]) l(m);
      else this.pending.get(m.id)?.(m);
    });
    child.on('exit', (code, signal) => {
      const why = `exited (${code ?? signal})`;
      for (const p of this.pending.values()) p({ id: 0, error: why });
      for (const l of [...this.listeners]) l({ event: 'exit', why });
    });
  }

  onEvent(listener: (m: EventMessage) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  call<T>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 120_000): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const settle = (r: Reply) => {
        clearTimeout(timer);
        this.pending.delete(id);
        if (r.error === undefined) resolve(r.result as T);
        else reject(new Error(`${this.name}: ${cmd}: ${r.error}`));
      };
      const timer = setTimeout(() => settle({ id, error: `timed out after ${timeoutMs} ms` }), timeoutMs);
      this.pending.set(id, settle);
      this.child.send({ id, cmd, ...args } satisfies Request);
    });
  }

  /** Resolves with the first event named `name`; rejects when the child exits first or after `timeoutMs`. */
  once(name: string, timeoutMs = 60_000): Promise<EventMessage> {
    return new Promise((resolve, reject) => {
      const end = (m?: EventMessage) => {
        clearTimeout(timer);
        off();
        if (m?.event === name) resolve(m);
        else reject(new Error(`${this.name}: ${m?.why ?? `nothing in ${timeoutMs} ms`} before "${name}"`));
      };
      const timer = setTimeout(end, timeoutMs);
      const off = this.onEvent((m) => (m.event === name || m.event === 'exit') && end(m));
    });
  }

  /** Sends `cmd` (the child's exit or stop command), waits for the exit; SIGKILL after `ms`. */
  stop(cmd = 'exit', ms = 10_000): Promise<void> {
    return stopChild(this.child, () => this.call(cmd, {}, ms * 3).catch(() => this.child.kill()), ms);
  }
}

/** Asks a child to exit (`ask`) unless it did, waits for the exit; SIGKILL after `ms`. */
export async function stopChild(child: ChildProcess, ask: () => unknown, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await ask();
  await Promise.race([exited, sleep(ms).then(() => child.kill('SIGKILL'))]);
}

/** Forks a benchmark child (its stdout on our stderr: stdout is the report's) once it is ready. */
export async function forkChild(script: URL, name: string, o: { execArgv?: string[] } = {}) {
  const child = fork(script, [], { execArgv: o.execArgv ?? [], stdio: ['ignore', 2, 2, 'ipc'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const rpc = new RpcClient(child, name);
  await rpc.once('ready', 60_000);
  return rpc;
}

/** The child side: dispatches requests to handlers and sends back their results; then `ready`. */
export function serveRequests(handlers: Record<string, (req: Request) => unknown>): void {
  // Watched from the first `loop` only: the delay histogram's timer costs an idle process CPU.
  let loop: ReturnType<typeof watchLoop> | undefined;
  const all: Record<string, (req: Request) => unknown> = {
    loop: () => {
      loop ??= watchLoop();
      return loop.take();
    },
    exit: () => {
      setTimeout(() => process.exit(0), 20);
      return true;
    },
    ...handlers,
  };
  process.on('message', (req: Request) => {
    const handler = all[req.cmd] ?? (() => Promise.reject(new Error(`unknown command ${req.cmd}`)));
    Promise.resolve(req)
      .then(handler)
      .then(
        (result) => process.send?.({ id: req.id, result } satisfies Reply),
        (err: Error) => process.send?.({ id: req.id, error: err.stack ?? String(err) } satisfies Reply),
      );
  });
  // The parent going away must not leave a child holding thousands of sockets.
  process.on('disconnect', () => process.exit(0));
  emit('ready');
}

export function emit(event: string, payload: Record<string, unknown> = {}): void {
  process.send?.({ event, ...payload } satisfies EventMessage);
}
