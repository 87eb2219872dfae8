// What the benchmarks measure of processes and of the machine (Linux /proc; elsewhere empty), and,
// inside a process, memory after gc, CPU, GC and event-loop delay.

import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { round } from './report.js';

/** Clock ticks per second of /proc times (USER_HZ: 100 on Linux). */
const HZ = 100;

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** User and system CPU seconds of a process so far, or undefined when it is gone. */
export function procCpu(pid: number): { user: number; sys: number } | undefined {
  const s = read(`/proc/${pid}/stat`);
  // After the comm: state(0) ppid(1) … utime(11) stime(12)
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return s ? { user: Number(f[11]) / HZ, sys: Number(f[12]) / HZ } : undefined;
}

/** Resident set size of a process, bytes. */
export function procRss(pid: number): number | undefined {
  const kb = /VmRSS:\s+(\d+)/.exec(read(`/proc/${pid}/status`))?.[1];
  return kb === undefined ? undefined : Number(kb) * 1024;
}

/** Open file descriptors of a process (our own processes only). */
export function procFds(pid: number): number | undefined {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return undefined;
  }
}

/** Direct children of a process (needs CONFIG_PROC_CHILDREN). */
export const procChildren = (pid: number) =>
  read(`/proc/${pid}/task/${pid}/children`).trim().split(/\s+/).filter(Boolean).map(Number);

export const machine = (extra: Record<string, unknown> = {}) => ({
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model,
  totalMemBytes: os.totalmem(),
  node: process.version,
  maxOpenFiles: Number(/Max open files\s+(\d+)/.exec(read('/proc/self/limits'))?.[1] ?? 0) || null,
  loadAverage: os.loadavg().map((x) => round(x, 2)),
  ...extra,
});

const CPU_FIELDS = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal'];
/** A process of the benchmark whose CPU a window reports, by name; `server`: an mpush-ts node. */
export type Proc = { name: string; pid: number; server?: boolean };

/** The processes and the machine at one instant. */
export function sample(procs: Proc[]) {
  const all = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    const c = /^\d+$/.test(d) ? procCpu(Number(d)) : undefined;
    if (c) all.set(Number(d), c.user + c.sys);
  }
  const v = read('/proc/stat').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const machine = Object.fromEntries(CPU_FIELDS.map((f, i) => [f, v[i] ?? 0]));
  const cpu = new Map(procs.map((p) => [p.name, procCpu(p.pid)]));
  return { wall: performance.now(), procs, cpu, machine, all };
}
type Sample = ReturnType<typeof sample>;

/** Where CPU went between two samples: per process (% of a core), the servers' sum, the machine per
 * state (% of all CPUs), and busy time no process of ours was charged (other load, the kernel's
 * loopback work) as a share of the machine and of one core, with the busiest other processes. */
export function cpuBetween(a: Sample, b: Sample) {
  const wall = (b.wall - a.wall) / 1000;
  const percent: Record<string, number> = {};
  let ours = 0;
  let server = 0;
  for (const p of a.procs) {
    const x = a.cpu.get(p.name);
    const y = b.cpu.get(p.name);
    if (!x || !y) continue;
    percent[p.name] = round((100 * (y.user + y.sys - x.user - x.sys)) / wall, 1);
    ours += y.user + y.sys - x.user - x.sys;
    if (p.server) server += percent[p.name]!;
  }
  const d = Object.fromEntries(CPU_FIELDS.map((f) => [f, b.machine[f]! - a.machine[f]!]));
  const total = Object.values(d).reduce((s, x) => s + x, 0) || 1;
  const machine = Object.fromEntries(
    CPU_FIELDS.filter((f) => d[f]! > 0 || f === 'idle').map((f) => [f, round((100 * d[f]!) / total, 1)]),
  );
  const other = (total - d.idle! - d.iowait!) / HZ - ours;
  const mine = new Set([process.pid, ...a.procs.map((p) => p.pid)]);
  const otherProcesses = [...b.all]
    .map(([pid, y]) => ({ pid, percent: round((100 * (y - (a.all.get(pid) ?? 0))) / wall, 1), cmd: '' }))
    .filter((p) => !mine.has(p.pid) && p.percent >= 5)
    .sort((p, q) => q.percent - p.percent)
    .slice(0, 4)
    .map((p) => ({ ...p, cmd: read(`/proc/${p.pid}/cmdline`).replace(/\0/g, ' ').trim().slice(0, 100) }));
  return {
    seconds: round(wall, 2),
    percent,
    serverPercent: round(server, 1),
    machine,
    machineBusyPercent: round((100 * (total - d.idle! - d.iowait!)) / total, 1),
    otherPercentOfMachine: round((100 * other) / (wall * os.cpus().length), 1),
    otherPercent: round(Math.max(0, (100 * other) / wall), 1),
    otherProcesses,
  };
}

/** This process now: epoch ms (fractional), memory (after gc when `gc`), CPU µs, event-loop use. */
export const processStats = async (gc: boolean) => ({
  at: performance.timeOrigin + performance.now(),
  memory: await memory(gc),
  cpu: process.cpuUsage(),
  elu: performance.eventLoopUtilization(),
});

/** process.memoryUsage() of this process, after a full collection when `gc` (and --expose-gc). */
async function memory(gc: boolean) {
  const collect = (globalThis as { gc?: () => void }).gc;
  // Two passes, a pause between: weak callbacks and finalisers (native handles) run before the second.
  for (let i = 0; gc && collect && i < 2; i++) {
    collect();
    await new Promise((r) => setTimeout(r, 100));
  }
  const { rss, heapTotal, heapUsed, external, arrayBuffers } = process.memoryUsage();
  return { rss, heapTotal, heapUsed, external, arrayBuffers };
}

/** This process's GC and event-loop delay (sampled every 20 ms: a 1 ms timer costs ~2 % of a core);
 * `take()`: CPU so far (µs), and GC and delay since the last `take()`. */
export function watchLoop() {
  const h = monitorEventLoopDelay({ resolution: 20 });
  h.enable();
  let gc = { count: 0, ms: 0, maxMs: 0 };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gc.count++;
      gc.ms += e.duration;
      gc.maxMs = Math.max(gc.maxMs, e.duration);
    }
  }).observe({ entryTypes: ['gc'] });
  const take = () => {
    const { user, system } = process.cpuUsage();
    const out = {
      cpuUs: user + system,
      gcCount: gc.count,
      gcMs: round(gc.ms, 1),
      gcMaxMs: round(gc.maxMs, 1),
      loopDelayP99Ms: round(h.percentile(99) / 1e6, 1),
      loopDelayMaxMs: round(h.max / 1e6, 1),
    };
    gc = { count: 0, ms: 0, maxMs: 0 };
    h.reset();
    return out;
  };
  return { take };
}
export type LoopStats = ReturnType<ReturnType<typeof watchLoop>['take']>;
