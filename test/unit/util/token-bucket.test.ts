import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TokenBucket } from '../../../src/util/token-bucket.js';

describe('TokenBucket on a fake clock', () => {
  const fake = (start = 10_000) => {
    const clock = { now: start };
    return { clock, now: () => clock.now };
  };
  const takeAll = (b: TokenBucket, max = 10_000): number => {
    let n = 0;
    while (n < max && b.take()) n++;
    return n;
  };

  it('starts full: gives `burst` tokens at once, then refuses', () => {
    const f = fake();
    const b = new TokenBucket(10, 5, f.now);
    assert.equal(takeAll(b), 5);
    assert.equal(b.take(), false);
    assert.equal(b.take(), false);
  });

  it('refills at `rate` tokens per second, fractions carried over', () => {
    const f = fake();
    const b = new TokenBucket(10, 5, f.now);
    takeAll(b);
    f.clock.now += 99;
    assert.equal(b.take(), false, '0.99 of a token is not a token');
    f.clock.now += 1;
    assert.equal(b.take(), true, 'one token per 100 ms at rate 10');
    assert.equal(b.take(), false);
    for (let i = 0; i < 4; i++) f.clock.now += 50; // 4 × 0.5 tokens
    assert.equal(takeAll(b), 2);
    f.clock.now += 300;
    assert.equal(takeAll(b), 3);
  });

  it('never holds more than `burst`, however long it idles', () => {
    const f = fake();
    const b = new TokenBucket(1_000, 3, f.now);
    takeAll(b);
    f.clock.now += 3_600_000;
    assert.equal(takeAll(b), 3);
    f.clock.now += 1;
    assert.equal(takeAll(b), 1);
  });

  it('ignores a clock that goes backwards (no negative refill, no lost tokens)', () => {
    const f = fake();
    const b = new TokenBucket(10, 2, f.now);
    assert.equal(b.take(), true);
    f.clock.now -= 5_000;
    assert.equal(b.take(), true);
    assert.equal(b.take(), false);
    f.clock.now += 5_000 + 100;
    assert.equal(takeAll(b), 1);
  });
});
