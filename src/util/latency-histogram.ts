/**
 * Upper bounds (ms) of the latency buckets: from what one process answers in (≤ 1 ms, the
 * clock's resolution) to a push's longest timeout. Prometheus's `le` labels, in seconds.
 */
export const LATENCY_BOUNDS_MS: readonly number[] = [
  1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000,
];

/** Latency quantiles estimated from a histogram's buckets. */
export interface LatencySummary {
  count: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
}

/**
 * A fixed-bucket latency histogram observed on the push path: `observe` is a scan of a few
 * numbers and one typed-array increment, with no allocation (prom-client's own `observe` builds
 * a closure and a labels object per call). Read by the metrics exporter (api/metrics.ts).
 */
export class LatencyHistogram {
  /** Per bucket (not cumulative); the last is past the largest bound (+Inf). */
  readonly counts = new Float64Array(LATENCY_BOUNDS_MS.length + 1);
  count = 0;
  /** Sum of the observed values, in ms. */
  sumMs = 0;

  observe(ms: number): void {
    const bounds = LATENCY_BOUNDS_MS;
    let i = 0;
    while (i < bounds.length && ms > bounds[i]!) i++;
    this.counts[i]!++;
    this.count++;
    this.sumMs += ms;
  }

  /**
   * The `q` quantile (0–1), interpolated linearly inside its bucket as Prometheus's
   * `histogram_quantile` does; a value past the largest bound reads as that bound. 0 when empty.
   */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = q * this.count;
    let below = 0;
    for (let i = 0; i < this.counts.length; i++) {
      const n = this.counts[i]!;
      if (below + n >= rank && n > 0) {
        const upper = LATENCY_BOUNDS_MS[i] ?? LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1]!;
        if (i >= LATENCY_BOUNDS_MS.length) return upper;
        const lower = i === 0 ? 0 : LATENCY_BOUNDS_MS[i - 1]!;
        return lower + ((upper - lower) * (rank - below)) / n;
      }
      below += n;
    }
    return LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1]!;
  }

  summary(): LatencySummary {
    return {
      count: this.count,
      p50Ms: this.quantile(0.5),
      p90Ms: this.quantile(0.9),
      p99Ms: this.quantile(0.99),
    };
  }
}
