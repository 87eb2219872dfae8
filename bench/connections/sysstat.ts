// Machine-wide figures for a bench window (Linux): where all CPUs' time went (/proc/stat), and the
// kernel's TCP counters that show a connection storm overflowing a listen queue (/proc/net/netstat).
// Elsewhere both read as empty.

import { readFileSync } from 'node:fs';

const CPU_FIELDS = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal'] as const;

/** The aggregate `cpu` line of /proc/stat, in clock ticks. */
export function cpuTimes(): Record<string, number> {
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

/** Share of all CPUs' time per state between two samples, in percent of the whole machine. */
export function cpuShare(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  let total = 0;
  const d: Record<string, number> = {};
  for (const f of CPU_FIELDS) {
    d[f] = (b[f] ?? 0) - (a[f] ?? 0);
    total += d[f]!;
  }
  const out: Record<string, number> = {};
  if (total <= 0) return out;
  for (const f of CPU_FIELDS) if (d[f]! > 0 || f === 'idle') out[f] = Math.round((1000 * d[f]!) / total) / 10;
  return out;
}

const TCP_COUNTERS = [
  'ListenOverflows',
  'ListenDrops',
  'SyncookiesSent',
  'SyncookiesRecv',
  'TCPSynRetrans',
  'TCPReqQFullDoCookies',
  'TCPLostRetransmit',
  'TCPTimeouts',
];

/** Selected TcpExt counters of /proc/net/netstat. */
export function tcpCounters(): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
    for (let i = 0; i + 1 < lines.length; i += 2) {
      const names = lines[i]!.split(/\s+/);
      const values = lines[i + 1]!.split(/\s+/);
      if (names[0] !== 'TcpExt:') continue;
      for (let j = 1; j < names.length; j++) {
        if (TCP_COUNTERS.includes(names[j]!)) out[names[j]!] = Number(values[j]);
      }
    }
  } catch {
    // not Linux
  }
  return out;
}

/** Counters that changed between two samples. */
export function counterDelta(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(b)) {
    const d = v - (a[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}
