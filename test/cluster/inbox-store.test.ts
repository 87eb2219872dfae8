import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { after, describe, it } from 'node:test';
import { MemoryInboxStore } from '../../src/cluster/inbox-store.js';
import { RedisInboxStore } from '../../src/cluster/redis-inbox-store.js';
import { inboxStoreContract } from './inbox-store.contract.js';
import { closeTestRedis, freshPrefix, newClient, testRedis } from './shared-redis.js';

after(closeTestRedis);

inboxStoreContract('memory', async () => {
  const store = new MemoryInboxStore();
  return { store, cleanup: () => store.close() };
});

inboxStoreContract('Redis', async () => {
  const prefix = await freshPrefix();
  const a = await newClient();
  const b = await newClient();
  return {
    store: new RedisInboxStore(a, prefix),
    peer: new RedisInboxStore(b, prefix),
    async cleanup() {
      a.disconnect();
      b.disconnect();
    },
  };
});

describe('MemoryInboxStore bounds', () => {
  it('refuses a new inbox past maxUsers (the push keeps its live result)', async () => {
    const s = new MemoryInboxStore(2);
    const e = {
      messageId: 'm',
      content: Buffer.from('x'),
      ackFlags: 0,
      timeoutMs: 1,
      storedAt: 0,
      expiresAt: Date.now() + 1e6,
    };
    await s.store('a', e, 10);
    await s.store('b', e, 10);
    await assert.rejects(s.store('c', e, 10), /inbox.memoryMaxUsers/);
    await s.store('a', { ...e, messageId: 'm2' }, 10); // an existing inbox still takes messages
  });
});

describe('RedisInboxStore: keys', () => {
  it("keeps a user's inbox under <prefix>inbox:{<userId>} with a TTL, and receipts under <prefix>msg:<id>", async () => {
    const { client } = await testRedis();
    const prefix = `${await freshPrefix()}mp:`;
    const s = new RedisInboxStore(client, prefix);
    const now = Date.now();
    await s.store(
      'alice',
      {
        messageId: 'm1',
        content: Buffer.from('hi'),
        ackFlags: 0,
        timeoutMs: 1,
        storedAt: now,
        expiresAt: now + 30_000,
      },
      10,
    );
    await s.record('m1', [{ userId: 'alice', clientType: null, state: 'stored', at: now }], 40_000);
    assert.deepEqual(await client.zrange(`${prefix}inbox:{alice}`, 0, -1), ['m1']);
    const ttl = await client.pttl(`${prefix}inbox:{alice}:m`);
    assert.ok(ttl > 0 && ttl <= 30_000, `entries expire with the message (pttl ${ttl})`);
    const rttl = await client.pttl(`${prefix}msg:m1`);
    assert.ok(rttl > 30_000 && rttl <= 40_000, `receipt kept receiptTtl (pttl ${rttl})`);
  });
});

/** The commands `client` sends while `fn` runs (ioredis's diagnostics channel). */
async function commandsDuring(fn: () => Promise<unknown>): Promise<string[]> {
  const sent: string[] = [];
  const onStart = (m: unknown) => sent.push((m as { command: string }).command);
  subscribe('tracing:ioredis:command:start', onStart);
  try {
    await fn();
  } finally {
    unsubscribe('tracing:ioredis:command:start', onStart);
  }
  return sent;
}

describe('RedisInboxStore: one script per turn', () => {
  const e = (messageId: string) => ({
    messageId,
    content: Buffer.from('x'),
    ackFlags: 0,
    timeoutMs: 1,
    storedAt: Date.now(),
    expiresAt: Date.now() + 60_000,
  });

  it("stores, receipts, settles and reads of one turn, over many users' keys, go in one EVALSHA", async () => {
    const { client } = await testRedis();
    const s = new RedisInboxStore(client, await freshPrefix());
    await s.store('warm', e('w'), 10); // loads the script
    const ops = () =>
      Promise.all([
        ...['a', 'b', 'c'].map((u) => s.store(u, e(`m-${u}`), 10)),
        ...['a', 'b', 'c'].map((u) =>
          s.record(`m-${u}`, [{ userId: u, clientType: null, state: 'stored', at: 1 }], 60_000),
        ),
        s.settle('a', 1, 'm-a', 60_000),
        s.pending('b', 1, Date.now()),
      ]);
    assert.deepEqual(await commandsDuring(ops), ['evalsha']);
    assert.equal((await s.receipt('m-c'))?.users[0]?.inbox, 'stored');
  });

  it('past maxBatch operations, the turn is cut into several scripts, in order', async () => {
    const { client } = await testRedis();
    const s = new RedisInboxStore(client, await freshPrefix(), { maxBatch: 2 });
    await s.store('warm', e('w'), 10);
    let out: Awaited<ReturnType<typeof s.store>>[] = [];
    const sent = await commandsDuring(async () => {
      out = await Promise.all(['m1', 'm2', 'm3', 'm4', 'm5'].map((id) => s.store('u', e(id), 3)));
    });
    assert.deepEqual(sent, ['evalsha', 'evalsha', 'evalsha']);
    assert.deepEqual(
      out.map((o) => o.dropped),
      [[], [], [], ['m1'], ['m2']],
    );
  });

  it('an operation on a key of another type fails alone; the others of its script go through', async () => {
    const { client } = await testRedis();
    const prefix = await freshPrefix();
    const s = new RedisInboxStore(client, prefix);
    await client.set(s.receiptKey('bad'), 'not a hash');
    const at = Date.now();
    const [bad, good, stored] = await Promise.allSettled([
      s.record('bad', [{ userId: 'u', clientType: null, state: 'stored', at }], 60_000),
      s.record('good', [{ userId: 'u', clientType: null, state: 'stored', at }], 60_000),
      s.store('u', e('good'), 10),
    ]);
    assert.equal(bad.status, 'rejected');
    assert.match(String((bad as PromiseRejectedResult).reason), /WRONGTYPE/);
    assert.deepEqual([good.status, stored.status], ['fulfilled', 'fulfilled']);
    assert.equal((await s.receipt('good'))?.users[0]?.inbox, 'stored');
  });

  it('a messageId with a lone surrogate is kept (as U+FFFD, as Redis gets any string) and spoils nothing else', async () => {
    const { client } = await testRedis();
    const s = new RedisInboxStore(client, await freshPrefix());
    const [a, b] = await Promise.all([s.store('u', e('m\ud800'), 10), s.store('v', e('m2'), 10)]);
    assert.deepEqual([a.added, b.added], [true, true]);
    const ids = async (u: string) => (await s.pending(u, 1, Date.now())).entries.map((x) => x.messageId);
    assert.deepEqual([await ids('u'), await ids('v')], [['m\ufffd'], ['m2']]);
  });
});
