import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { InboxEntry, InboxStore } from '../../src/cluster/inbox-store.js';

export interface InboxStoreUnderTest {
  store: InboxStore;
  /** Another handle on the same inboxes, as a second node would have (its own connection). */
  peer?: InboxStore;
  cleanup(): Promise<void>;
}

const T0 = Date.now();

function entry(id: string, over: Partial<InboxEntry> = {}): InboxEntry {
  return {
    messageId: id,
    content: Buffer.from(`{"msgId":"${id}","content":"\u00e9\u0000\u00ff"}`, 'latin1'),
    ackFlags: 4,
    timeoutMs: 2500,
    storedAt: T0,
    expiresAt: T0 + 60_000,
    ...over,
  };
}

const ids = (es: readonly InboxEntry[]) => es.map((e) => e.messageId);

/** What every InboxStore does, memory or Redis. */
export function inboxStoreContract(name: string, factory: () => Promise<InboxStoreUnderTest>): void {
  describe(`InboxStore contract: ${name}`, () => {
    let t: InboxStoreUnderTest;
    let store: InboxStore;
    let peer: InboxStore;
    beforeEach(async () => {
      t = await factory();
      store = t.store;
      peer = t.peer ?? t.store;
    });
    afterEach(async () => {
      await t.cleanup();
    });

    it('keeps messages in store order, byte for byte, and another node reads them', async () => {
      for (const id of ['m1', 'm2', 'm3'])
        assert.deepEqual(await store.store('u', entry(id), 10), { added: true, dropped: [] });
      const p = await peer.pending('u', 1, T0);
      assert.deepEqual(ids(p.entries), ['m1', 'm2', 'm3']);
      assert.deepEqual(p.entries[0], entry('m1'), 'every field, the content exactly');
      assert.deepEqual(p.expired, []);
      assert.deepEqual((await store.pending('other', 1, T0)).entries, []);
    });

    it('a second store of one messageId is a no-op', async () => {
      await store.store('u', entry('m1'), 10);
      assert.deepEqual(await peer.store('u', entry('m1', { ackFlags: 0 }), 10), {
        added: false,
        dropped: [],
      });
      const p = await store.pending('u', 1, T0);
      assert.deepEqual(ids(p.entries), ['m1']);
      assert.equal(p.entries[0]!.ackFlags, 4, 'the first copy stays');
    });

    it('the per-user cap drops the oldest first and says which', async () => {
      for (const id of ['m1', 'm2', 'm3']) await store.store('u', entry(id), 3);
      assert.deepEqual(await store.store('u', entry('m4'), 3), { added: true, dropped: ['m1'] });
      assert.deepEqual(await peer.store('u', entry('m5'), 2), { added: true, dropped: ['m2', 'm3'] });
      assert.deepEqual(ids((await store.pending('u', 1, T0)).entries), ['m4', 'm5']);
      await store.store('v', entry('m1'), 1);
      assert.deepEqual(ids((await store.pending('u', 1, T0)).entries), ['m4', 'm5'], 'per user');
    });

    it('expired messages are removed by the read that finds them, and listed once', async () => {
      // Expired by the reader's clock, not by Redis's: a key TTL (real time) that ran out between the
      // two stores would take 'old' with it before any read could list it.
      const at = Date.now() + 5_000;
      await store.store('u', entry('old', { expiresAt: at }), 10);
      await store.store('u', entry('new', { expiresAt: at + 60_000 }), 10);
      const p = await peer.pending('u', 1, at);
      assert.deepEqual(ids(p.entries), ['new']);
      assert.deepEqual(p.expired, ['old']);
      const again = await store.pending('u', 2, at);
      assert.deepEqual(ids(again.entries), ['new'], 'gone for every type');
      assert.deepEqual(again.expired, [], 'listed once');
    });

    it('a settled message is pending no more for that type only; once every type has it, it leaves', async () => {
      await store.store('u', entry('m1'), 10);
      await store.store('u', entry('m2'), 10);
      await peer.settle('u', 1, 'm1', 60_000);
      assert.deepEqual(ids((await store.pending('u', 1, T0)).entries), ['m2']);
      assert.deepEqual(ids((await store.pending('u', 2, T0)).entries), ['m1', 'm2'], 'the PC still gets it');
      await store.settle('u', 2, 'm1', 60_000);
      await store.settle('u', 3, 'm1', 60_000);
      assert.deepEqual(ids((await store.pending('u', -1, T0)).entries), ['m2'], 'left the inbox');
      // The cap now counts only m2: storing two more with a cap of 2 drops m2, not m1 again.
      await store.store('u', entry('m3'), 2);
      assert.deepEqual((await store.store('u', entry('m4'), 2)).dropped, ['m2']);
    });

    it('operations issued at once apply in call order', async () => {
      const [s1, s2, , p1, p2] = await Promise.all([
        store.store('u', entry('m1'), 10),
        store.store('v', entry('m2'), 10),
        store.settle('u', 1, 'm1', 60_000),
        store.pending('u', 1, T0),
        store.pending('u', 2, T0),
        store.store('u', entry('m3'), 10),
      ]);
      assert.deepEqual(
        [s1, s2],
        [
          { added: true, dropped: [] },
          { added: true, dropped: [] },
        ],
      );
      assert.deepEqual([ids(p1.entries), ids(p2.entries)], [[], ['m1']], 'm3 came after the reads');
      assert.deepEqual(ids((await peer.pending('u', 1, T0)).entries), ['m3']);
    });

    it('a settle before the store still counts (a live type finished before another type missed)', async () => {
      await store.settle('u', 1, 'm1', 60_000);
      await peer.store('u', entry('m1'), 10);
      assert.deepEqual(ids((await store.pending('u', 1, T0)).entries), []);
      assert.deepEqual(ids((await store.pending('u', 2, T0)).entries), ['m1']);
    });

    it('receipts: events by user and device type, the latest time of each, read by another node', async () => {
      assert.equal(await store.receipt('m1'), undefined);
      await store.record('m1', [{ userId: 'u', clientType: null, state: 'stored', at: T0 }], 60_000);
      await peer.record(
        'm1',
        [
          { userId: 'u', clientType: 1, state: 'sent', at: T0 + 5 },
          { userId: 'u', clientType: 1, state: 'acked', at: T0 + 6 },
          { userId: 'u', clientType: 2, state: 'stored', at: T0 + 1 },
        ],
        60_000,
      );
      await store.record('m1', [{ userId: 'w', clientType: 2, state: 'sent', at: T0 + 7 }], 60_000);
      const r = await peer.receipt('m1');
      assert.deepEqual(r, {
        messageId: 'm1',
        createdAt: T0,
        updatedAt: T0 + 7,
        users: [
          {
            userId: 'u',
            inbox: 'stored',
            storedAt: T0,
            devices: [
              { clientType: 1, clientTypeName: 'mobile', state: 'acked', sentAt: T0 + 5, ackedAt: T0 + 6 },
              { clientType: 2, clientTypeName: 'pc', state: 'stored', storedAt: T0 + 1 },
            ],
          },
          {
            userId: 'w',
            inbox: null,
            devices: [{ clientType: 2, clientTypeName: 'pc', state: 'sent', sentAt: T0 + 7 }],
          },
        ],
      });
    });

    it('a receipt whose inbox copy expired marks the devices that never got it', async () => {
      await store.record(
        'm1',
        [
          { userId: 'u', clientType: null, state: 'stored', at: T0 },
          { userId: 'u', clientType: 2, state: 'stored', at: T0 },
          { userId: 'u', clientType: 1, state: 'acked', at: T0 + 1 },
          { userId: 'u', clientType: null, state: 'expired', at: T0 + 9 },
        ],
        60_000,
      );
      const u = (await store.receipt('m1'))!.users[0]!;
      assert.equal(u.inbox, 'expired');
      assert.equal(u.expiredAt, T0 + 9);
      assert.deepEqual(
        u.devices.map((d) => [d.clientType, d.state]),
        [
          [1, 'acked'],
          [2, 'expired'],
        ],
      );
    });

    it('a receipt is gone after its TTL', async () => {
      await store.record('m1', [{ userId: 'u', clientType: null, state: 'stored', at: T0 }], 50);
      assert.ok(await peer.receipt('m1'));
      await new Promise((r) => setTimeout(r, 120));
      assert.equal(await peer.receipt('m1'), undefined);
    });
  });
}
