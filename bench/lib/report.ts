// The figures every benchmark reports and the way it prints them: ONE JSON object on stdout
// (headline fields first), progress lines on stderr. Numbers only: tests never assert on them.

export const round = (x: number, digits = 0): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

/** A progress line on stderr: `[bench/<name> hh:mm:ss] msg`. */
export function logger(name: string): (msg: string) => void {
  return (msg) => process.stderr.write(`[bench/${name} ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

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

/** Per-key sums of count maps (errors by reason, results by kind). */
export function addCounts(maps: Array<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of maps) for (const [k, v] of Object.entries(m)) out[k] = (out[k] ?? 0) + v;
  return out;
}

export const sum = <T>(xs: T[], f: (x: T) => number): number => xs.reduce((a, x) => a + f(x), 0);

/** Prints the report on stdout, the `head` fields first in that order. */
export function printReport(report: Record<string, unknown>, head: string[] = []): void {
  const ordered: Record<string, unknown> = {};
  for (const k of head) if (k in report) ordered[k] = report[k];
  process.stdout.write(`${JSON.stringify({ ...ordered, ...report }, null, 2)}\n`);
}

/** A V8 CPU profile, as the inspector's Profiler.stop returns it. */
export interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  samples: number[];
  timeDeltas: number[];
}

/**
 * Self time per function (top 30) and per file (top 15), as a share of busy (non-idle) time and in
 * µs per unit of work (`per` names the unit's field, e.g. usPerAckedPush).
 */
export function summarizeProfile(prof: CpuProfile, units: number, window: string, per: string) {
  const byNode = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  const byFile = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    const node = byNode.get(prof.samples[i]!);
    const dt = prof.timeDeltas[i + 1] ?? 0; // a sample's time runs until the next one
    if (!node) continue;
    const f = node.callFrame;
    if (f.functionName === '(idle)') {
      idle += dt;
      continue;
    }
    const file = f.url ? f.url.replace(/^.*\/dist\//, 'dist/') : f.functionName;
    const key = `${f.functionName || '(anonymous)'} ${f.url ? `${file}:${f.lineNumber + 1}` : ''}`.trim();
    self.set(key, (self.get(key) ?? 0) + dt);
    byFile.set(file, (byFile.get(file) ?? 0) + dt);
    busy += dt;
  }
  const u = Math.max(1, units);
  const rows = (m: Map<string, number>, n: number, label: string) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, us]) => ({
        [label]: k,
        ms: round(us / 1000),
        percentOfBusy: round((100 * us) / busy, 1),
        [per]: round(us / u, 2),
      }));
  return {
    window,
    busyMs: round(busy / 1000),
    idleMs: round(idle / 1000),
    [`busy_${per}`]: round(busy / u, 2),
    topSelf: rows(self, 30, 'fn'),
    byFile: rows(byFile, 15, 'file'),
  };
}
