import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Route, RouteStore } from '../../src/cluster/route-store.js';

export interface RouteStoreUnderTest {
  store: RouteStore;
  /** Another handle on the same routes, as a second node would have (its own connection). */
  peer?: RouteStore;
  cleanup(): Promise<void>;
}

/** A route as node `node` would register it for its connection `conn`. */
export function route(node: string, conn: number, over: Partial<Route> = {}): Route {
  return {
    host: `10.0.0.${node === 'A' ? 1 : 2}`,
    port: 3001,
    deviceId: `dev-${node}-${conn}`,
    osName: 'android',
    clientVersion: '1.0.0',
    connId: `${node}:${conn}`,
    ...over,
  };
}

/** Lets other pending operations run a random few turns first: varies the interleavings. */
async function jitter(): Promise<void> {
  for (let n = Math.floor(Math.random() * 4); n > 0; n--) await new Promise((r) => setImmediate(r));
}

/** What every RouteStore does, memory or Redis. */
export function routeStoreContract(name: string, factory: () => Promise<RouteStoreUnderTest>): void {
  describe(`RouteStore contract: ${name}`, () => {
    let t: RouteStoreUnderTest;
    let store: RouteStore;
    let peer: RouteStore;
    beforeEach(async () => {
      t = await factory();
      store = t.store;
      peer = t.peer ?? t.store;
    });
    afterEach(async () => {
      await t.cleanup();
    });

    it('finds a registered route', async () => {
      assert.equal(await store.register('u1', 1, route('A', 1)), undefined, 'nothing replaced');
      assert.deepEqual(await store.lookup('u1'), new Map([[1, route('A', 1)]]));
      assert.deepEqual(await peer.lookup('u1'), new Map([[1, route('A', 1)]]), 'seen by another node');
    });

    it('a second register of the same type replaces the route and returns the one it replaced', async () => {
      await store.register('u1', 1, route('A', 1));
      assert.deepEqual(await peer.register('u1', 1, route('B', 7)), route('A', 1));
      assert.deepEqual(await store.lookup('u1'), new Map([[1, route('B', 7)]]));
    });

    it('keeps one route per client type', async () => {
      await store.register('u1', 1, route('A', 1));
      await store.register('u1', 2, route('A', 2, { osName: 'windows' }));
      await peer.register('u1', 3, route('B', 3, { osName: 'web' }));
      const routes = await store.lookup('u1');
      assert.deepEqual([...routes.keys()].sort(), [1, 2, 3]);
      assert.equal(routes.get(2)?.osName, 'windows');
      assert.equal(routes.get(3)?.connId, 'B:3');
      await store.unregister('u1', 2, 'A:2');
      assert.deepEqual([...(await store.lookup('u1')).keys()].sort(), [1, 3], 'the other types stay');
    });

    it('down to one client type and back: each step keeps exactly the routes left', async () => {
      await store.register('u1', 1, route('A', 1));
      await store.register('u1', 2, route('A', 2));
      assert.deepEqual(await store.register('u1', 2, route('A', 3)), route('A', 2), 'replaced among two');
      await store.unregister('u1', 1, 'A:1');
      assert.deepEqual(await store.lookup('u1'), new Map([[2, route('A', 3)]]));
      await store.unregister('u1', 1, 'A:1'); // gone already
      assert.deepEqual(await store.register('u1', 2, route('A', 4)), route('A', 3), 'replaced when alone');
      await store.register('u1', 1, route('A', 5));
      assert.deepEqual(
        await store.lookup('u1'),
        new Map([
          [2, route('A', 4)],
          [1, route('A', 5)],
        ]),
      );
      await store.unregister('u1', 2, 'A:4');
      await store.unregister('u1', 1, 'A:5');
      assert.deepEqual(await store.lookup('u1'), new Map());
    });

    it("unregister with another connection's id leaves the route", async () => {
      await store.register('u1', 1, route('A', 1));
      await peer.register('u1', 1, route('B', 2)); // the device moved to node B
      await store.unregister('u1', 1, 'A:1'); // node A cleans up its old connection late
      assert.deepEqual(await store.lookup('u1'), new Map([[1, route('B', 2)]]));
    });

    it('unregister with the route own connection id removes it', async () => {
      await store.register('u1', 1, route('A', 1));
      await store.unregister('u1', 1, 'A:1');
      assert.deepEqual(await store.lookup('u1'), new Map());
      await store.unregister('u1', 1, 'A:1'); // twice is fine
      await store.unregister('nobody', 1, 'A:1'); // unknown is fine
    });

    it('lookup of an unknown user is an empty map', async () => {
      const routes = await store.lookup('never-seen');
      assert.ok(routes instanceof Map);
      assert.equal(routes.size, 0);
    });

    it('keeps ids with odd characters apart', async () => {
      await store.register('a:b', 1, route('A', 1));
      await store.register('a', 1, route('A', 2));
      await store.register('用户 ü', -1, route('A', 3));
      assert.equal((await store.lookup('a:b')).get(1)?.connId, 'A:1');
      assert.equal((await store.lookup('a')).get(1)?.connId, 'A:2');
      assert.equal((await store.lookup('用户 ü')).get(-1)?.connId, 'A:3');
    });

    it('two nodes registering and unregistering their own connections concurrently leave no route', async () => {
      const users = Array.from({ length: 60 }, (_, i) => `race-${i}`);
      const node = (s: RouteStore, n: string) =>
        Promise.all(
          users.map(async (u, i) => {
            await jitter();
            await s.register(u, 1, route(n, i));
            await jitter();
            await s.unregister(u, 1, `${n}:${i}`);
          }),
        );
      await Promise.all([node(store, 'A'), node(peer, 'B')]);
      for (const u of users) assert.deepEqual(await store.lookup(u), new Map(), u);
    });

    it("an old node's late cleanup racing a newer register never leaves the old route", async () => {
      const users = Array.from({ length: 60 }, (_, i) => `move-${i}`);
      await Promise.all(
        users.map(async (u, i) => {
          await Promise.all([
            (async () => {
              await jitter();
              await store.register(u, 1, route('A', i));
              await jitter();
              await store.unregister(u, 1, `A:${i}`);
            })(),
            (async () => {
              await jitter();
              await peer.register(u, 1, route('B', i));
            })(),
          ]);
        }),
      );
      for (const u of users) {
        const r = (await store.lookup(u)).get(1);
        // B's route, or none (A registered after B, then removed its own); never A's.
        assert.ok(r === undefined || r.connId.startsWith('B:'), `${u}: ${r?.connId}`);
      }
    });

    it('concurrent registers of one user and type each replace exactly one other (a chain)', async () => {
      const n = 40;
      const replaced = await Promise.all(
        Array.from({ length: n }, async (_, i) => {
          await jitter();
          return (i % 2 ? peer : store).register('hot', 1, route(i % 2 ? 'B' : 'A', i));
        }),
      );
      const last = (await store.lookup('hot')).get(1)!.connId;
      const prev = replaced.filter((r) => r !== undefined).map((r) => r.connId);
      assert.equal(replaced.filter((r) => r === undefined).length, 1, 'exactly one register found nothing');
      assert.equal(new Set(prev).size, n - 1, 'no route was replaced twice');
      assert.ok(!prev.includes(last), 'the final route was replaced by nobody');
    });

    it('counts the online users of each node', async () => {
      assert.equal(await store.onlineCount('A'), 0);
      await store.markOnline('A', 'u1');
      await store.markOnline('A', 'u2');
      await store.markOnline('A', 'u1'); // once per user
      await peer.markOnline('B', 'u1');
      assert.equal(await peer.onlineCount('A'), 2);
      assert.equal(await store.onlineCount('B'), 1);
      await store.markOffline('A', 'u1');
      await store.markOffline('A', 'nobody');
      assert.equal(await store.onlineCount('A'), 1);
      await store.clearOnline('A');
      assert.equal(await store.onlineCount('A'), 0);
      assert.equal(await store.onlineCount('B'), 1, 'other nodes untouched');
    });
  });
}
