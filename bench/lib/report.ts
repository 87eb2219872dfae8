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
  const total = s.reduce((a, x) => a + x, 0);
  const at = (q: number) => round(s[Math.min(n - 1, Math.floor(q * n))]!, 3);
  return {
    n,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    p999: at(0.999),
    max: round(s[n - 1]!, 3),
    mean: round(total / n, 3),
  };
}

/** Per-key sums of count maps (errors by reason, results by kind). */
export function addCounts(maps: Array<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of maps) for (const [k, v] of Object.entries(m)) out[k] = (out[k] ?? 0) + v;
  return out;
}

export const sum = <T>(xs: T[], f: (x: T) => number): number => xs.reduce((a, x) => a + f(x), 0);

export const table = <K extends string>(keys: K[], f: (k: K) => number) =>
  Object.fromEntries(keys.map((k) => [k, f(k)])) as Record<K, number>;

/** Target lines of a report: each figure measured against its bound (`atMost` or `atLeast`). */
export function targets(rows: Array<[string, number | undefined, { atMost: number } | { atLeast: number }]>) {
  const met = (v: number, b: { atMost: number } | { atLeast: number }) =>
    'atMost' in b ? v <= b.atMost : v >= b.atLeast;
  return Object.fromEntries(
    rows.map(([k, v, b]) => [k, { ...b, measured: v ?? null, met: v !== undefined && met(v, b) }]),
  );
}

export function printReport(report: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
}
