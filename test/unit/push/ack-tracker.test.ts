import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Connection } from '../../../src/connection/index.js';
import { AckTracker, type AckWaiter } from '../../../src/push/ack-tracker.js';
import { type MemoryServer, memoryServer } from '../../helpers/memory-server.js';
import { waitFor } from '../../helpers/wait.js';

const TICK_MS = 2;

/** Records how an awaited ack ended. */
class Waiter implements AckWaiter {
  acks = 0;
  timeouts = 0;
  onAck(): void {
    this.acks++;
  }
  onAckTimeout(): void {
    this.timeouts++;
  }
}

/**
 * The tracker's deadline queue sweeps on a real interval but reads a fake clock: time passes only
 * when the test moves it. Letting a few ticks run shows what the queue does (or does not) then.
 */
const ticks = (n = 10) => new Promise((r) => setTimeout(r, TICK_MS * n));

describe('AckTracker on a fake clock', () => {
  let s: MemoryServer;
  let pushed: Connection;
  let other: Connection;
  let clock: { now: number };
  let tracker: AckTracker;
  beforeEach(() => {
    s = memoryServer();
    pushed = s.connect().conn;
    other = s.connect().conn;
    clock = { now: 50_000 };
    tracker = new AckTracker(TICK_MS, () => clock.now);
  });
  afterEach(async () => {
    tracker.close();
    await s.close();
  });

  it('completes when the connection that got the push acks it', () => {
    const w = new Waiter();
    tracker.add(7, pushed, 1_000, w);
    assert.equal(tracker.pending, 1);
    assert.equal(tracker.ack(pushed, 7), true);
    assert.deepEqual([w.acks, w.timeouts], [1, 0]);
    assert.equal(tracker.pending, 0);
    assert.equal(tracker.ack(pushed, 7), false, 'a second ack finds nothing');
    assert.equal(w.acks, 1);
  });

  it('ignores an ack with the same sessionId from another connection', () => {
    const w = new Waiter();
    tracker.add(8, pushed, 1_000, w);
    assert.equal(tracker.ack(other, 8), false);
    assert.deepEqual([w.acks, w.timeouts], [0, 0]);
    assert.equal(tracker.pending, 1, 'still waiting for the right device');
    assert.equal(tracker.ack(pushed, 8), true);
    assert.equal(w.acks, 1);
  });

  it('times out at the deadline, never before, and only once', async () => {
    const w = new Waiter();
    const deadline = clock.now + 100;
    tracker.add(9, pushed, 100, w);
    clock.now = deadline - 1;
    await ticks();
    assert.equal(w.timeouts, 0, 'not before the deadline');
    clock.now = deadline;
    await waitFor(() => w.timeouts === 1, 3000, 'the ack timeout');
    assert.equal(tracker.pending, 0);
    clock.now += 60_000;
    await ticks();
    assert.deepEqual([w.acks, w.timeouts], [0, 1], 'fired once');
  });

  it('ignores a late ack after the timeout', async () => {
    const w = new Waiter();
    tracker.add(10, pushed, 10, w);
    clock.now += 10;
    await waitFor(() => w.timeouts === 1, 3000, 'the ack timeout');
    assert.equal(tracker.ack(pushed, 10), false);
    assert.deepEqual([w.acks, w.timeouts], [0, 1]);
  });

  it('cancel drops the task: neither an ack nor a timeout reaches the waiter', async () => {
    const w = new Waiter();
    tracker.add(11, pushed, 10, w);
    tracker.cancel(11);
    assert.equal(tracker.pending, 0);
    assert.equal(tracker.ack(pushed, 11), false);
    clock.now += 1_000;
    await ticks();
    assert.deepEqual([w.acks, w.timeouts], [0, 0]);
  });

  it('an acked task stays quiet at its deadline, also when its sessionId was reused since', async () => {
    const first = new Waiter();
    const reused = new Waiter();
    tracker.add(14, pushed, 10, first);
    assert.equal(tracker.ack(pushed, 14), true);
    // The push counter wrapped (or a test set it): the same sessionId awaits another ack.
    tracker.add(14, other, 1_000, reused);
    clock.now += 10;
    await ticks();
    assert.deepEqual([first.acks, first.timeouts], [1, 0]);
    assert.equal(tracker.pending, 1, "the first task's deadline did not drop the second");
    assert.equal(tracker.ack(other, 14), true);
    assert.equal(reused.acks, 1);
  });

  it('holds nothing of an acked or cancelled task until its deadline', () => {
    const w = new Waiter();
    tracker.add(15, pushed, 10_000, w);
    tracker.add(16, pushed, 10_000, w);
    assert.equal(tracker.queued, 2);
    tracker.ack(pushed, 15);
    tracker.cancel(16);
    // A finished task left in a timer until its deadline outlives young-generation GCs: every push
    // promoted to the old generation.
    assert.equal(tracker.queued, 0, 'no finished task waits for its deadline');
  });

  it('a task whose sessionId was reused before its ack times out alone', async () => {
    const first = new Waiter();
    const second = new Waiter();
    tracker.add(17, pushed, 10, first);
    tracker.add(17, other, 1_000, second);
    clock.now += 10;
    await waitFor(() => first.timeouts === 1, 3000, 'the first timeout');
    assert.equal(tracker.pending, 1, 'the second task still awaits its ack');
    assert.equal(tracker.ack(other, 17), true);
    assert.deepEqual([second.acks, second.timeouts], [1, 0]);
  });

  it('keeps tasks apart by sessionId', async () => {
    const a = new Waiter();
    const b = new Waiter();
    tracker.add(12, pushed, 10, a);
    tracker.add(13, pushed, 1_000, b);
    assert.equal(tracker.ack(pushed, 13), true);
    clock.now += 10;
    await waitFor(() => a.timeouts === 1, 3000, 'the first timeout');
    assert.deepEqual([a.acks, a.timeouts, b.acks, b.timeouts], [0, 1, 1, 0]);
  });
});
