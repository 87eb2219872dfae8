import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { closeRedis, createRedis, type RedisClient } from '../../src/cluster/redis-connection.js';
import { RedisInboxStore } from '../../src/cluster/redis-inbox-store.js';
import { RedisNodeRegistry } from '../../src/cluster/redis-node-registry.js';
import { RedisRouteStore } from '../../src/cluster/redis-route-store.js';
import { RedisSessionStore } from '../../src/cluster/redis-session-store.js';
import { inboxStoreContract } from './inbox-store.contract.js';
import { nodeInfo, nodeRegistryContract } from './node-registry.contract.js';
import { type SpawnedServers, startRedisCluster, startRedisSentinel } from './redis-servers.js';
import { route, routeStoreContract } from './route-store.contract.js';
import { sessionStoreContract } from './session-store.contract.js';

// The same contracts on a real Redis Cluster (3 masters) and behind a real Sentinel: scripts,
// transactions and hash tags must hold where keys live on different servers.

let cluster: Promise<SpawnedServers> | undefined;
let sentinel: Promise<SpawnedServers> | undefined;
after(async () => {
  await Promise.all([cluster?.then((c) => c.stop()), sentinel?.then((s) => s.stop())]);
});

let n = 0;
async function connect(kind: 'cluster' | 'sentinel'): Promise<RedisClient> {
  let redis: RedisClient;
  if (kind === 'cluster') {
    cluster ??= startRedisCluster();
    redis = createRedis({ cluster: (await cluster).ports.map((p) => `127.0.0.1:${p}`) });
  } else {
    sentinel ??= startRedisSentinel();
    redis = createRedis({
      sentinels: [{ host: '127.0.0.1', port: (await sentinel).ports[1]! }],
      name: 'mymaster',
    });
  }
  return redis;
}
async function closeAll(list: RedisClient[]): Promise<void> {
  await Promise.all(list.map((c) => closeRedis(c)));
}

for (const kind of ['cluster', 'sentinel'] as const) {
  const label = kind === 'cluster' ? 'Redis Cluster' : 'Redis Sentinel';

  routeStoreContract(label, async () => {
    const prefix = `t${++n}:`;
    const [a, b] = [await connect(kind), await connect(kind)];
    return {
      store: new RedisRouteStore(a, prefix),
      peer: new RedisRouteStore(b, prefix),
      cleanup: () => closeAll([a, b]),
    };
  });

  sessionStoreContract(label, async () => {
    const prefix = `t${++n}:`;
    const [a, b] = [await connect(kind), await connect(kind)];
    return {
      store: new RedisSessionStore(a, prefix),
      peer: new RedisSessionStore(b, prefix),
      elapse: (ms) => new Promise((r) => setTimeout(r, ms + 400)),
      cleanup: () => closeAll([a, b]),
    };
  });

  inboxStoreContract(label, async () => {
    const prefix = `t${++n}:`;
    const [a, b] = [await connect(kind), await connect(kind)];
    return {
      store: new RedisInboxStore(a, prefix),
      peer: new RedisInboxStore(b, prefix),
      cleanup: () => closeAll([a, b]),
    };
  });

  nodeRegistryContract(label, async () => {
    const prefix = `t${++n}:`;
    const conns = [await connect(kind), await connect(kind), await connect(kind)];
    const registries = conns.map((c) => new RedisNodeRegistry(c, { prefix }));
    let next = 0;
    return {
      open: () => registries[next++]!,
      async cleanup() {
        for (const r of registries) await r.close();
        await closeAll(conns);
      },
    };
  });
}

describe('Redis Cluster: key placement', () => {
  it('the node registry keys share one slot; route keys of different users spread', async () => {
    const redis = await connect('cluster');
    try {
      const slot = (key: string) => redis.call('CLUSTER', 'KEYSLOT', key) as Promise<number>;
      const registry = new RedisNodeRegistry(redis, { prefix: 'mp:' });
      await registry.publish(nodeInfo('n1'));
      assert.equal(await slot(registry.setKey), await slot(registry.nodeKey('n1')));
      assert.equal(await slot(registry.setKey), await slot(registry.nodeKey('another-node')));
      // A member whose node key expired is pruned (a script over keys of that one slot).
      await redis.sadd(registry.setKey, 'ghost');
      assert.deepEqual(await registry.list(), [nodeInfo('n1')]);
      assert.deepEqual(await redis.smembers(registry.setKey), ['n1']);
      await registry.close();
      const routes = new RedisRouteStore(redis, 'mp:');
      const slots = new Set<number>();
      for (let i = 0; i < 20; i++) {
        await routes.register(`user-${i}`, 1, route('A', i));
        slots.add(await slot(routes.routeKey(`user-${i}`)));
      }
      assert.ok(slots.size > 1, 'users spread over slots (and so over the masters)');
      for (let i = 0; i < 20; i++) assert.equal((await routes.lookup(`user-${i}`)).get(1)?.connId, `A:${i}`);
    } finally {
      await closeRedis(redis);
    }
  });
});
