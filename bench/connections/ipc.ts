// The connections benchmark's IPC: the request/reply channel of bench/common/rpc.ts, plus the
// memory and server statistics its server children report.

export { type EventMessage, emit, type Request, RpcClient, serveRequests, sleep } from '../common/rpc.js';

import { sleep } from '../common/rpc.js';

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
