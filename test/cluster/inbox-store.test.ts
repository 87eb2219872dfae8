import assert from 'node:assert/strict';
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
