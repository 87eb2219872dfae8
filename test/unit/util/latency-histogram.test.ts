import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LATENCY_BOUNDS_MS, LatencyHistogram } from '../../../src/util/latency-histogram.js';

describe('LatencyHistogram', () => {
  it('files each value under the first bound it does not exceed; past the last, +Inf', () => {
    const h = new LatencyHistogram();
    for (const ms of [0, 1, 1.5, 2, 3, 10_000, 10_001, 1e9]) h.observe(ms);
    assert.equal(h.count, 8);
    assert.equal(h.counts[0], 2, '0 and 1 ≤ 1 ms');
    assert.equal(h.counts[1], 2, '1.5 and 2 ≤ 2 ms');
    assert.equal(h.counts[2], 1, '3 ≤ 5 ms');
    assert.equal(h.counts[LATENCY_BOUNDS_MS.indexOf(10_000)], 1);
    assert.equal(h.counts[LATENCY_BOUNDS_MS.indexOf(30_000)], 1);
    assert.equal(h.counts[LATENCY_BOUNDS_MS.length], 1, '+Inf');
    assert.equal(h.sumMs, 0 + 1 + 1.5 + 2 + 3 + 10_000 + 10_001 + 1e9);
  });

  it('estimates quantiles inside their bucket, as histogram_quantile does', () => {
    const h = new LatencyHistogram();
    assert.deepEqual(h.summary(), { count: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0 });
    // 100 values: 50 in (5, 10], 40 in (10, 25], 10 in (50, 100].
    for (let i = 0; i < 50; i++) h.observe(8);
    for (let i = 0; i < 40; i++) h.observe(20);
    for (let i = 0; i < 10; i++) h.observe(70);
    const s = h.summary();
    assert.equal(s.count, 100);
    assert.equal(s.p50Ms, 10, 'the 50th value ends the (5, 10] bucket');
    assert.equal(s.p90Ms, 25, 'the 90th ends (10, 25]');
    assert.equal(s.p99Ms, 50 + (50 * 9) / 10, '9/10 into (50, 100]');
    // Past the largest bound: that bound, not infinity.
    const far = new LatencyHistogram();
    far.observe(1e9);
    assert.equal(far.quantile(0.99), 30_000);
  });
});
