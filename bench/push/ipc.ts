// Request/reply over the fork() IPC channel between bench/push/main.ts and its children (server,
// device processes, pusher). A request carries an id and the child answers with the same id;
// unsolicited messages carry `event` instead. Also the small statistics helpers every process uses.

import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';

export {
  type EventMessage,
  emit,
  type Percentiles,
  percentiles,
  type Request,
  RpcClient,
  round,
  serveRequests,
  sleep,
} from '../common/rpc.js';

import { round } from '../common/rpc.js';

export type Cpu = { user: number; system: number };

/** The soft limit on open files of this process (Linux), or undefined. */
export function maxOpenFiles(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const v = line?.trim().split(/\s{2,}/)[1];
    return v === undefined || v === 'unlimited' ? undefined : Number(v);
  } catch {
    return undefined;
  }
}

const CPU_FIELDS = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal'] as const;

/** The aggregate `cpu` line of /proc/stat, in clock ticks (empty elsewhere). */
export function machineCpuTimes(): Record<string, number> {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const out: Record<string, number> = {};
    CPU_FIELDS.forEach((f, i) => {
      out[f] = v[i] ?? 0;
    });
    return out;
  } catch {
    return {};
  }
}

/** Share of all CPUs' time per state between two samples, percent of the whole machine. */
export function machineCpuShare(
  a: Record<string, number>,
  b: Record<string, number>,
): Record<string, number> {
  let total = 0;
  const d: Record<string, number> = {};
  for (const f of CPU_FIELDS) {
    d[f] = (b[f] ?? 0) - (a[f] ?? 0);
    total += d[f]!;
  }
  const out: Record<string, number> = {};
  if (total <= 0) return out;
  for (const f of CPU_FIELDS) if (d[f]! > 0 || f === 'idle') out[f] = round((100 * d[f]!) / total, 1);
  return out;
}

/** Garbage collection and event-loop delay of one process over a window. */
export interface LoopStats {
  gcCount: number;
  gcMs: number;
  gcMaxMs: number;
  /** GC time by kind (minor = scavenge, major = mark-compact, incremental, weakcb). */
  gcMsByKind: Record<string, number>;
  /** Event-loop delay (perf_hooks.monitorEventLoopDelay, 1 ms resolution). */
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
}

const GC_KIND: Record<number, string> = { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weakcb' };

/** Starts watching GC and event-loop delay in this process; `take()` returns and resets the window. */
export function watchLoop(): { take(): LoopStats } {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  let gcCount = 0;
  let gcMs = 0;
  let gcMaxMs = 0;
  let byKind: Record<string, number> = {};
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcCount++;
      gcMs += e.duration;
      if (e.duration > gcMaxMs) gcMaxMs = e.duration;
      const kind =
        GC_KIND[((e as { detail?: unknown }).detail as { kind?: number } | undefined)?.kind ?? 0] ?? 'other';
      byKind[kind] = (byKind[kind] ?? 0) + e.duration;
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  return {
    take(): LoopStats {
      const out: LoopStats = {
        gcCount,
        gcMs: round(gcMs, 1),
        gcMaxMs: round(gcMaxMs, 1),
        gcMsByKind: Object.fromEntries(Object.entries(byKind).map(([k, v]) => [k, round(v, 1)])),
        loopDelayP99Ms: round(h.percentile(99) / 1e6, 1),
        loopDelayMaxMs: round(h.max / 1e6, 1),
      };
      gcCount = 0;
      gcMs = 0;
      gcMaxMs = 0;
      byKind = {};
      h.reset();
      return out;
    },
  };
}
