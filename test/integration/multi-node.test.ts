import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PushSender } from '../../src/client/push/push-sender.js';
import { StoreRouteSource } from '../../src/client/push/route-source.js';
import { MemoryClusterBus } from '../../src/cluster/cluster-bus.js';
import { MemoryNodeRegistry } from '../../src/cluster/node-registry.js';
import { MemoryRouteStore } from '../../src/cluster/route-store.js';
import { MemorySessionStore } from '../../src/cluster/session-store.js';
import { ClientType } from '../../src/protocol/index.js';
import { closeAll, connectDevice, type TestDevice } from '../helpers/devices.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait.js';

/** Two nodes in one process sharing memory stores and bus: the cluster logic without Redis. */
describe('two nodes sharing stores', () => {
  const routes = new MemoryRouteStore();
  const registry = new MemoryNodeRegistry();
  const bus = new MemoryClusterBus();
  const sessions = new MemorySessionStore();
  let a: TestNode;
  let b: TestNode;
  const devices: TestDevice[] = [];

  before(async () => {
    a = await startTestNode({}, { routes, registry, bus, sessions });
    b = await startTestNode({}, { routes, registry, bus, sessions });
  });
  after(async () => {
    await closeAll(devices);
    await a.stop();
    await b.stop();
  });

  it('a bind on node B kicks the same user and type on node A', async () => {
    const onA = await connectDevice(a.tcpPort, 'k1');
    devices.push(onA);
    const kicked = new Promise((resolve) => onA.client.once('kick', resolve));
    devices.push(await connectDevice(b.tcpPort, 'k1'));
    const kick = (await kicked) as { deviceId: string; userId: string };
    assert.equal(kick.userId, 'k1');
    assert.notEqual(onA.client.state, 'closed', 'kicked, not disconnected');
    await waitFor(() => a.node.connections.router.get('k1', ClientType.MOBILE) === undefined);
    const route = (await routes.lookup('k1')).get(ClientType.MOBILE);
    assert.equal(route?.port, b.node.addresses.gatewayPort, "the route is B's");
  });

  it("a push entering node A for a user on node B is delivered, with B's result", async () => {
    const onB = await connectDevice(b.tcpPort, 'x1');
    devices.push(onB);
    const res = await fetch(`http://127.0.0.1:${a.httpPort}/api/push`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'x1', content: 'via A', ackModel: 'AUTO_ACK' }),
    });
    const { results } = (await res.json()) as { results: Array<{ result: string; gateway: string }> };
    assert.equal(results[0]!.result, 'success');
    assert.equal(results[0]!.gateway, `127.0.0.1:${b.node.addresses.gatewayPort}`);
    assert.equal(onB.pushes[0]?.content.toString(), 'via A');
  });

  it("a user with a device on each node, pushed through A's API: A's pushed in-process, B's through B's gateway", async () => {
    const onA = await connectDevice(a.tcpPort, 'x2', { osName: 'android' });
    const onB = await connectDevice(b.tcpPort, 'x2', { osName: 'Windows' });
    devices.push(onA, onB);
    const before = { a: a.node.gateway.stats.pushes, b: b.node.gateway.stats.pushes };
    const res = await fetch(`http://127.0.0.1:${a.httpPort}/api/push`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'x2', content: 'both', ackModel: 'AUTO_ACK' }),
    });
    const { results } = (await res.json()) as {
      results: Array<{ clientType: number; result: string; gateway: string }>;
    };
    const byType = new Map(results.map((r) => [r.clientType, r]));
    assert.equal(byType.get(ClientType.MOBILE)?.result, 'success');
    assert.equal(byType.get(ClientType.MOBILE)?.gateway, `127.0.0.1:${a.node.addresses.gatewayPort}`);
    assert.equal(byType.get(ClientType.PC)?.result, 'success');
    assert.equal(byType.get(ClientType.PC)?.gateway, `127.0.0.1:${b.node.addresses.gatewayPort}`);
    assert.equal(onA.pushes[0]?.content.toString(), 'both');
    assert.equal(onB.pushes[0]?.content.toString(), 'both');
    assert.equal(a.node.gateway.stats.pushes, before.a, "A's own user did not go through A's gateway");
    assert.equal(b.node.gateway.stats.pushes, before.b + 1, "B's user went through B's gateway");
  });

  it('a broadcast reaches every node and reports one total', async () => {
    const extra = [await connectDevice(a.tcpPort, 'bcA'), await connectDevice(b.tcpPort, 'bcB')];
    devices.push(...extra);
    const sender = PushSender.create({
      gateways: [{ host: '127.0.0.1', port: a.node.addresses.gatewayPort }],
      routeSource: new StoreRouteSource(routes),
      broadcastTargets: async () =>
        (await registry.list()).map((n) => ({ host: n.gatewayHost, port: n.gatewayPort })),
    });
    const bound = a.node.connections.router.boundConnections + b.node.connections.router.boundConnections;
    const r = await sender.broadcast({ content: 'everyone' });
    assert.equal(r.nodes.length, 2);
    assert.equal(r.matched, bound);
    assert.equal(r.sent, bound);
    await sender.stop();
  });

  it('a route to a node missing from the registry is offline', async () => {
    await routes.register('ghost', ClientType.MOBILE, {
      host: '127.0.0.1',
      port: 1,
      deviceId: 'd',
      osName: 'android',
      clientVersion: '1',
      connId: 'dead-node:7',
    });
    const res = await fetch(`http://127.0.0.1:${a.httpPort}/api/push`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'ghost', content: 'x' }),
    });
    const { results } = (await res.json()) as { results: Array<{ result: string }> };
    assert.equal(results[0]!.result, 'offline');
  });
});
