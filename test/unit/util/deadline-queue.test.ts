import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Deadline, DeadlineQueue } from '../../../src/util/deadline-queue.js';

class Item extends Deadline {
  constructor(
    readonly name: string,
    private readonly fired: string[],
  ) {
    super();
  }
  expire(): void {
    this.fired.push(this.name);
  }
}

/** A queue on a fake clock that the test sweeps itself. */
function fakeQueue() {
  const clock = { now: 1_000 };
  const q = new DeadlineQueue(10, () => clock.now, false);
  const at = (t: number): void => {
    clock.now = t;
    q.sweep();
  };
  return { q, clock, at };
}

describe('DeadlineQueue on a fake clock', () => {
  it('expires items at their deadline, never before, across lanes, in deadline order within a lane', () => {
    const fired: string[] = [];
    const { q, at } = fakeQueue();
    q.add(new Item('b', fired), 1_200, 100);
    q.add(new Item('a', fired), 1_100, 100); // out of order in its lane: walked back into place
    q.add(new Item('long', fired), 4_000, 3_000);
    q.add(new Item('short', fired), 1_150, 50);
    at(1_099);
    assert.equal(fired.length, 0);
    at(1_150);
    assert.deepEqual(fired.sort(), ['a', 'short']);
    at(1_200);
    assert.ok(fired.includes('b') && !fired.includes('long'));
    at(4_000);
    assert.ok(fired.includes('long'));
    assert.equal(q.size, 0);
  });

  it('a removed item never expires, and leaves nothing behind', () => {
    const fired: string[] = [];
    const { q, at } = fakeQueue();
    const items = ['x', 'y', 'z'].map((n) => new Item(n, fired));
    for (const it of items) q.add(it, 1_100, 100);
    q.remove(items[1]!);
    q.remove(items[1]!); // harmless twice
    assert.equal(q.size, 2);
    at(2_000);
    assert.deepEqual(fired, ['x', 'z']);
    assert.equal(q.size, 0);
  });

  it('re-adding moves an item; drain takes every item out unexpired', () => {
    const fired: string[] = [];
    const { q, at } = fakeQueue();
    const a = new Item('a', fired);
    q.add(a, 1_100, 100);
    q.add(a, 5_000, 4_000);
    assert.equal(q.size, 1);
    at(2_000);
    assert.equal(fired.length, 0);
    q.add(new Item('b', fired), 1_500, 100);
    assert.deepEqual(
      q
        .drain()
        .map((i) => (i as Item).name)
        .sort(),
      ['a', 'b'],
    );
    assert.equal(q.size, 0);
    at(10_000);
    assert.deepEqual(fired, []);
  });

  it('runs its interval only while items wait', async () => {
    const q = new DeadlineQueue(5);
    const fired: string[] = [];
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const idle = timers();
    q.add(new Item('a', fired), Date.now() + 20, 20);
    assert.equal(timers(), idle + 1, 'an interval while an item waits');
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(fired, ['a']);
    assert.equal(timers(), idle, 'no interval once empty');
  });

  it('keeps one interval while it empties and fills at every item, and none keeps the process alive once empty', async () => {
    const q = new DeadlineQueue(5);
    const fired: string[] = [];
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const idle = timers();
    const real = globalThis.setInterval;
    let made = 0;
    globalThis.setInterval = ((...args: Parameters<typeof setInterval>) => {
      made++;
      return real(...args);
    }) as typeof setInterval;
    try {
      // One request in flight at a time: each completes before the next is added.
      for (let i = 0; i < 100; i++) {
        const item = new Item(`r${i}`, fired);
        q.add(item, Date.now() + 1_000, 1_000);
        assert.equal(timers(), idle + 1, 'the interval holds the process while an item waits');
        q.remove(item);
        assert.equal(timers(), idle, 'an empty queue holds nothing');
      }
    } finally {
      globalThis.setInterval = real;
    }
    assert.equal(made, 1, 'one interval for the hundred items, not one each');
    assert.deepEqual(fired, []);
    q.add(new Item('late', fired), Date.now() + 10, 10);
    await new Promise((r) => setTimeout(r, 60));
    assert.deepEqual(fired, ['late'], 'the kept interval still expires items');
  });
});
