// What the benchmarks measure of processes and of the machine (Linux; elsewhere the /proc figures
// read as empty): CPU and RSS of a pid, where all CPUs' time went, the kernel's TCP counters that
// show a listen queue overflowing, and, inside a process, memory after gc and GC / event-loop delay.

import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { round } from './report.js';

/** Clock ticks per second of /proc times (USER_HZ: 100 on Linux). */
const HZ = 100;

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** User and system CPU seconds of a process so far, or undefined when it is gone. */
export function procCpu(pid: number): { user: number; sys: number } | undefined {
  const s = read(`/proc/${pid}/stat`);
  if (s === undefined) return undefined;
  // After the comm: state(0) ppid(1) … utime(11) stime(12)
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[11]) / HZ, sys: Number(f[12]) / HZ };
}

/** Resident set size of a process, bytes. */
export function procRss(pid: number): number | undefined {
  const line = read(`/proc/${pid}/status`)
    ?.split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  return line ? Number(line.split(/\s+/)[1]) * 1024 : undefined;
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
export function procChildren(pid: number): number[] {
  return (read(`/proc/${pid}/task/${pid}/children`) ?? '').trim().split(/\s+/).filter(Boolean).map(Number);
}

/** A process's command line, shortened. */
export function procCommand(pid: number, max = 120): string {
  return read(`/proc/${pid}/cmdline`)?.replace(/\0/g, ' ').trim().slice(0, max) ?? '?';
}

/** The soft limit on open files of this process, or undefined. */
export function maxOpenFiles(): number | undefined {
  const line = read('/proc/self/limits')
    ?.split('\n')
    .find((l) => l.startsWith('Max open files'));
  const v = line?.trim().split(/\s{2,}/)[1];
  return v === undefined || v === 'unlimited' ? undefined : Number(v);
}

const CPU_FIELDS = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal'] as const;

/** The aggregate `cpu` line of /proc/stat, in clock ticks. */
function machineTicks(): Record<string, number> {
  const v = (read('/proc/stat') ?? '').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return Object.fromEntries(CPU_FIELDS.map((f, i) => [f, v[i] ?? 0]));
}

const TCP_COUNTERS = new Set([
  'ListenOverflows',
  'ListenDrops',
  'SyncookiesSent',
  'SyncookiesRecv',
  'TCPSynRetrans',
  'TCPReqQFullDoCookies',
  'TCPLostRetransmit',
  'TCPTimeouts',
]);

/** Selected TcpExt counters of /proc/net/netstat. */
export function tcpCounters(): Record<string, number> {
  const out: Record<string, number> = {};
  const lines = (read('/proc/net/netstat') ?? '').split('\n');
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const names = lines[i]!.split(/\s+/);
    const values = lines[i + 1]!.split(/\s+/);
    if (names[0] !== 'TcpExt:') continue;
    names.forEach((n, j) => {
      if (TCP_COUNTERS.has(n)) out[n] = Number(values[j]);
    });
  }
  return out;
}

/** What changed between two counter samples (`zeros`: keep the ones that did not). */
export function counterDelta(
  a: Record<string, number>,
  b: Record<string, number>,
  zeros = false,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(b)) if (zeros || v !== (a[k] ?? 0)) out[k] = v - (a[k] ?? 0);
  return out;
}

/** A process of the benchmark whose CPU a window reports, by name. */
export interface Proc {
  name: string;
  pid: number;
  /** An mpush-ts node: its CPU is the server's. */
  server?: boolean;
}

/** The state of the processes and the machine at one instant. */
export interface Sample {
  wall: number;
  procs: Proc[];
  cpu: Map<string, { user: number; sys: number } | undefined>;
  machine: Record<string, number>;
  all: Map<number, number>;
  tcp: Record<string, number>;
}

export function sample(procs: Proc[]): Sample {
  const all = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const c = procCpu(Number(d));
    if (c) all.set(Number(d), c.user + c.sys);
  }
  const cpu = new Map(procs.map((p) => [p.name, procCpu(p.pid)]));
  return { wall: performance.now(), procs, cpu, machine: machineTicks(), all, tcp: tcpCounters() };
}

/** Where CPU time went between two samples of the same processes. */
export interface CpuWindow {
  seconds: number;
  /** Per process, percent of one core (100 = one core busy all the window). */
  percent: Record<string, number>;
  /** The kernel part of `percent` (loopback TCP, epoll). */
  systemPercent: Record<string, number>;
  /** Sum of `percent` over the processes marked `server`. */
  serverPercent: number;
  /** Share of all CPUs' time per state, percent of the whole machine (/proc/stat). */
  machine: Record<string, number>;
  machineBusyPercent: number;
  /**
   * Machine busy time not charged to a process of the benchmark (something else ran, plus the
   * loopback TCP work the kernel does outside process accounting): percent of the machine, and
   * percent of one core.
   */
  otherPercentOfMachine: number;
  otherPercent: number;
  /** The busiest processes that are not the benchmark's (≥ 5% of a core). */
  otherProcesses: Array<{ pid: number; percent: number; cmd: string }>;
  /** Kernel TCP counters that moved. */
  tcp: Record<string, number>;
}

export function cpuBetween(a: Sample, b: Sample): CpuWindow {
  const wall = (b.wall - a.wall) / 1000;
  const percent: Record<string, number> = {};
  const systemPercent: Record<string, number> = {};
  let ours = 0;
  let server = 0;
  for (const p of a.procs) {
    const x = a.cpu.get(p.name);
    const y = b.cpu.get(p.name);
    if (!x || !y) continue;
    const used = y.user + y.sys - x.user - x.sys;
    percent[p.name] = round((100 * used) / wall, 1);
    systemPercent[p.name] = round((100 * (y.sys - x.sys)) / wall, 1);
    ours += used;
    if (p.server) server += percent[p.name]!;
  }
  const d = Object.fromEntries(CPU_FIELDS.map((f) => [f, (b.machine[f] ?? 0) - (a.machine[f] ?? 0)]));
  const total = Object.values(d).reduce((s, x) => s + x, 0);
  const machine: Record<string, number> = {};
  for (const f of CPU_FIELDS)
    if (total > 0 && (d[f]! > 0 || f === 'idle')) machine[f] = round((100 * d[f]!) / total, 1);
  const busyCoreSec = (total - d.idle! - d.iowait!) / HZ;
  const mine = new Set([process.pid, ...a.procs.map((p) => p.pid)]);
  const otherProcesses: CpuWindow['otherProcesses'] = [];
  for (const [pid, y] of b.all) {
    const pct = round((100 * (y - (a.all.get(pid) ?? 0))) / wall, 1);
    if (!mine.has(pid) && pct >= 5) otherProcesses.push({ pid, percent: pct, cmd: procCommand(pid, 100) });
  }
  return {
    seconds: round(wall, 2),
    percent,
    systemPercent,
    serverPercent: round(server, 1),
    machine,
    machineBusyPercent: total > 0 ? round((100 * (total - d.idle! - d.iowait!)) / total, 1) : 0,
    otherPercentOfMachine: round((100 * (busyCoreSec - ours)) / (wall * os.cpus().length), 1),
    otherPercent: round(Math.max(0, (100 * (busyCoreSec - ours)) / wall), 1),
    otherProcesses: otherProcesses.sort((p, q) => q.percent - p.percent).slice(0, 4),
    tcp: counterDelta(a.tcp, b.tcp),
  };
}

/** process.memoryUsage() without the RSS-only fields, in bytes. */
export interface MemorySample {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

/**
 * Memory of this process, after a full collection when `gc` (and --expose-gc). Two passes with a
 * pause between them let weak callbacks and finalisers (native handles freed from JS objects) run
 * before the second pass.
 */
export async function memory(gc = true): Promise<MemorySample> {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (gc && collect) {
    for (let i = 0; i < 2; i++) {
      collect();
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const { rss, heapTotal, heapUsed, external, arrayBuffers } = process.memoryUsage();
  return { rss, heapTotal, heapUsed, external, arrayBuffers };
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
  let w = { gcCount: 0, gcMs: 0, gcMaxMs: 0, byKind: {} as Record<string, number> };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      w.gcCount++;
      w.gcMs += e.duration;
      w.gcMaxMs = Math.max(w.gcMaxMs, e.duration);
      const kind = GC_KIND[(e as { detail?: { kind?: number } }).detail?.kind ?? 0] ?? 'other';
      w.byKind[kind] = (w.byKind[kind] ?? 0) + e.duration;
    }
  }).observe({ entryTypes: ['gc'] });
  return {
    take(): LoopStats {
      const out: LoopStats = {
        gcCount: w.gcCount,
        gcMs: round(w.gcMs, 1),
        gcMaxMs: round(w.gcMaxMs, 1),
        gcMsByKind: Object.fromEntries(Object.entries(w.byKind).map(([k, v]) => [k, round(v, 1)])),
        loopDelayP99Ms: round(h.percentile(99) / 1e6, 1),
        loopDelayMaxMs: round(h.max / 1e6, 1),
      };
      w = { gcCount: 0, gcMs: 0, gcMaxMs: 0, byKind: {} };
      h.reset();
      return out;
    },
  };
}
