import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RedisClusterBus } from '../../src/cluster/redis-cluster-bus.js';
import { createRedis } from '../../src/cluster/redis-connection.js';
import { createRedisStores, type RedisStores } from '../../src/cluster/redis-stores.js';
import { ClientType } from '../../src/protocol/index.js';
import { closeAll, connectDevice, type TestDevice } from '../helpers/devices.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait.js';
import { closeTestRedis, freshPrefix, testRedis } from './shared-redis.js';

after(closeTestRedis);

/** Two nodes, each with its own Redis connection, stores and bus, as two machines would run. */
describe('two nodes on Redis stores', () => {
  let prefix: string;
  const stores: RedisStores[] = [];
  // MpushNode.stop() does not close its bus (yet): the test closes the buses it made.
  const buses: RedisClusterBus[] = [];
  let a: TestNode;
  let b: TestNode;
  const devices: TestDevice[] = [];

  async function nodeOnRedis(): Promise<TestNode> {
    const redis = createRedis((await testRedis()).url);
    const s = createRedisStores(redis, { prefix, registry: { ttlMs: 2_000, refreshMs: 200 } });
    stores.push(s);
    const bus = new RedisClusterBus(redis, prefix);
    buses.push(bus);
    return startTestNode({}, { ...s, bus });
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
    devices.push(await connectDevice(b.tcpPort, 'r1'));
    const { client } = await testRedis();
    let raw: Record<string, string> = {};
    const key = `${prefix}ur:r1`;
    for (let i = 0; i < 100 && !raw['1']; i++) {
      raw = await client.hgetall(key);
      if (!raw['1']) await new Promise((r) => setTimeout(r, 20));
    }
    const route = JSON.parse(raw['1']!) as Record<string, unknown>;
    assert.deepEqual(Object.keys(route), ['host', 'port', 'deviceId', 'osName', 'clientVersion', 'connId']);
    assert.equal(route.port, b.node.addresses.gatewayPort);
  });

  it('a push entering node A reaches the device on node B', async () => {
    const onB = await connectDevice(b.tcpPort, 'x1');
    devices.push(onB);
    await waitFor(() => b.node.connections.router.get('x1', ClientType.MOBILE) !== undefined);
    let result = '';
    for (let i = 0; i < 50 && result !== 'success'; i++) {
      // The route is written just after the bind: retry the few ms until it is there.
      const res = await fetch(`http://127.0.0.1:${a.httpPort}/api/push`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ userId: 'x1', content: 'via A', ackModel: 'AUTO_ACK' }),
      });
      const { results } = (await res.json()) as { results: Array<{ result: string; gateway: string }> };
      result = results[0]!.result;
      if (result === 'success')
        assert.equal(results[0]!.gateway, `127.0.0.1:${b.node.addresses.gatewayPort}`);
      else await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(result, 'success');
    await waitFor(() => onB.pushes.some((p) => p.content.toString() === 'via A'));
  });

  it('a bind on node A kicks the same user and type on node B (Redis pub/sub)', async () => {
    const onB = await connectDevice(b.tcpPort, 'k1');
    devices.push(onB);
    await waitFor(() => b.node.connections.router.get('k1', ClientType.MOBILE) !== undefined);
    // The route write is on its way to Redis when the bind is answered; a bind on A racing it would
    // find no route to kick (B's late write then displaces A's device instead): wait until it landed.
    const bPort = b.node.addresses.gatewayPort;
    let routed: number | undefined;
    for (let i = 0; i < 100 && routed !== bPort; i++) {
      routed = (await stores[0]!.routes.lookup('k1')).get(ClientType.MOBILE)?.port;
      if (routed !== bPort) await new Promise((r) => setTimeout(r, 20));
    }
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
