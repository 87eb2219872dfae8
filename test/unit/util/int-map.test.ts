import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IntMap } from '../../../src/util/int-map.js';

/** A small deterministic generator, so a failure replays. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('IntMap', () => {
  it('answers as a Map over random sets, deletes and lookups, through growing and shrinking', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const r = rng(seed);
      const m = new IntMap<number>(8);
      const ref = new Map<number, number>();
      // Keys from a small range collide and form long probe runs; a counter's keys are sequential.
      let seq = 0;
      for (let op = 0; op < 20_000; op++) {
        const phase = Math.floor(op / 2_000) % 2; // fill, then drain, so the arrays grow and shrink
        const key = r() < 0.5 ? Math.floor(r() * 300) - 150 : ++seq;
        const x = r();
        if (x < (phase === 0 ? 0.6 : 0.2)) {
          m.set(key, op);
          ref.set(key, op);
        } else if (x < 0.9) {
          assert.equal(m.delete(key), ref.delete(key), `seed ${seed} op ${op}: delete ${key}`);
        } else {
          assert.equal(m.get(key), ref.get(key), `seed ${seed} op ${op}: get ${key}`);
        }
        assert.equal(m.size, ref.size);
      }
      for (const [k, v] of ref) assert.equal(m.get(k), v);
      assert.deepEqual(
        m.values().sort((a, b) => a - b),
        [...ref.values()].sort((a, b) => a - b),
      );
      m.clear();
      assert.equal(m.size, 0);
      for (const k of ref.keys()) assert.equal(m.get(k), undefined);
    }
  });

  it('keeps every key of a full probe run reachable after deleting from its middle', () => {
    const m = new IntMap<string>(8);
    // Six keys, then delete each in turn from a fresh map: whatever slots they share, the others stay.
    const keys = [0, 8, 16, 24, 1, 9];
    for (const gone of keys) {
      m.clear();
      for (const k of keys) m.set(k, `v${k}`);
      assert.equal(m.delete(gone), true);
      for (const k of keys) assert.equal(m.get(k), k === gone ? undefined : `v${k}`);
    }
  });

  it('takes 32-bit integer keys only, and no undefined values', () => {
    const m = new IntMap<number>();
    m.set(-(2 ** 31), 1);
    m.set(2 ** 31 - 1, 2);
    assert.equal(m.get(-(2 ** 31)), 1);
    assert.equal(m.get(2 ** 31 - 1), 2);
    assert.throws(() => m.set(2 ** 31, 3), RangeError);
    assert.throws(() => m.set(1.5, 3), RangeError);
    assert.throws(() => m.set(1, undefined as unknown as number), RangeError);
    assert.equal(m.get(1.5), undefined);
    assert.equal(m.get(2 ** 31), undefined);
    assert.equal(m.delete(2 ** 32), false);
    assert.equal(m.size, 2);
  });
});
