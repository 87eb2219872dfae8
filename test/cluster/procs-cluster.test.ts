import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { HandshakeEvent } from '../../src/client/device/index.js';
import { PushSender } from '../../src/client/push/push-sender.js';
import { type RouteSource, StoreRouteSource } from '../../src/client/push/route-source.js';
import type { BroadcastResult, PushResult } from '../../src/client/push/types.js';
import { isLiveNow } from '../../src/cluster/node-registry.js';
import { redisStores } from '../../src/cluster/node-stores.js';
import { RedisNodeRegistry } from '../../src/cluster/redis-node-registry.js';
import { RedisRouteStore } from '../../src/cluster/redis-route-store.js';
import { closeAll, connectDevice, type TestDevice } from '../helpers/devices.js';
import { freePort } from '../helpers/free-port.js';
import {
  api,
  eventually,
  liveNodeIds,
  type NodeProcess,
  routeOf,
  spawnNode,
} from '../helpers/node-process.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';
import { redisProxy } from '../helpers/redis-proxy.js';

/** Registry timing of every node here: a killed node leaves the registry within ~1.5 s. */
const TTL_MS = 1500;
const REFRESH_MS = 300;

interface Stats {
  boundConnections: number;
  connections: number;
}

const stats = (n: NodeProcess) => api<Stats>(n, 'GET', '/api/stats');
const gatewayOf = (n: NodeProcess) => `127.0.0.1:${n.gatewayPort}`;

async function pushVia(n: NodeProcess, body: Record<string, unknown>): Promise<PushResult[]> {
  return (await api<{ results: PushResult[] }>(n, 'POST', '/api/push', body)).results;
}

describe('three node processes on one Redis prefix', () => {
  let redis: TestRedis;
  let a: NodeProcess;
  let b: NodeProcess;
  let c: NodeProcess;
  const devices: TestDevice[] = [];
  const cleanups: Array<() => Promise<unknown>> = [];

  /** Waits until the route of `userId` in Redis is `node`'s, and returns it. */
  const routeAt = (userId: string, node: NodeProcess) =>
    eventually(async () => {
      const r = await routeOf(redis.client, redis.prefix, userId);
      return r?.port === node.gatewayPort ? r : undefined;
    }, `the route of ${userId} to point at node ${node.id}`);

  before(async () => {
    redis = await startTestRedis();
    const opts = {
      redisUrl: redis.url,
      prefix: redis.prefix,
      registryTtlMs: TTL_MS,
      registryRefreshMs: REFRESH_MS,
    };
    [a, b, c] = await Promise.all([spawnNode(opts), spawnNode(opts), spawnNode(opts)]);
    const ids = [a.id, b.id, c.id].sort();
    await eventually(
      async () => JSON.stringify(await liveNodeIds(redis.client, redis.prefix)) === JSON.stringify(ids),
      'the registry to list the three nodes',
    );
  });

  after(async () => {
    await closeAll(devices);
    for (const fn of cleanups) await fn();
    await Promise.all([a, b, c].map((n) => n?.stop()));
    await redis?.close();
  });

  it("a device binding on B kicks the same user's same-type device on A", async () => {
    const onA = await connectDevice(a.tcpPort, 'kick-1');
    devices.push(onA);
    const first = await routeAt('kick-1', a);
    const kicked = new Promise<{ userId: string }>((resolve) => onA.client.once('kick', resolve));
    const onB = await connectDevice(b.tcpPort, 'kick-1');
    devices.push(onB);
    assert.equal((await kicked).userId, 'kick-1');
    assert.equal(onA.client.state, 'ready', 'the kicked device stays connected');
    assert.equal(onA.client.boundUserId, undefined, 'unbound');
    const route = await routeAt('kick-1', b);
    assert.ok(route.connId.startsWith(`${b.id}:`), `connId ${route.connId} is B's`);
    assert.notEqual(route.connId, first.connId);
    // A has handled the kick (its cleanup compares connIds): B's route is still there after it.
    assert.equal((await stats(a)).boundConnections, 0);
    assert.deepEqual(await routeOf(redis.client, redis.prefix, 'kick-1'), route);
    assert.equal(onB.client.boundUserId, 'kick-1', 'the new device was not kicked back');
  });

  it("a push entering A's HTTP API for a user on B is delivered, with B's result", async () => {
    const onB = await connectDevice(b.tcpPort, 'push-1');
    devices.push(onB);
    await routeAt('push-1', b);
    const results = await pushVia(a, { userId: 'push-1', content: 'via A', ackModel: 'AUTO_ACK' });
    assert.equal(results.length, 1);
    const [r] = results;
    assert.equal(r!.result, 'success', JSON.stringify(r));
    assert.equal(r!.gateway, gatewayOf(b));
    assert.equal(typeof r!.timePoints?.acked, 'number', 'B saw the AUTO_ACK');
    await eventually(() => onB.pushes.some((p) => p.content.toString() === 'via A'), 'the push on B');
    assert.equal(onB.pushes.find((p) => p.content.toString() === 'via A')!.ackModel, 'auto');
  });

  it('PushSender routes directly to the node, and follows the user when it moves mid-flight', async () => {
    const registry = new RedisNodeRegistry(redis.client, {
      prefix: redis.prefix,
      ttlMs: TTL_MS,
      refreshMs: REFRESH_MS,
    });
    const sender = PushSender.create({
      gateways: [{ host: '127.0.0.1', port: c.gatewayPort }],
      routeSource: new StoreRouteSource(new RedisRouteStore(redis.client, redis.prefix), (h, p) =>
        isLiveNow(registry, h, p),
      ),
      routeCacheMs: 600_000, // the cache keeps saying A after the move
    });
    cleanups.push(
      () => sender.stop(),
      () => registry.close(),
    );
    const deviceId = `mover-${process.pid}`;
    const onA = await connectDevice(a.tcpPort, 'move-1', { deviceId });
    devices.push(onA);
    await routeAt('move-1', a);
    const [first] = await sender.send({ userId: 'move-1', content: 'one', ackModel: 'AUTO_ACK' });
    assert.equal(first!.result, 'success', JSON.stringify(first));
    assert.equal(first!.gateway, gatewayOf(a), 'sent straight to A, not through the seed gateway C');
    assert.equal(first!.redirects, 0);

    // The device leaves A and binds on B; the sender's cache still says A.
    const boundOnA = (await stats(a)).boundConnections;
    await onA.client.close();
    await eventually(async () => (await stats(a)).boundConnections === boundOnA - 1, 'A to drop the device');
    const onB = await connectDevice(b.tcpPort, 'move-1', { deviceId });
    devices.push(onB);
    await routeAt('move-1', b);

    const [second] = await sender.send({ userId: 'move-1', content: 'two', ackModel: 'AUTO_ACK' });
    assert.equal(second!.result, 'success', JSON.stringify(second));
    assert.ok(second!.redirects >= 1, `redirects ${second!.redirects}`);
    assert.equal(second!.gateway, gatewayOf(b));
    await eventually(() => onB.pushes.some((p) => p.content.toString() === 'two'), 'the push on B');
    assert.ok(!onA.pushes.some((p) => p.content.toString() === 'two'));
  });

  it('a broadcast on any node reaches every node', async () => {
    for (const n of [a, b, c]) devices.push(await connectDevice(n.tcpPort, `bc-${n.gatewayPort}`));
    for (const n of [a, b, c]) await routeAt(`bc-${n.gatewayPort}`, n);
    const bound = devices.filter((d) => d.client.state === 'ready' && d.client.boundUserId !== undefined);
    let total = 0;
    for (const n of [a, b, c]) total += (await stats(n)).boundConnections;
    assert.equal(total, bound.length, 'the nodes hold the devices this test bound');

    const result = await api<BroadcastResult>(c, 'POST', '/api/broadcast', {
      content: 'to everyone',
      wait: true,
    });
    assert.equal(result.result, 'success', JSON.stringify(result));
    assert.equal(result.nodes.length, 3);
    assert.deepEqual(result.nodes.map((n) => n.gateway).sort(), [a, b, c].map(gatewayOf).sort());
    assert.equal(result.matched, total);
    assert.equal(result.sent, total);
    await eventually(
      () => bound.every((d) => d.pushes.some((p) => p.content.toString() === 'to everyone')),
      'every bound device to get the broadcast',
    );
  });

  it("a route to a node missing from the registry is offline; the node's device fast-connects elsewhere", async () => {
    const stays = await connectDevice(c.tcpPort, 'gone-1');
    const moves = await connectDevice(c.tcpPort, 'gone-2', {
      servers: [
        { host: '127.0.0.1', port: c.tcpPort },
        { host: '127.0.0.1', port: a.tcpPort },
      ],
      autoReconnect: true,
      reconnect: { initialMs: 50, maxMs: 200 },
    });
    devices.push(stays, moves);
    await routeAt('gone-1', c);
    await routeAt('gone-2', c);
    const handshakes: HandshakeEvent[] = [];
    moves.client.on('handshake', (h) => handshakes.push(h));
    const rebound = new Promise<void>((resolve) => moves.client.once('bind', () => resolve()));

    await c.kill();
    // Its device fast-connects to A with the session C stored in Redis, and binds there.
    await rebound;
    assert.equal(handshakes.length, 1);
    assert.equal(handshakes[0]!.fast, true, 'fast connect on A with the session from Redis');
    assert.deepEqual(moves.client.server, { host: '127.0.0.1', port: a.tcpPort });
    await routeAt('gone-2', a);

    // C's key expires; its routes stay in Redis but point at a node that is gone.
    await eventually(
      async () => !(await liveNodeIds(redis.client, redis.prefix)).includes(c.id),
      "C's registry entry to expire",
    );
    assert.equal((await routeOf(redis.client, redis.prefix, 'gone-1'))?.port, c.gatewayPort, 'stale route');
    // A's registry cache follows within a refresh; until then a push may fail on C's closed
    // gateway. It converges to offline, and never succeeds.
    await new Promise((r) => setTimeout(r, 2 * REFRESH_MS));
    const seen: string[] = [];
    await eventually(
      async () => {
        const [r] = await pushVia(a, { userId: 'gone-1', content: 'anyone?' });
        seen.push(r!.result);
        return r!.result === 'offline';
      },
      "a push for C's user to be offline",
      15_000,
      200,
    );
    assert.ok(
      seen.every((s) => s === 'offline' || s === 'failure'),
      `results: ${seen.join(', ')}`,
    );

    const [r] = await pushVia(b, { userId: 'gone-2', content: 'found you', ackModel: 'AUTO_ACK' });
    assert.equal(r!.result, 'success', JSON.stringify(r));
    assert.equal(r!.gateway, gatewayOf(a));
    await eventually(() => moves.pushes.some((p) => p.content.toString() === 'found you'), 'the push on A');
  });
});

// ---- Redis going away -------------------------------------------------------------------------

async function pong(port: number): Promise<boolean> {
  const r = new Redis(port, '127.0.0.1', {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  r.on('error', () => {});
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

/** A private redis-server that can be stopped and started again on the same port, empty. */
async function privateRedis() {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0)
    throw new Error('the Redis outage tests spawn redis-server: install it (apt-get install redis-server)');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'mpush-procs-redis-'));
  let proc: ChildProcess | undefined;
  const start = async () => {
    proc = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
      { stdio: 'ignore' },
    );
    proc.once('error', () => {});
    await eventually(() => pong(port), `redis-server on ${port}`);
  };
  const stop = async () => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    start,
    stop,
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Pushes through one node's gateway with a fixed route: no Redis on the sender's side. */
function directSender(node: NodeProcess): PushSender {
  const source: RouteSource = {
    lookup: async (userIds) =>
      new Map(
        userIds.map((u) => [u, [{ clientType: 1, host: '127.0.0.1', port: node.gatewayPort, connId: '' }]]),
      ),
  };
  return PushSender.create({
    gateways: [{ host: '127.0.0.1', port: node.gatewayPort }],
    routeSource: source,
  });
}

describe('Redis going away under running node processes', () => {
  const devices: TestDevice[] = [];
  const nodes: NodeProcess[] = [];
  const cleanups: Array<() => Promise<unknown>> = [];

  after(async () => {
    await closeAll(devices);
    await Promise.all(nodes.map((n) => n.stop()));
    for (const fn of cleanups.reverse()) await fn();
  });

  it('the inbox through a Redis restart: store pushes report the failure honestly, then store again', async () => {
    const server = await privateRedis();
    cleanups.push(() => server.close());
    const prefix = `mpi:${process.pid}:`;
    const node = await spawnNode({
      redisUrl: server.url,
      prefix,
      registryTtlMs: TTL_MS,
      registryRefreshMs: REFRESH_MS,
      extraArgs: ['--inbox.storeTimeoutMs=500'],
    });
    nodes.push(node);
    type Results = {
      results: Array<{ result: string; stored?: boolean; storeError?: string; messageId: string }>;
    };
    const store = (msgId: string) =>
      api<Results>(node, 'POST', '/api/push', {
        userId: 'away',
        msgId,
        content: msgId,
        store: true,
        timeout: 3000,
      });

    const [before] = (await store('before')).results;
    assert.deepEqual([before!.result, before!.stored], ['offline', true]);

    await server.stop();
    const [during] = (await store('during')).results;
    // The push still gets its live outcome (no route can be read: offline or failure), and the
    // result says the message was not kept, and why.
    assert.notEqual(during!.result, 'success');
    assert.equal(during!.stored, false, JSON.stringify(during));
    assert.match(during!.storeError ?? '', /./, 'the store failure is named');
    assert.equal((await api<{ status: string }>(node, 'GET', '/health')).status, 'ok');
    assert.ok(node.alive, 'the node survived');

    await server.start(); // same port, no data
    const again = await eventually(
      async () => {
        const [r] = (await store(`after-${Date.now()}`)).results;
        return r!.stored === true ? r : undefined;
      },
      'a store push kept once Redis is back',
      20_000,
    );
    assert.equal(again.result, 'offline');
    const receipt = await api<{ users: Array<{ inbox: string }> }>(
      node,
      'GET',
      `/api/messages/${again.messageId}`,
    );
    assert.equal(receipt.users[0]!.inbox, 'stored');
    assert.ok(node.alive);
  });

  it('Redis restarting empty: nodes keep serving, then re-register and re-publish their routes', async () => {
    const server = await privateRedis();
    cleanups.push(() => server.close());
    const client = new Redis(server.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
    client.on('error', () => {});
    cleanups.push(async () => client.disconnect());
    const prefix = `mpr:${process.pid}:`;
    const opts = { redisUrl: server.url, prefix, registryTtlMs: TTL_MS, registryRefreshMs: REFRESH_MS };
    const [n1, n2] = await Promise.all([spawnNode(opts), spawnNode(opts)]);
    nodes.push(n1!, n2!);
    const ids = [n1!.id, n2!.id].sort();
    const routeAt = (userId: string, node: NodeProcess) =>
      eventually(
        async () => (await routeOf(client, prefix, userId))?.port === node.gatewayPort,
        `the route of ${userId} at ${node.id}`,
        15_000,
      );

    const stay = await connectDevice(n1!.tcpPort, 'r-stay');
    const other = await connectDevice(n2!.tcpPort, 'r-other');
    const leave = await connectDevice(n1!.tcpPort, 'r-leave');
    devices.push(stay, other, leave);
    for (const [u, n] of [
      ['r-stay', n1],
      ['r-other', n2],
      ['r-leave', n1],
    ] as const)
      await routeAt(u, n!);
    const epoch = stay.client.connectionEpoch;

    await server.stop();
    // The outage: a device leaves (its unregister fails), the others keep being served locally.
    await leave.client.close();
    await eventually(
      () => n1!.stderr.includes('route unregister failed'),
      "N1's failed unregister of the device that left",
      20_000,
    );
    assert.equal(stay.client.heartbeat(), true, 'a heartbeat goes out');
    const sender = directSender(n1!);
    cleanups.push(() => sender.stop());
    const [r] = await sender.send({ userId: 'r-stay', content: 'during the outage', ackModel: 'AUTO_ACK' });
    assert.equal(r!.result, 'success', `N1 delivers to its own device without Redis: ${JSON.stringify(r)}`);
    await eventually(
      () => stay.pushes.some((p) => p.content.toString() === 'during the outage'),
      'the push during the outage',
    );
    assert.equal((await api<{ status: string }>(n2!, 'GET', '/health')).status, 'ok');
    assert.ok(n1!.alive && n2!.alive, 'no node crashed');

    await server.start(); // same port, no data
    await eventually(
      async () => JSON.stringify(await liveNodeIds(client, prefix)) === JSON.stringify(ids),
      'both nodes back in the registry',
      15_000,
    );
    await routeAt('r-stay', n1!);
    await routeAt('r-other', n2!);
    assert.equal(
      (await routeOf(client, prefix, 'r-stay'))?.connId.startsWith(`${n1!.id}:`),
      true,
      "N1 re-published its device's route",
    );
    assert.deepEqual(await client.hgetall(`${prefix}ur:r-leave`), {}, 'no route for the device that left');
    assert.equal(stay.client.connectionEpoch, epoch, 'the device kept its connection through the outage');
    assert.equal(stay.client.boundUserId, 'r-stay');
    assert.ok(n1!.alive && n2!.alive, 'no node crashed');
    // And the cluster works again end to end: a push entering N2 reaches N1's device.
    const [again] = await pushVia(n2!, { userId: 'r-stay', content: 'after', ackModel: 'AUTO_ACK' });
    assert.equal(again!.result, 'success', JSON.stringify(again));
    assert.equal(again!.gateway, gatewayOf(n1!));
  });

  it('Redis unreachable, data kept: the unregister that failed is replayed, no stale route', async () => {
    const server = await privateRedis();
    cleanups.push(() => server.close());
    const proxy = await redisProxy(server.port);
    cleanups.push(() => proxy.close());
    const client = new Redis(server.port, '127.0.0.1');
    client.on('error', () => {});
    cleanups.push(async () => client.disconnect());
    const prefix = `mpp:${process.pid}:`;
    const node = await spawnNode({
      redisUrl: proxy.url,
      prefix,
      registryTtlMs: TTL_MS,
      registryRefreshMs: REFRESH_MS,
    });
    nodes.push(node);
    const stay = await connectDevice(node.tcpPort, 'p-stay');
    const leave = await connectDevice(node.tcpPort, 'p-leave');
    devices.push(stay, leave);
    for (const u of ['p-stay', 'p-leave'])
      await eventually(
        async () => (await routeOf(client, prefix, u))?.port === node.gatewayPort,
        `route of ${u}`,
      );

    await proxy.cut();
    await leave.client.close();
    await eventually(
      () => node.stderr.includes('route unregister failed'),
      'the unregister to fail during the partition',
      20_000,
    );
    // Redis kept the route of the device that left: only the node's replay can remove it.
    assert.equal((await routeOf(client, prefix, 'p-leave'))?.port, node.gatewayPort);

    await proxy.restore();
    await eventually(
      async () => (await routeOf(client, prefix, 'p-leave')) === undefined,
      'the stale route to go',
      15_000,
    );
    assert.equal((await routeOf(client, prefix, 'p-stay'))?.port, node.gatewayPort, 'the live route stays');
    assert.ok(node.alive);
  });
  /**
   * A private Redis, the test's own client on it, and two node processes on one prefix: S behind a
   * proxy that can be cut, B directly or behind its own proxy.
   */
  async function pairOnPrivateRedis(tag: string, opts: { proxyB: boolean }) {
    const server = await privateRedis();
    cleanups.push(() => server.close());
    const proxy = async () => {
      const p = await redisProxy(server.port);
      cleanups.push(() => p.close());
      return p;
    };
    const toB = opts.proxyB ? await proxy() : undefined;
    const toS = await proxy();
    const client = new Redis(server.port, '127.0.0.1');
    client.on('error', () => {});
    cleanups.push(async () => client.disconnect());
    const prefix = `${tag}:${process.pid}:`;
    const common = { prefix, registryTtlMs: TTL_MS, registryRefreshMs: REFRESH_MS };
    const [b, s] = await Promise.all([
      spawnNode({ ...common, redisUrl: toB?.url ?? server.url }),
      spawnNode({ ...common, redisUrl: toS.url }),
    ]);
    nodes.push(b!, s!);
    return { client, prefix, b: b!, s: s!, toB, toS };
  }

  it('a node cut off from Redis while its user bound elsewhere drops its older binding when it is back', async () => {
    const { client, prefix, b, s, toS } = await pairOnPrivateRedis('mpk', { proxyB: false });
    const onS = await connectDevice(s.tcpPort, 'elsewhere');
    devices.push(onS);
    assert.equal((await routeOf(client, prefix, 'elsewhere'))?.port, s.gatewayPort);

    // S is cut off; the user's other phone binds on B. B's kick for S's device goes through Redis,
    // which S cannot hear.
    await toS.cut();
    const onB = await connectDevice(b.tcpPort, 'elsewhere');
    devices.push(onB);
    assert.equal((await routeOf(client, prefix, 'elsewhere'))?.port, b.gatewayPort);
    assert.equal(onS.kicks, 0, 'the kick was lost');

    await toS.restore();
    await eventually(() => onS.kicks > 0, "S's resync to drop its older binding", 15_000);
    assert.equal(onB.kicks, 0, 'the newer binding stays');
    assert.equal((await routeOf(client, prefix, 'elsewhere'))?.port, b.gatewayPort, "the route is B's");
  });

  it('a device that moved between nodes while Redis was down keeps its new binding when Redis is back', async () => {
    const { client, prefix, b, s, toB, toS } = await pairOnPrivateRedis('mpm', { proxyB: true });
    const deviceId = `moved-${process.pid}`;
    const before = await connectDevice(b.tcpPort, 'moved', { deviceId });
    devices.push(before);
    assert.equal((await routeOf(client, prefix, 'moved'))?.port, b.gatewayPort);

    // Redis goes away for both nodes. The device leaves B (whose unregister fails) and binds on S
    // (whose route write fails): Redis keeps B's route.
    await Promise.all([toB!.cut(), toS.cut()]);
    await before.client.close();
    await eventually(() => b.stderr.includes('route unregister failed'), "B's failed unregister", 20_000);
    const after = await connectDevice(s.tcpPort, 'moved', { deviceId });
    devices.push(after);
    await eventually(() => s.stderr.includes('route register failed'), "S's failed route write", 20_000);

    // S is back first: its resync finds B's stale route. B's own replay of the unregister comes later.
    await toS.restore();
    await eventually(
      async () => after.kicks > 0 || (await routeOf(client, prefix, 'moved'))?.port === s.gatewayPort,
      "S's resync",
      15_000,
    );
    await toB!.restore();
    await eventually(
      async () => JSON.stringify(await liveNodeIds(client, prefix)) === JSON.stringify([b.id, s.id].sort()),
      'both nodes back in the registry',
      15_000,
    );
    assert.equal(after.kicks, 0, 'the device on S was not kicked');
    assert.equal(after.client.boundUserId, 'moved');
    assert.equal((await routeOf(client, prefix, 'moved'))?.port, s.gatewayPort, "the route is S's");
    const [r] = await pushVia(b, { userId: 'moved', content: 'after the outage', ackModel: 'AUTO_ACK' });
    assert.equal(r!.result, 'success', JSON.stringify(r));
    assert.equal(r!.gateway, gatewayOf(s));
  });
});

describe('redisStores().onReconnect', () => {
  it('the first reconnect after a node subscribed (once connected) is reported', async () => {
    const server = await privateRedis();
    const proxy = await redisProxy(server.port);
    const stores = redisStores({
      redis: proxy.url,
      prefix: `mpo:${process.pid}:`,
      registryTtlMs: TTL_MS,
      registryRefreshMs: REFRESH_MS,
    });
    try {
      // As MpushNode.start(): the connection is up (a command answered) before it subscribes.
      await stores.routes.lookup('x');
      let reconnects = 0;
      stores.onReconnect!(() => reconnects++);
      await proxy.cut();
      await eventually(
        () =>
          stores.routes.lookup('x').then(
            () => false,
            () => true,
          ),
        'a store call to fail while Redis is unreachable',
      );
      await proxy.restore();
      await eventually(() => reconnects === 1, 'the reconnect to be reported', 15_000);
      await stores.routes.lookup('x');
    } finally {
      await Promise.all([
        stores.sessions.close(),
        stores.routes.close(),
        stores.registry.close(),
        stores.inbox.close(),
        stores.bus.close(),
      ]);
      await proxy.close();
      await server.close();
    }
  });
});
