import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { closeRedis, createRedis, type RedisClient, retryDelay } from '../../src/cluster/redis-connection.js';
import { RedisNodeRegistry } from '../../src/cluster/redis-node-registry.js';
import { RedisRouteStore } from '../../src/cluster/redis-route-store.js';
import { RedisSessionStore } from '../../src/cluster/redis-session-store.js';
import { listenOn } from '../../src/util/listen.js';
import { freePort as closedPort } from '../helpers/free-port.js';
import { redisProxy } from '../helpers/redis-proxy.js';
import { nodeInfo } from './node-registry.contract.js';
import { route } from './route-store.contract.js';
import { session } from './session-store.contract.js';
import { closeTestRedis, freshPrefix, testRedis } from './shared-redis.js';

after(closeTestRedis);

/** Small retry settings: a call during an outage fails after a second or so. */
const quick = {
  maxRetriesPerRequest: 1,
  maxRetryDelayMs: 100,
  connectTimeoutMs: 500,
  commandTimeoutMs: 2_000,
  // ioredis arms this timer on disconnect even for a socket already closed: keep exit quick.
  redis: { disconnectTimeout: 100 },
};

/** Fails with `what` if `p` has not settled after `ms`: a hang guard, not a timing check. */
function settlesWithin<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} still pending after ${ms} ms`)), ms);
  });
  return Promise.race([p, guard]).finally(() => clearTimeout(timer));
}

async function withClient(url: string, fn: (redis: RedisClient, errors: Error[]) => Promise<void>) {
  const errors: Error[] = [];
  const redis = createRedis(url, { ...quick, onError: (e) => errors.push(e) });
  try {
    await fn(redis, errors);
  } finally {
    await closeRedis(redis);
  }
}

describe('Redis unreachable: store calls fail, they do not hang', () => {
  it('every store call rejects when nothing listens at the address', async () => {
    await withClient(`redis://127.0.0.1:${await closedPort()}`, async (redis, errors) => {
      const routes = new RedisRouteStore(redis, 'mp:');
      const sessions = new RedisSessionStore(redis, 'mp:');
      const calls: Array<[string, Promise<unknown>]> = [
        ['routes.lookup', routes.lookup('u1')],
        ['routes.register', routes.register('u1', 1, route('A', 1))],
        ['routes.unregister', routes.unregister('u1', 1, 'A:1')],
        ['routes.onlineCount', routes.onlineCount('A')],
        ['sessions.get', sessions.get('s1')],
        ['sessions.set', sessions.set('s1', session('d1'), 60_000)],
        ['sessions.delete', sessions.delete('s1')],
      ];
      for (const [what, p] of calls) await assert.rejects(settlesWithin(p, 15_000, what), Error, what);
      assert.ok(errors.length > 0, 'connection errors reach onError');
    });
  });

  it('a Redis Cluster none of whose nodes answers: calls reject too', async () => {
    const redis = createRedis({ cluster: [`127.0.0.1:${await closedPort()}`] }, quick);
    try {
      const sessions = new RedisSessionStore(redis, 'mp:');
      const routes = new RedisRouteStore(redis, 'mp:');
      await assert.rejects(settlesWithin(sessions.get('s1'), 15_000, 'sessions.get'));
      await assert.rejects(settlesWithin(routes.register('u1', 1, route('A', 1)), 15_000, 'routes.register'));
    } finally {
      await closeRedis(redis);
    }
  });

  it('the node registry: publish and list reject, close() still completes', async () => {
    await withClient(`redis://127.0.0.1:${await closedPort()}`, async (redis) => {
      const errors: Error[] = [];
      const registry = new RedisNodeRegistry(redis, { onError: (e) => errors.push(e) });
      await assert.rejects(settlesWithin(registry.publish(nodeInfo('n1')), 15_000, 'publish'));
      await assert.rejects(settlesWithin(registry.list(), 15_000, 'list'));
      assert.equal(registry.isLive('127.0.0.1', 4001), true, 'a node counts itself live');
      await settlesWithin(registry.close(), 15_000, 'close');
    });
  });

  it('a call to a server that accepts but never answers rejects (command timeout)', async () => {
    const accepted = new Set<Socket>();
    const silent = createServer((s) => {
      accepted.add(s);
      s.on('error', () => {});
      s.resume(); // reads (so it sees the client hang up) but never answers
    });
    const port = await listenOn(silent, 0, '127.0.0.1', 511, () => {});
    try {
      await withClient(`redis://127.0.0.1:${port}`, async (redis) => {
        const sessions = new RedisSessionStore(redis, 'mp:');
        await assert.rejects(settlesWithin(sessions.get('s1'), 15_000, 'sessions.get'));
      });
    } finally {
      for (const s of accepted) s.destroy();
      silent.close();
    }
  });

  it('after an outage the same stores work again once Redis is back', async () => {
    const proxy = await redisProxy((await testRedis()).url);
    try {
      await withClient(proxy.url, async (redis) => {
        const routes = new RedisRouteStore(redis, await freshPrefix());
        await routes.register('u1', 1, route('A', 1));
        await proxy.cut();
        await assert.rejects(settlesWithin(routes.lookup('u1'), 15_000, 'lookup during the outage'));
        await proxy.restore();
        // The client reconnects by itself (capped backoff); calls fail until it has.
        const deadline = Date.now() + 15_000;
        for (;;) {
          try {
            assert.deepEqual(await routes.lookup('u1'), new Map([[1, route('A', 1)]]));
            break;
          } catch (err) {
            if (Date.now() > deadline) throw err;
            await new Promise((r) => setTimeout(r, 100));
          }
        }
      });
    } finally {
      await proxy.close();
    }
  });
});

describe('createRedis', () => {
  it('backs off exponentially from 50 ms up to the cap', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 100].map((n) => retryDelay(n, 2000)),
      [50, 100, 200, 400, 800, 1600, 2000, 2000],
    );
  });

  it('connects to a URL at once (not lazily) and runs commands', async () => {
    const { url } = await testRedis();
    const redis = createRedis(url);
    assert.equal(redis.status, 'connecting', 'connecting before the first command');
    try {
      assert.equal(await redis.ping(), 'PONG');
    } finally {
      await closeRedis(redis);
    }
  });
});
