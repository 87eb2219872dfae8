import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { RedisSessionStore } from '../../src/cluster/redis-session-store.js';
import { MemorySessionStore } from '../../src/cluster/session-store.js';
import { session, sessionStoreContract } from './session-store.contract.js';
import { closeTestRedis, freshPrefix, newClient, testRedis } from './shared-redis.js';

after(closeTestRedis);

sessionStoreContract('memory (fake clock)', async () => {
  const clock = { now: 1_000_000 };
  const store = new MemorySessionStore(60_000, () => clock.now);
  return {
    store,
    async elapse(ms) {
      clock.now += ms;
    },
    cleanup: () => store.close(),
  };
});

sessionStoreContract('Redis', async () => {
  const prefix = await freshPrefix();
  const a = await newClient();
  const b = await newClient();
  return {
    store: new RedisSessionStore(a, prefix),
    peer: new RedisSessionStore(b, prefix),
    // Redis expires keys on its own clock: wait the TTL out with a generous margin.
    elapse: (ms) => new Promise((r) => setTimeout(r, ms + 400)),
    async cleanup() {
      a.disconnect();
      b.disconnect();
    },
  };
});

describe('RedisSessionStore: schema', () => {
  it('keeps a session at mp:rs:<sessionId> as JSON, with a TTL no longer than asked', async () => {
    const { client } = await testRedis();
    const prefix = `${await freshPrefix()}mp:`;
    await new RedisSessionStore(client, prefix).set('abc123', session('d1'), 86_400_000);
    const key = `${prefix}rs:abc123`;
    assert.deepEqual(JSON.parse((await client.get(key))!), session('d1'));
    const pttl = await client.pttl(key);
    assert.ok(pttl > 0 && pttl <= 86_400_000, `pttl ${pttl}`);
  });

  it('a value that is not a session reads as no session', async () => {
    const { client } = await testRedis();
    const prefix = await freshPrefix();
    await client.set(`${prefix}rs:bad`, '{"deviceId":1}');
    await client.set(`${prefix}rs:worse`, 'osName=android&deviceId=x');
    const store = new RedisSessionStore(client, prefix);
    assert.equal(await store.get('bad'), undefined);
    assert.equal(await store.get('worse'), undefined);
  });
});
