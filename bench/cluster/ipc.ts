// Request/reply over the fork() IPC channel between bench/cluster/main.ts and its children (device
// processes, pusher), plus the small statistics and /proc helpers the driver uses. The request/reply
// part is bench/common/rpc.ts, shared with bench/push.

import { readdirSync, readFileSync } from 'node:fs';

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

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ: 100 on Linux). */
const HZ = 100;

/** User and system CPU seconds of a process so far, or undefined when it is gone. */
export function procCpu(pid: number): { user: number; sys: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // After the comm: state(0) ppid(1) … utime(11) stime(12)
    return { user: Number(f[11]) / HZ, sys: Number(f[12]) / HZ };
  } catch {
    return undefined;
  }
}

/** user + system CPU seconds of a process so far, or undefined when it is gone. */
export function procCpuSeconds(pid: number): number | undefined {
  const c = procCpu(pid);
  return c && c.user + c.sys;
}

/** CPU seconds of every process on the machine, by pid. */
export function allProcCpu(): Map<number, number> {
  const out = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const pid = Number(d);
    const c = procCpuSeconds(pid);
    if (c !== undefined) out.set(pid, c);
  }
  return out;
}

/** A process's command line, shortened. */
export function procCommand(pid: number, max = 120): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim().slice(0, max);
  } catch {
    return '?';
  }
}

/** Resident set size of a process, bytes. */
export function procRss(pid: number): number | undefined {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('VmRSS:'));
    return line ? Number(line.split(/\s+/)[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
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
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

const CPU_FIELDS = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal'] as const;

/** The aggregate `cpu` line of /proc/stat, in seconds. */
export function machineCpu(): { busy: number; total: number } {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    let total = 0;
    let idle = 0;
    CPU_FIELDS.forEach((f, i) => {
      total += v[i] ?? 0;
      if (f === 'idle' || f === 'iowait') idle += v[i] ?? 0;
    });
    return { busy: (total - idle) / HZ, total: total / HZ };
  } catch {
    return { busy: 0, total: 0 };
  }
}

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

/** Kernel TCP counters that tell of listen-queue overflows and retransmits (/proc/net/netstat). */
export function tcpCounters(): Record<string, number> {
  const want = new Set(['ListenOverflows', 'ListenDrops', 'SyncookiesSent', 'TCPTimeouts', 'TCPSynRetrans']);
  const out: Record<string, number> = {};
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').trim().split('\n');
    for (let i = 0; i + 1 < lines.length; i += 2) {
      const h = lines[i]!.split(/\s+/);
      const v = lines[i + 1]!.split(/\s+/);
      h.forEach((name, j) => {
        if (want.has(name)) out[name] = Number(v[j]);
      });
    }
  } catch {}
  return out;
}
