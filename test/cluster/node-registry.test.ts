import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { MemoryNodeRegistry, type NodeRegistry } from '../../src/cluster/node-registry.js';
import { RedisNodeRegistry, type RedisNodeRegistryOptions } from '../../src/cluster/redis-node-registry.js';
import { waitFor } from '../helpers/wait.js';
import { nodeInfo, nodeRegistryContract } from './node-registry.contract.js';
import { closeTestRedis, freshPrefix, newClient, testRedis } from './shared-redis.js';

after(closeTestRedis);

nodeRegistryContract('memory', async () => {
  const table = new MemoryNodeRegistry();
  const opened: NodeRegistry[] = [];
  return {
    open() {
      const r = table.peer();
      opened.push(r);
      return r;
    },
    async cleanup() {
      for (const r of opened) await r.close();
    },
  };
});

/** Redis registries of one cluster: one connection each, as separate nodes would have. */
async function redisCluster(opts: Omit<RedisNodeRegistryOptions, 'prefix'> = {}) {
  const prefix = await freshPrefix();
  const opened: Array<{ registry: RedisNodeRegistry; conn: Redis }> = [];
  return {
    prefix,
    async open(): Promise<{ registry: RedisNodeRegistry; conn: Redis }> {
      const conn = await newClient();
      const registry = new RedisNodeRegistry(conn, { prefix, ...opts });
      opened.push({ registry, conn });
      return { registry, conn };
    },
    async cleanup() {
      for (const o of opened) {
        await o.registry.close();
        o.conn.disconnect();
      }
    },
  };
}

// The contract's open() is synchronous: connect up front, a few per test.
nodeRegistryContract('Redis', async () => {
  const c = await redisCluster();
  const ready = await Promise.all([c.open(), c.open(), c.open()]);
  let next = 0;
  return {
    open: () => ready[next++]!.registry,
    cleanup: () => c.cleanup(),
  };
});

describe('RedisNodeRegistry: TTL and refresh', () => {
  const fast = { ttlMs: 300, refreshMs: 100 };

  it('a node that keeps refreshing outlives its TTL many times over', async () => {
    const c = await redisCluster(fast);
    try {
      const { registry: a } = await c.open();
      await a.publish(nodeInfo('n1'));
      await new Promise((r) => setTimeout(r, 1_000));
      assert.deepEqual(await a.list(), [nodeInfo('n1')]);
    } finally {
      await c.cleanup();
    }
  });

  it('a node that stops refreshing (it died) disappears after its TTL, and from isLive', async () => {
    const c = await redisCluster(fast);
    try {
      const { registry: a } = await c.open();
      const { registry: b, conn: bConn } = await c.open();
      await a.publish(nodeInfo('n1'));
      await b.publish(nodeInfo('n2'));
      await waitFor(() => a.isLive('127.0.0.1', 4002), 5_000, 'A to learn of B from its refresh loop');
      bConn.disconnect(); // B's process is gone: no more refreshes, no close()
      await waitFor(() => !a.isLive('127.0.0.1', 4002), 5_000, "B to expire from A's cache");
      assert.deepEqual(await a.list(), [nodeInfo('n1')]);
      const { client } = await testRedis();
      assert.deepEqual(await client.smembers(`${c.prefix}{nodes}`), ['n1'], 'the dead member was pruned');
    } finally {
      await c.cleanup();
    }
  });

  it("keeps a node's info at <prefix>{nodes}:<id> with a TTL, and its id in <prefix>{nodes}", async () => {
    const c = await redisCluster();
    try {
      const { registry } = await c.open();
      await registry.publish(nodeInfo('n1', { connections: 3 }));
      const { client } = await testRedis();
      const key = `${c.prefix}{nodes}:n1`;
      assert.deepEqual(JSON.parse((await client.get(key))!), nodeInfo('n1', { connections: 3 }));
      const pttl = await client.pttl(key);
      assert.ok(pttl > 0 && pttl <= 10_000, `pttl ${pttl}`);
      assert.deepEqual(await client.smembers(`${c.prefix}{nodes}`), ['n1']);
      await registry.close();
      assert.equal(await client.exists(key), 0);
      assert.deepEqual(await client.smembers(`${c.prefix}{nodes}`), []);
    } finally {
      await c.cleanup();
    }
  });

  it('list() prunes members whose key expired and keeps the live ones', async () => {
    const c = await redisCluster();
    try {
      const { client } = await testRedis();
      // A member whose key has expired, next to a live one.
      await client.sadd(`${c.prefix}{nodes}`, 'ghost');
      const { registry } = await c.open();
      await registry.publish(nodeInfo('n1'));
      assert.deepEqual(await registry.list(), [nodeInfo('n1')]);
      assert.deepEqual(await client.smembers(`${c.prefix}{nodes}`), ['n1']);
    } finally {
      await c.cleanup();
    }
  });

  it("list() skips an entry that is not a node's info, reads an older writer's with defaults, prunes neither", async () => {
    const c = await redisCluster();
    try {
      const { client } = await testRedis();
      await client.set(`${c.prefix}{nodes}:bad`, '{"id":"bad","gatewayHost":"10.0.0.8"}'); // no gatewayPort
      await client.set(`${c.prefix}{nodes}:junk`, 'junk');
      await client.set(`${c.prefix}{nodes}:old`, '{"id":"old","gatewayHost":"10.0.0.9","gatewayPort":4009}');
      await client.sadd(`${c.prefix}{nodes}`, 'bad', 'junk', 'old');
      const { registry } = await c.open();
      await registry.publish(nodeInfo('n1'));
      assert.deepEqual(await registry.list(), [
        nodeInfo('n1'),
        {
          id: 'old',
          gatewayHost: '10.0.0.9',
          gatewayPort: 4009,
          host: '',
          port: 0,
          tlsPort: 0,
          connections: 0,
          onlineUsers: 0,
        },
      ]);
      assert.equal(registry.isLive('10.0.0.9', 4009), true);
      // Their keys exist: they are not ours to judge expired.
      assert.deepEqual((await client.smembers(`${c.prefix}{nodes}`)).sort(), ['bad', 'junk', 'n1', 'old']);
    } finally {
      await c.cleanup();
    }
  });

  it('refuses a refresh period that would let its own key expire', async () => {
    const conn = await newClient();
    try {
      assert.throws(() => new RedisNodeRegistry(conn, { ttlMs: 1000, refreshMs: 1000 }), RangeError);
    } finally {
      conn.disconnect();
    }
  });
});
