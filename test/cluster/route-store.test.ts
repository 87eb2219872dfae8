import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { RedisRouteStore } from '../../src/cluster/redis-route-store.js';
import { MemoryRouteStore } from '../../src/cluster/route-store.js';
import { route, routeStoreContract } from './route-store.contract.js';
import { closeTestRedis, freshPrefix, newClient, testRedis } from './shared-redis.js';

after(closeTestRedis);

routeStoreContract('memory', async () => {
  const store = new MemoryRouteStore();
  return { store, cleanup: () => store.close() };
});

routeStoreContract('Redis', async () => {
  const prefix = await freshPrefix();
  const a = await newClient();
  const b = await newClient();
  return {
    store: new RedisRouteStore(a, prefix),
    peer: new RedisRouteStore(b, prefix),
    async cleanup() {
      a.disconnect();
      b.disconnect();
    },
  };
});

describe('RedisRouteStore: MPush schema', () => {
  it("writes MPush's hash: mp:ur:<userId>, field = client type, value = the route JSON in MPush's key order", async () => {
    const { client } = await testRedis();
    const prefix = `${await freshPrefix()}mp:`;
    const store = new RedisRouteStore(client, prefix);
    await store.register('alice', 1, route('A', 5));
    const raw = await client.hgetall(`${prefix}ur:alice`);
    assert.deepEqual(raw, {
      '1': '{"host":"10.0.0.1","port":3001,"deviceId":"dev-A-5","osName":"android","clientVersion":"1.0.0","connId":"A:5"}',
    });
  });

  it('reads routes MPush wrote, and ignores fields that are not routes', async () => {
    const { client } = await testRedis();
    const prefix = await freshPrefix();
    const key = `${prefix}ur:bob`;
    // As MPush's Jackson/fastjson would write it: another key order, and no connId.
    await client.hset(
      key,
      '2',
      '{"osName":"windows","clientVersion":"0.8.1","deviceId":"d2","port":3001,"host":"10.1.1.1"}',
    );
    await client.hset(key, '1', 'not json');
    await client.hset(key, 'x', JSON.stringify(route('A', 1)));
    await client.hset(key, '3', '{"host":"h"}');
    const routes = await new RedisRouteStore(client, prefix).lookup('bob');
    assert.deepEqual(
      routes,
      new Map([
        [
          2,
          {
            host: '10.1.1.1',
            port: 3001,
            deviceId: 'd2',
            osName: 'windows',
            clientVersion: '0.8.1',
            connId: '',
          },
        ],
      ]),
    );
  });

  it("keeps MPush's online-user sorted set mp:oul:<node> with score 0", async () => {
    const { client } = await testRedis();
    const prefix = await freshPrefix();
    const store = new RedisRouteStore(client, prefix);
    await store.markOnline('10.0.0.1:3001', 'alice');
    assert.deepEqual(await client.zrange(`${prefix}oul:10.0.0.1:3001`, 0, -1, 'WITHSCORES'), ['alice', '0']);
  });

  it('unregister leaves a value it cannot parse alone', async () => {
    const { client } = await testRedis();
    const prefix = await freshPrefix();
    await client.hset(`${prefix}ur:carol`, '1', 'garbage');
    await new RedisRouteStore(client, prefix).unregister('carol', 1, 'A:1');
    assert.equal(await client.hget(`${prefix}ur:carol`, '1'), 'garbage');
  });

  it('works again after the server forgets its scripts (SCRIPT FLUSH)', async () => {
    const { client } = await testRedis();
    const prefix = await freshPrefix();
    const store = new RedisRouteStore(client, prefix);
    await store.register('dave', 1, route('A', 1));
    await client.script('FLUSH');
    assert.deepEqual(await store.register('dave', 1, route('A', 2)), route('A', 1));
    await client.script('FLUSH');
    await store.unregister('dave', 1, 'A:2');
    assert.deepEqual(await store.lookup('dave'), new Map());
  });
});
