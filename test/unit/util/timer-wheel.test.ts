import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TimerWheel } from '../../../src/util/timer-wheel.js';

/** A wheel on a fake clock: the test moves time and calls `advance()` itself. */
function fakeWheel<T>(tickMs: number, onDue: (item: T, now: number) => void, start = 1_000) {
  const clock = { now: start };
  const wheel = new TimerWheel<T>(tickMs, onDue, () => clock.now);
  return {
    wheel,
    clock,
    /** Moves the clock to `t` and runs the due buckets. */
    at(t: number): void {
      clock.now = t;
      wheel.advance();
    },
  };
}

describe('TimerWheel on a fake clock', () => {
  it('fires an item at or after its time, never before', () => {
    const fired: Array<[string, number]> = [];
    const w = fakeWheel<string>(100, (item, now) => fired.push([item, now]));
    w.wheel.schedule('a', 1_250); // mid-tick: due from 1_300
    w.wheel.schedule('b', 1_300); // exactly on a tick boundary
    w.wheel.schedule('c', 1_301);

    w.at(1_249);
    w.at(1_299);
    assert.deepEqual(fired, [], 'nothing fires before its time');

    w.at(1_300);
    assert.deepEqual(fired, [
      ['a', 1_300],
      ['b', 1_300],
    ]);

    w.at(1_399);
    assert.equal(fired.length, 2, 'c is not due before 1_301 rounds up to its tick');
    w.at(1_400);
    assert.deepEqual(fired[2], ['c', 1_400]);
    assert.equal(w.wheel.size, 0);
  });

  it('fires each item once, also when the clock jumps over many ticks', () => {
    const fired: number[] = [];
    const w = fakeWheel<number>(100, (item) => fired.push(item));
    for (let i = 1; i <= 10; i++) w.wheel.schedule(i, 1_000 + i * 100);
    w.at(1_550);
    assert.deepEqual(fired, [1, 2, 3, 4, 5]);
    w.at(100_000);
    assert.deepEqual(fired, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    w.at(200_000);
    assert.equal(fired.length, 10);
  });

  it('fires many items filed in one bucket, in filing order', () => {
    const fired: number[] = [];
    const w = fakeWheel<number>(100, (item) => fired.push(item));
    for (let i = 0; i < 1_000; i++) w.wheel.schedule(i, 1_500 + (i % 100)); // all in tick 15 or 16
    w.at(1_500);
    assert.deepEqual(fired, [0, ...Array.from({ length: 9 }, (_, k) => (k + 1) * 100)]);
    w.at(1_600);
    assert.equal(fired.length, 1_000);
    assert.deepEqual(
      [...fired].sort((a, b) => a - b),
      Array.from({ length: 1_000 }, (_, i) => i),
    );
  });

  it('files an item scheduled in the past for the next tick', () => {
    const fired: string[] = [];
    const w = fakeWheel<string>(100, (item) => fired.push(item));
    w.at(2_000);
    w.wheel.schedule('late', 500);
    assert.equal(w.wheel.size, 1);
    w.at(2_099);
    assert.deepEqual(fired, []);
    w.at(2_100);
    assert.deepEqual(fired, ['late']);
  });

  // Regression: an item rescheduled into the past from inside its own tick was filed in the bucket
  // being run (already deleted), and was lost.
  it('keeps an item rescheduled into the past from inside its own onDue', () => {
    const fired: Array<[string, number]> = [];
    let again = 2;
    const w = fakeWheel<string>(100, (item, now) => {
      fired.push([item, now]);
      if (item === 'x' && again-- > 0) w.wheel.schedule('x', now - 5_000);
    });
    w.wheel.schedule('x', 1_100);
    w.at(1_100);
    assert.deepEqual(fired, [['x', 1_100]]);
    assert.equal(w.wheel.size, 1, 'the rescheduled item is still filed');
    w.at(1_200);
    assert.deepEqual(fired.at(-1), ['x', 1_200]);
    w.at(1_300);
    assert.deepEqual(fired.at(-1), ['x', 1_300]);
    w.at(5_000);
    assert.equal(fired.length, 3, 'fired once per reschedule, no more');
    assert.equal(w.wheel.size, 0);
  });

  it('runs an item rescheduled into the past on a later tick of the same advance', () => {
    const fired: Array<[string, number]> = [];
    let rescheduled = false;
    const w = fakeWheel<string>(100, (item, now) => {
      fired.push([item, now]);
      if (!rescheduled) {
        rescheduled = true;
        w.wheel.schedule(item, 0);
      }
    });
    w.wheel.schedule('y', 1_100);
    w.at(1_500); // ticks 11..15: y runs at tick 11, is refiled at 12, and runs again before this returns
    assert.deepEqual(fired, [
      ['y', 1_500],
      ['y', 1_500],
    ]);
    assert.equal(w.wheel.size, 0);
  });

  it('keeps running the other items when one onDue throws, and rethrows the error on a later tick', async () => {
    const boom = new Error('boom');
    const fired: string[] = [];
    const w = fakeWheel<string>(100, (item) => {
      fired.push(item);
      if (item === 'bad') throw boom;
    });
    w.wheel.schedule('before', 1_100);
    w.wheel.schedule('bad', 1_100);
    w.wheel.schedule('after', 1_100);
    w.wheel.schedule('next-bucket', 1_200);

    // The test runner reports uncaught exceptions as failures: stand in for its listeners while the
    // wheel's nextTick rethrow happens, then put them back.
    const saved = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    const caught: unknown[] = [];
    process.on('uncaughtException', (err) => caught.push(err));
    try {
      assert.doesNotThrow(() => w.at(1_200));
      assert.deepEqual(fired, ['before', 'bad', 'after', 'next-bucket']);
      assert.deepEqual(caught, [], 'not rethrown synchronously');
      await new Promise((r) => setImmediate(r));
    } finally {
      process.removeAllListeners('uncaughtException');
      for (const l of saved) process.on('uncaughtException', l);
    }
    assert.deepEqual(caught, [boom]);
  });

  it('holds 100,000 items, each filed in O(1) (no sorting, no per-item timer)', () => {
    let fired = 0;
    const w = fakeWheel<number>(1_000, () => fired++, 0);
    for (let i = 0; i < 100_000; i++) w.wheel.schedule(i, 1_000 + (i % 600) * 1_000);
    assert.equal(w.wheel.size, 100_000);
    w.at(300_000);
    let due = 0;
    for (let i = 0; i < 100_000; i++) if (1_000 + (i % 600) * 1_000 <= 300_000) due++;
    assert.equal(fired, due);
    assert.equal(w.wheel.size, 100_000 - due);
    w.at(600_000);
    assert.equal(fired, 100_000);
    assert.equal(w.wheel.size, 0);
  });

  it('never holds the process open: start() uses an unref’d interval, stop() clears it', () => {
    const w = new TimerWheel<number>(10, () => {});
    w.start();
    w.start(); // idempotent
    w.stop();
    w.stop();
  });
});
