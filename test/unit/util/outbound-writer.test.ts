import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import {
  type DeadlineScheduler,
  type OutboundLimit,
  type OutboundOwner,
  type OutboundSink,
  OutboundWriter,
} from '../../../src/util/outbound-writer.js';

/**
 * An in-memory sink: counts bytes until the test flushes them, and answers `false` (backpressure)
 * once `highWaterMark` bytes are queued, as a socket does.
 */
class MemorySink implements OutboundSink {
  writable = true;
  bufferedBytes = 0;
  corks = 0;
  uncorks = 0;
  readonly written: Array<Buffer | string> = [];

  constructor(private readonly highWaterMark = Number.POSITIVE_INFINITY) {}

  write(data: Buffer | string): boolean {
    this.written.push(data);
    this.bufferedBytes += Buffer.byteLength(data);
    return this.bufferedBytes < this.highWaterMark;
  }
  cork(): void {
    this.corks++;
  }
  uncork(): void {
    this.uncorks++;
  }
  /** The peer read everything. */
  flush(): void {
    this.bufferedBytes = 0;
  }
}

/** Records every limit the writer reports. */
class Owner implements OutboundOwner {
  readonly limits: OutboundLimit[] = [];
  onOutboundLimit(limit: OutboundLimit): void {
    this.limits.push(limit);
  }
}

/** A fake clock that records the checks the writer asks for (as the device wheel would file them). */
class FakeScheduler implements DeadlineScheduler {
  time = 1_000;
  readonly checks: number[] = [];
  now(): number {
    return this.time;
  }
  scheduleCheck(atMs: number): void {
    this.checks.push(atMs);
  }
}

const HUGE = Number.MAX_SAFE_INTEGER;
const nextTick = () => new Promise<void>((r) => process.nextTick(r));

describe('OutboundWriter: batched per tick', () => {
  it('the first write of a tick leaves at once; the rest are corked and leave on the next tick', async () => {
    const sink = new MemorySink();
    const w = new OutboundWriter(sink, new Owner(), { maxBytes: HUGE, drainTimeoutMs: HUGE });
    assert.ok(w.write('a'));
    assert.equal(sink.corks, 0, 'nothing held for a lone write');
    assert.ok(w.write('b'));
    assert.ok(w.write(Buffer.from('c')));
    assert.equal(sink.corks, 1, 'one cork for the rest of the tick, not one per write');
    assert.equal(sink.uncorks, 0, 'still corked within the tick');
    await nextTick();
    assert.equal(sink.uncorks, 1, 'uncorked on the next tick');
    assert.ok(w.write('d'));
    assert.equal(sink.corks, 1, 'a new tick: its first write leaves at once again');
    assert.ok(w.write('e'));
    assert.equal(sink.corks, 2, 'and its second corks again');
    await nextTick();
    assert.equal(sink.uncorks, 2);
    assert.ok(w.write('f'));
    await nextTick();
    assert.equal(sink.uncorks, 2, 'a tick of one write has nothing to uncork');
    assert.deepEqual(sink.written, ['a', 'b', Buffer.from('c'), 'd', 'e', 'f']);
  });

  it("batched per loop turn ('loop'): a turn's writes, over many ticks, leave in one uncork", async () => {
    const sink = new MemorySink();
    const limits = { maxBytes: HUGE, drainTimeoutMs: HUGE };
    const w = new OutboundWriter(sink, new Owner(), limits, undefined, 'loop');
    assert.ok(w.write('a'));
    assert.equal(sink.corks, 1, 'held from the first write');
    await nextTick();
    assert.ok(w.write('b'));
    await nextTick();
    assert.equal(sink.corks, 1, 'one cork for the turn, not one per tick');
    assert.equal(sink.uncorks, 0, 'still corked within the turn');
    await new Promise<void>((r) => setImmediate(r));
    assert.equal(sink.uncorks, 1, 'uncorked once the turn is done');
    assert.ok(w.write('c'));
    assert.equal(sink.corks, 2, 'a new turn corks again');
    await new Promise<void>((r) => setImmediate(r));
    assert.equal(sink.uncorks, 2);
    assert.deepEqual(sink.written, ['a', 'b', 'c']);
  });

  it('queues one nextTick per tick for every writer that wrote in it', async () => {
    const sinks = [new MemorySink(), new MemorySink(), new MemorySink()];
    const writers = sinks.map(
      (s) => new OutboundWriter(s, new Owner(), { maxBytes: HUGE, drainTimeoutMs: HUGE }),
    );
    const spy = mock.method(process, 'nextTick');
    try {
      for (const w of writers) {
        w.write('x');
        w.write('y');
      }
      assert.equal(spy.mock.callCount(), 1, 'one nextTick for three writers');
    } finally {
      spy.mock.restore();
    }
    await nextTick();
    assert.deepEqual(
      sinks.map((s) => [s.corks, s.uncorks]),
      [
        [1, 1],
        [1, 1],
        [1, 1],
      ],
    );
  });

  it('writes nothing to a sink that is not writable, and reports no limit', () => {
    const sink = new MemorySink();
    const owner = new Owner();
    const w = new OutboundWriter(sink, owner, { maxBytes: HUGE, drainTimeoutMs: HUGE });
    sink.writable = false;
    assert.equal(w.write('a'), false);
    assert.deepEqual(sink.written, []);
    assert.deepEqual(owner.limits, []);
  });
});

describe('OutboundWriter: bounded in bytes (drain deadline out of reach)', () => {
  it('accepts exactly maxBytes queued, and stops with outbound-limit one byte past it', () => {
    // The sink never backpressures and the deadline is huge: only the byte bound can trigger.
    const sink = new MemorySink();
    const owner = new Owner();
    const scheduler = new FakeScheduler();
    const w = new OutboundWriter(sink, owner, { maxBytes: 100, drainTimeoutMs: HUGE }, scheduler);
    assert.ok(w.write(Buffer.alloc(60)));
    assert.ok(w.write(Buffer.alloc(40)), 'at maxBytes is still within the bound');
    assert.deepEqual(owner.limits, []);
    assert.equal(w.write(Buffer.alloc(1)), false, 'one byte past the bound');
    assert.deepEqual(owner.limits, ['outbound-limit']);
    assert.deepEqual(scheduler.checks, [], 'no drain deadline was involved');
  });

  it('writes nothing more after the limit, and reports it once', () => {
    const sink = new MemorySink();
    const owner = new Owner();
    const w = new OutboundWriter(sink, owner, { maxBytes: 10, drainTimeoutMs: HUGE });
    assert.equal(w.write(Buffer.alloc(11)), false);
    const written = sink.written.length;
    sink.flush();
    assert.equal(w.write('more'), false);
    assert.equal(sink.written.length, written, 'a stopped writer does not write');
    assert.deepEqual(owner.limits, ['outbound-limit']);
  });

  it('counts what the sink still holds, not what one write adds', () => {
    const sink = new MemorySink();
    const owner = new Owner();
    const w = new OutboundWriter(sink, owner, { maxBytes: 100, drainTimeoutMs: HUGE });
    for (let i = 0; i < 10; i++) {
      assert.ok(w.write(Buffer.alloc(90)));
      sink.flush(); // the peer keeps reading: the bound is never reached
    }
    assert.deepEqual(owner.limits, []);
  });
});

describe('OutboundWriter: drain deadline on an injected scheduler (byte bound out of reach)', () => {
  it('asks for a check at the deadline and fires drain-timeout only once it is passed', () => {
    const sink = new MemorySink(10); // backpressures from 10 bytes queued
    const owner = new Owner();
    const scheduler = new FakeScheduler();
    const w = new OutboundWriter(sink, owner, { maxBytes: HUGE, drainTimeoutMs: 500 }, scheduler);
    assert.ok(w.write(Buffer.alloc(20)), 'backpressure is not an error');
    assert.ok(w.backpressured);
    assert.deepEqual(scheduler.checks, [1_500]);
    assert.ok(w.write(Buffer.alloc(20)));
    assert.deepEqual(scheduler.checks, [1_500], 'one deadline while blocked, not one per write');

    scheduler.time = 1_499;
    assert.equal(w.checkDeadline(1_499), false, 'not yet');
    assert.deepEqual(scheduler.checks, [1_500, 1_500], 'an early check files the deadline again');
    assert.deepEqual(owner.limits, []);

    assert.equal(w.checkDeadline(1_500), true);
    assert.deepEqual(owner.limits, ['drain-timeout']);
    assert.equal(w.write('x'), false, 'stopped');
  });

  it('a drain clears the deadline: the check that comes due finds nothing to do', () => {
    const sink = new MemorySink(10);
    const owner = new Owner();
    const scheduler = new FakeScheduler();
    const w = new OutboundWriter(sink, owner, { maxBytes: HUGE, drainTimeoutMs: 500 }, scheduler);
    w.write(Buffer.alloc(20));
    sink.flush();
    w.drained();
    assert.equal(w.backpressured, false);
    assert.equal(w.checkDeadline(10_000), false);
    assert.deepEqual(owner.limits, []);
    assert.ok(w.write('x'), 'still writing');
  });

  it('is not armed while writes succeed', () => {
    const sink = new MemorySink(1_000);
    const owner = new Owner();
    const scheduler = new FakeScheduler();
    const w = new OutboundWriter(sink, owner, { maxBytes: HUGE, drainTimeoutMs: 500 }, scheduler);
    for (let i = 0; i < 5; i++) assert.ok(w.write(Buffer.alloc(100)));
    assert.deepEqual(scheduler.checks, []);
    assert.equal(w.checkDeadline(HUGE), false);
    assert.deepEqual(owner.limits, []);
  });

  it('a new block after a drain starts a new deadline from its own time', () => {
    const sink = new MemorySink(10);
    const owner = new Owner();
    const scheduler = new FakeScheduler();
    const w = new OutboundWriter(sink, owner, { maxBytes: HUGE, drainTimeoutMs: 500 }, scheduler);
    w.write(Buffer.alloc(20));
    sink.flush();
    w.drained();
    scheduler.time = 3_000;
    w.write(Buffer.alloc(20));
    assert.deepEqual(scheduler.checks, [1_500, 3_500]);
    assert.equal(w.checkDeadline(3_499), false);
    assert.equal(w.checkDeadline(3_500), true);
    assert.deepEqual(owner.limits, ['drain-timeout']);
  });
});

describe("OutboundWriter: drain deadline on the writer's own timer (byte bound out of reach)", () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
  afterEach(() => mock.timers.reset());

  it('fires drain-timeout when the sink has not drained by drainTimeoutMs', () => {
    const sink = new MemorySink(10);
    const owner = new Owner();
    const w = new OutboundWriter(sink, owner, { maxBytes: HUGE, drainTimeoutMs: 500 });
    w.write(Buffer.alloc(20));
    w.write(Buffer.alloc(20)); // still blocked: the same timer, not a second one
    mock.timers.tick(499);
    assert.deepEqual(owner.limits, []);
    mock.timers.tick(1);
    assert.deepEqual(owner.limits, ['drain-timeout']);
    mock.timers.tick(10_000);
    assert.deepEqual(owner.limits, ['drain-timeout'], 'reported once');
  });

  it('a drain clears the timer', () => {
    const sink = new MemorySink(10);
    const owner = new Owner();
    const w = new OutboundWriter(sink, owner, { maxBytes: HUGE, drainTimeoutMs: 500 });
    w.write(Buffer.alloc(20));
    mock.timers.tick(400);
    sink.flush();
    w.drained();
    mock.timers.tick(10_000);
    assert.deepEqual(owner.limits, []);
  });

  it('is not armed while writes succeed', () => {
    const sink = new MemorySink(1_000);
    const owner = new Owner();
    const w = new OutboundWriter(sink, owner, { maxBytes: HUGE, drainTimeoutMs: 500 });
    const spy = mock.method(globalThis, 'setTimeout');
    try {
      for (let i = 0; i < 5; i++) assert.ok(w.write(Buffer.alloc(100)));
      assert.equal(spy.mock.callCount(), 0, 'no timer for a writer that is not blocked');
    } finally {
      spy.mock.restore();
    }
    mock.timers.tick(10_000);
    assert.deepEqual(owner.limits, []);
  });

  it('stop() clears the timer: a closing owner hears nothing more', () => {
    const sink = new MemorySink(10);
    const owner = new Owner();
    const w = new OutboundWriter(sink, owner, { maxBytes: HUGE, drainTimeoutMs: 500 });
    w.write(Buffer.alloc(20));
    w.stop();
    mock.timers.tick(10_000);
    assert.deepEqual(owner.limits, []);
    assert.equal(w.write('x'), false);
  });
});

describe("OutboundWriter: the writer's own timer on the real clock", () => {
  it('a drain deadline longer than the longest Node timer does not fire at once', async () => {
    // Node runs a setTimeout past 2^31 - 1 ms after 1 ms: the writer must clamp, not pass it on.
    const sink = new MemorySink(10);
    const owner = new Owner();
    const w = new OutboundWriter(sink, owner, { maxBytes: HUGE, drainTimeoutMs: HUGE });
    w.write(Buffer.alloc(20));
    assert.ok(w.backpressured);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(owner.limits, []);
    w.stop();
  });
});
