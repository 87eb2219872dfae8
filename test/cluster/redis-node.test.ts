import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RedisClusterBus } from '../../src/cluster/redis-cluster-bus.js';
import { createRedis } from '../../src/cluster/redis-connection.js';
import { createRedisStores, type RedisStores } from '../../src/cluster/redis-stores.js';
import type { Config, DeepPartial } from '../../src/config/index.js';
import { MpushNode } from '../../src/node.js';
import { ClientType } from '../../src/protocol/index.js';
import { closeAll, connectDevice, connectUnbound, type TestDevice } from '../helpers/devices.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { redisProxy } from '../helpers/redis-proxy.js';
import { waitFor } from '../helpers/wait.js';
import { closeTestRedis, freshPrefix, testRedis } from './shared-redis.js';

after(closeTestRedis);

describe('connIds', () => {
  it("read a connection's node and opening time; a connId without the time (MPush's, older nodes') has none", () => {
    const at = 1_764_000_000_123;
    const id = `10.0.0.1:3001:42@${at.toString(36)}`;
    assert.equal(MpushNode.nodeOf(id), '10.0.0.1:3001');
    assert.equal(MpushNode.openedAt(id), at);
    assert.equal(MpushNode.openedAt('10.0.0.1:3001:42'), undefined);
    assert.equal(MpushNode.openedAt('node@a:42'), undefined, 'an @ in the node id is not a time');
    assert.equal(MpushNode.openedAt('5f3c9a'), undefined);
    assert.equal(MpushNode.openedAt('n:1@'), undefined);
  });
});

/** Two nodes, each with its own Redis connection, stores and bus, as two machines would run. */
describe('two nodes on Redis stores', () => {
  let prefix: string;
  const stores: RedisStores[] = [];
  // MpushNode.stop() does not close its bus (yet): the test closes the buses it made.
  const buses: RedisClusterBus[] = [];
  let a: TestNode;
  let b: TestNode;
  const devices: TestDevice[] = [];

  async function nodeOnRedis(url?: string, overrides: DeepPartial<Config> = {}): Promise<TestNode> {
    const redis = createRedis(url ?? (await testRedis()).url);
    const s = createRedisStores(redis, { prefix, registry: { ttlMs: 2_000, refreshMs: 200 } });
    stores.push(s);
    const bus = new RedisClusterBus(redis, prefix);
    buses.push(bus);
    return startTestNode(overrides, { ...s, bus });
  }

  before(async () => {
    prefix = await freshPrefix();
    a = await nodeOnRedis();
    b = await nodeOnRedis();
    // Each node learns of the other from its registry's refresh loop.
    await waitFor(
      () =>
        stores[0]!.registry.isLive(b.node.gatewayHost, b.node.addresses.gatewayPort) &&
        stores[1]!.registry.isLive(a.node.gatewayHost, a.node.addresses.gatewayPort),
      5_000,
      'the nodes to see each other',
    );
  });
  after(async () => {
    await closeAll(devices);
    await a?.stop();
    await b?.stop();
    for (const bus of buses) await bus.close();
  });

  it("a device bound on B has its route in Redis in MPush's schema", async () => {
    const before = Date.now();
    devices.push(await connectDevice(b.tcpPort, 'r1'));
    const after = Date.now();
    const { client } = await testRedis();
    const raw = await client.hgetall(`${prefix}ur:r1`);
    const route = JSON.parse(raw['1']!) as Record<string, unknown>;
    assert.deepEqual(Object.keys(route), ['host', 'port', 'deviceId', 'osName', 'clientVersion', 'connId']);
    assert.equal(route.port, b.node.addresses.gatewayPort);
    // connId: `<nodeId>:<connection id>@<opened at, base 36>`.
    const connId = route.connId as string;
    assert.match(connId, /^.+:\d+@[0-9a-z]+$/);
    assert.equal(MpushNode.nodeOf(connId), b.node.id);
    const opened = MpushNode.openedAt(connId)!;
    assert.ok(
      opened >= before && opened <= after,
      `opened ${opened}, connected between ${before} and ${after}`,
    );
  });

  it('a push entering node A reaches the device on node B', async () => {
    const onB = await connectDevice(b.tcpPort, 'x1');
    devices.push(onB);
    // The bind was answered once its route was written: the first push through A finds it.
    const res = await fetch(`http://127.0.0.1:${a.httpPort}/api/push`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'x1', content: 'via A', ackModel: 'AUTO_ACK' }),
    });
    const { results } = (await res.json()) as { results: Array<{ result: string; gateway: string }> };
    assert.equal(results[0]!.result, 'success', JSON.stringify(results));
    assert.equal(results[0]!.gateway, `127.0.0.1:${b.node.addresses.gatewayPort}`);
    await waitFor(() => onB.pushes.some((p) => p.content.toString() === 'via A'));
  });

  it('a bind on node A kicks the same user and type on node B (Redis pub/sub)', async () => {
    const onB = await connectDevice(b.tcpPort, 'k1');
    devices.push(onB);
    await waitFor(() => b.node.connections.router.get('k1', ClientType.MOBILE) !== undefined);
    // Answered once its route is written: a bind on A now finds B's route, and kicks B's device.
    const bPort = b.node.addresses.gatewayPort;
    const routed = (await stores[0]!.routes.lookup('k1')).get(ClientType.MOBILE)?.port;
    assert.equal(routed, bPort, "B's route for k1 is in Redis");
    let kicked = false;
    onB.client.once('kick', () => {
      kicked = true;
    });
    devices.push(await connectDevice(a.tcpPort, 'k1'));
    await waitFor(() => kicked, 5_000, 'the device on B to be kicked');
    await waitFor(() => b.node.connections.router.get('k1', ClientType.MOBILE) === undefined);
    let owner: number | undefined;
    for (let i = 0; i < 100 && owner !== a.node.addresses.gatewayPort; i++) {
      owner = (await stores[0]!.routes.lookup('k1')).get(ClientType.MOBILE)?.port;
      if (owner !== a.node.addresses.gatewayPort) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(owner, a.node.addresses.gatewayPort, "the route is A's, B's late cleanup did not remove it");
  });

  /** A third node whose Redis traffic goes through a {@link redisProxy}; `done` stops both. */
  async function slowNode(overrides: DeepPartial<Config> = {}) {
    const proxy = await redisProxy((await testRedis()).url);
    const node = await nodeOnRedis(proxy.url, overrides);
    const store = stores.at(-1)!;
    const done = async () => {
      proxy.release();
      await node.stop();
      await proxy.close();
    };
    return { proxy, node, store, done };
  }

  /** Settles with undefined on the OK, with the error on anything else; `answered` says whether it has. */
  function pending(p: Promise<void>): { result: Promise<Error | undefined>; answered: () => boolean } {
    let answered = false;
    const result = p.then(
      () => undefined,
      (err: Error) => err,
    );
    void result.then(() => {
      answered = true;
    });
    return { result, answered: () => answered };
  }

  it("answers BIND once the route is written: a node slow to reach Redis cannot displace the device's next connection", async () => {
    const slow = await slowNode();
    const { client: device } = await connectUnbound(slow.node.tcpPort, { deviceId: `mover-${process.pid}` });
    const moved: TestDevice[] = [];
    try {
      slow.proxy.hold();
      const bind = pending(device.bindUser('mover'));
      // The node has bound the user (an OK sent with the binding would be here within a few ms), but
      // its route write cannot reach Redis.
      await waitFor(
        () => slow.node.node.connections.router.get('mover', ClientType.MOBILE) !== undefined,
        3_000,
        'the slow node to bind the user',
      );
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(bind.answered(), false, 'no OK while the route cannot be written');

      slow.proxy.release();
      assert.equal(await bind.result, undefined, 'the bind succeeds');
      const route = (await stores[0]!.routes.lookup('mover')).get(ClientType.MOBILE);
      assert.equal(
        route?.port,
        slow.node.node.addresses.gatewayPort,
        'the route is in Redis when the OK arrives',
      );
      assert.equal(slow.node.node.connections.stats.bindsUnrouted, 0, 'answered after the write');

      // The device moves on at once; its new connection is the newer binding and stays.
      await device.close();
      const onB = await connectDevice(b.tcpPort, 'mover');
      moved.push(onB);
      await waitFor(
        () => slow.node.node.connections.router.get('mover', ClientType.MOBILE) === undefined,
        3_000,
        'the slow node to let go of the old connection',
      );
      // A round trip on the slow node's own Redis connection: whatever it had queued has landed.
      await slow.store.redis.ping();
      const now = (await stores[0]!.routes.lookup('mover')).get(ClientType.MOBILE);
      assert.equal(now?.port, b.node.addresses.gatewayPort, "the route is the new connection's");
      assert.equal(onB.kicks, 0, 'the new connection was not kicked');
      assert.equal(onB.client.boundUserId, 'mover');
    } finally {
      await device.close();
      await closeAll(moved);
      await slow.done();
    }
  });

  it('cluster.bindWaitMs bounds the wait: past it the OK goes, and the route follows when Redis answers', async () => {
    const slow = await slowNode({ cluster: { bindWaitMs: 200 } });
    const { client: device } = await connectUnbound(slow.node.tcpPort);
    try {
      slow.proxy.hold();
      const bind = pending(device.bindUser('patient'));
      await waitFor(bind.answered, 5_000, 'the OK after cluster.bindWaitMs');
      assert.equal(await bind.result, undefined, 'the bind succeeds');
      assert.equal((await stores[0]!.routes.lookup('patient')).size, 0, 'the route is still held back');
      assert.equal(slow.node.node.connections.stats.bindsUnrouted, 1, 'counted (mpush_binds_unrouted_total)');
      slow.proxy.release();
      await slow.store.redis.ping();
      const route = (await stores[0]!.routes.lookup('patient')).get(ClientType.MOBILE);
      assert.equal(route?.port, slow.node.node.addresses.gatewayPort);
      assert.equal(slow.node.node.connections.stats.bindsUnrouted, 1, 'counted once');
    } finally {
      await device.close();
      await slow.done();
    }
  });

  it('a bind displaced while its route is being written is answered with ERROR, not OK', async () => {
    const slow = await slowNode();
    const first = await connectUnbound(slow.node.tcpPort);
    const second = await connectUnbound(slow.node.tcpPort, { deviceId: `second-${process.pid}` });
    try {
      slow.proxy.hold();
      const bind = pending(first.client.bindUser('twice'));
      await waitFor(
        () => slow.node.node.connections.router.get('twice', ClientType.MOBILE) !== undefined,
        3_000,
        'the first bind',
      );
      // The same user's second device, same type, same node: it displaces the first at once.
      const again = pending(second.client.bindUser('twice'));
      await waitFor(() => first.kicks > 0, 3_000, 'the first device to be kicked');
      assert.equal(bind.answered(), false);

      slow.proxy.release();
      assert.match(String(await bind.result), /bind superseded/);
      assert.equal(await again.result, undefined, "the second device's bind succeeds");
      const route = (await stores[0]!.routes.lookup('twice')).get(ClientType.MOBILE);
      assert.equal(route?.deviceId, `second-${process.pid}`);
      assert.equal(first.client.state, 'ready', 'the displaced device stays connected, unbound');
    } finally {
      await closeAll([first, second]);
      await slow.done();
    }
  });

  it('a stopped node leaves the registry at once and its connection is closed', async () => {
    const extra = await nodeOnRedis();
    const s = stores.at(-1)!;
    const id = extra.node.id;
    assert.ok((await stores[0]!.registry.list()).some((n) => n.id === id));
    await extra.stop();
    assert.ok(!(await stores[0]!.registry.list()).some((n) => n.id === id));
    assert.equal(s.redis.status, 'end', 'the last store to close quit the shared connection');
  });
});
