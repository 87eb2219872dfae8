import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { DeviceClient, DeviceClientError } from '../../src/client/device/index.js';
import { MemoryNodeRegistry, type NodeInfo } from '../../src/cluster/node-registry.js';
import { redisStores } from '../../src/cluster/node-stores.js';
import { loadPublicKey } from '../../src/crypto/index.js';
import { ClientType } from '../../src/protocol/index.js';
import { closeAll, connectDevice, type TestDevice } from '../helpers/devices.js';
import { freePort } from '../helpers/free-port.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { type NodeProcess, spawnNode } from '../helpers/node-process.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';
import { mpushDefaultKeys } from '../helpers/shared.js';

const publicKey = loadPublicKey(mpushDefaultKeys().publicKey);

/** Refresh the registry often, so a node's load reaches the others fast. */
const FAST = { cluster: { registryRefreshMs: 100 } };

async function alloc(httpPort: number): Promise<{ status: number; type: string | null; bytes: Buffer }> {
  const res = await fetch(`http://127.0.0.1:${httpPort}/alloc`);
  return {
    status: res.status,
    type: res.headers.get('content-type'),
    bytes: Buffer.from(await res.arrayBuffer()),
  };
}

/** Polls GET /alloc until its body is `want`; fails (naming the last body) after a generous bound. */
async function allocUntil(httpPort: number, want: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    last = (await alloc(httpPort)).bytes.toString('utf8');
    if (last === want) return;
    if (Date.now() > end)
      assert.fail(`GET /alloc never answered ${JSON.stringify(want)}; last ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

let seq = 0;
function allocClient(
  allocUrl: string,
  userId: string,
  extra: Partial<ConstructorParameters<typeof DeviceClient>[0]> = {},
) {
  return new DeviceClient({
    allocUrl,
    publicKey,
    deviceId: `alloc-dev-${process.pid}-${++seq}`,
    userId,
    autoReconnect: false,
    ...extra,
  });
}

describe('GET /alloc on two nodes sharing a registry', () => {
  const table = new MemoryNodeRegistry();
  let a: TestNode;
  let b: TestNode;
  const devices: TestDevice[] = [];
  const clients: DeviceClient[] = [];

  before(async () => {
    a = await startTestNode(FAST, { registry: table.peer() });
    b = await startTestNode(FAST, { registry: table.peer() });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await closeAll(devices);
    await a?.stop();
    await b?.stop();
  });

  it('answers host:port,host:port as text/plain, byte for byte, no newline, without a bearer', async () => {
    const ids = [a, b].sort((x, y) => (x.node.id < y.node.id ? -1 : 1));
    const want = ids.map((n) => `127.0.0.1:${n.tcpPort}`).join(',');
    const r = await alloc(a.httpPort);
    assert.equal(r.status, 200);
    assert.equal(r.type, 'text/plain; charset=utf-8');
    assert.deepEqual(r.bytes, Buffer.from(want, 'latin1'));
    assert.equal(r.bytes.includes(0x0a), false);
    // Every node answers for the whole cluster.
    assert.deepEqual((await alloc(b.httpPort)).bytes, Buffer.from(want, 'latin1'));
  });

  it('lists the least loaded node first: the one with more devices comes second', async () => {
    const first = (await alloc(a.httpPort)).bytes.toString().split(',')[0];
    const [busy, idle] = first === `127.0.0.1:${a.tcpPort}` ? [a, b] : [b, a];
    devices.push(await connectDevice(busy.tcpPort, 'load-1'));
    devices.push(await connectDevice(busy.tcpPort, 'load-2'));
    await allocUntil(idle.httpPort, `127.0.0.1:${idle.tcpPort},127.0.0.1:${busy.tcpPort}`);
    await allocUntil(busy.httpPort, `127.0.0.1:${idle.tcpPort},127.0.0.1:${busy.tcpPort}`);
  });

  it('a DeviceClient given the URL connects and binds on the first node listed', async () => {
    const body = (await alloc(a.httpPort)).bytes.toString();
    const firstPort = Number(body.split(',')[0]!.split(':')[1]);
    const target = firstPort === a.tcpPort ? a : b;
    const client = allocClient(`http://127.0.0.1:${a.httpPort}/alloc`, 'alloc-u1');
    clients.push(client);
    const bound = new Promise<void>((resolve) => client.once('bind', () => resolve()));
    await client.connect();
    await bound;
    assert.equal(client.server.port, target.tcpPort);
    assert.ok(target.node.connections.router.get('alloc-u1', ClientType.MOBILE), 'bound on the listed node');
  });

  it('a stopped node drops out of the list (memory registry: on stop)', async () => {
    const c = await startTestNode(FAST, { registry: table.peer() });
    const listed = () => alloc(a.httpPort).then((r) => r.bytes.toString().split(','));
    assert.ok((await listed()).includes(`127.0.0.1:${c.tcpPort}`));
    await c.stop();
    const now = await listed();
    assert.equal(now.includes(`127.0.0.1:${c.tcpPort}`), false);
    assert.equal(now.length, 2);
  });
});

describe('alloc.maxServers', () => {
  it('caps the list, keeping the least loaded', async () => {
    const table = new MemoryNodeRegistry();
    const nodes = [
      await startTestNode({ ...FAST, alloc: { maxServers: 2 } }, { registry: table.peer() }),
      await startTestNode(FAST, { registry: table.peer() }),
      await startTestNode(FAST, { registry: table.peer() }),
    ];
    const devices: TestDevice[] = [];
    try {
      const capped = nodes[0]!;
      // The capped node is the busiest: it lists the other two, not itself.
      devices.push(await connectDevice(capped.tcpPort, 'cap-1'));
      const others = nodes.slice(1).sort((x, y) => (x.node.id < y.node.id ? -1 : 1));
      await allocUntil(capped.httpPort, others.map((n) => `127.0.0.1:${n.tcpPort}`).join(','));
      // Without the cap (the default, 10) a node lists all three.
      const all = (await alloc(nodes[1]!.httpPort)).bytes.toString().split(',');
      assert.equal(all.length, 3);
    } finally {
      await closeAll(devices);
      for (const n of nodes) await n.stop();
    }
  });
});

describe('the address a node advertises', () => {
  async function advertised(overrides: Parameters<typeof startTestNode>[0]): Promise<[string, TestNode]> {
    const n = await startTestNode(overrides);
    try {
      return [(await alloc(n.httpPort)).bytes.toString(), n];
    } finally {
      await n.stop();
    }
  }

  it('node.publicHost replaces the bind address', async () => {
    const [body, n] = await advertised({ node: { publicHost: 'push.example.com' } });
    assert.equal(body, `push.example.com:${n.tcpPort}`);
  });

  it('node.publicPort replaces the listening port', async () => {
    const [body] = await advertised({ node: { publicPort: 443 } });
    assert.equal(body, '127.0.0.1:443');
  });

  it('without publicHost: gateway.advertiseHost, else 127.0.0.1 for a server bound to 0.0.0.0', async () => {
    const [viaGateway, n1] = await advertised({ gateway: { advertiseHost: '10.1.2.3' } });
    assert.equal(viaGateway, `10.1.2.3:${n1.tcpPort}`);
    const [any, n2] = await advertised({ server: { host: '0.0.0.0' } });
    assert.equal(any, `127.0.0.1:${n2.tcpPort}`);
  });

  it('publishes what it advertises in the registry, for the other nodes to list', async () => {
    const table = new MemoryNodeRegistry();
    const n = await startTestNode(
      { node: { publicHost: 'edge.example.com', publicPort: 3100 } },
      { registry: table },
    );
    try {
      const info = (await table.list())[0]!;
      assert.equal(info.host, 'edge.example.com');
      assert.equal(info.port, 3100);
    } finally {
      await n.stop();
    }
  });
});

describe('GET /alloc with no live node', () => {
  it('503 with a short text body when the registry lists nobody', async () => {
    const table = new MemoryNodeRegistry();
    const n = await startTestNode({}, { registry: table });
    try {
      await table.remove(n.node.id);
      const r = await alloc(n.httpPort);
      assert.equal(r.status, 503);
      assert.equal(r.type, 'text/plain; charset=utf-8');
      assert.equal(r.bytes.toString(), 'no live node');
    } finally {
      await n.stop();
    }
  });

  it('503 when the registry cannot answer', async () => {
    // A registry outage on demand (the Redis one is shown in the cluster suite): list() rejects.
    class FailingRegistry extends MemoryNodeRegistry {
      failing = false;
      override async list(): Promise<NodeInfo[]> {
        if (this.failing) throw new Error('registry down');
        return super.list();
      }
    }
    const registry = new FailingRegistry();
    const n = await startTestNode({}, { registry });
    try {
      registry.failing = true;
      const r = await alloc(n.httpPort);
      assert.equal(r.status, 503);
      assert.equal(r.bytes.toString(), 'node registry unavailable');
    } finally {
      await n.stop();
    }
  });
});

describe('GET /alloc on a Redis cluster', () => {
  let redis: TestRedis;
  let a: TestNode;
  let b: NodeProcess | undefined;
  const TTL = { registryTtlMs: 1500, registryRefreshMs: 200 };

  before(async () => {
    redis = await startTestRedis();
  });
  after(async () => {
    await b?.stop();
    await a?.stop();
    await redis?.close();
  });

  it('a node that dies drops out of the list once its registry entry expires', async () => {
    const prefix = `${redis.prefix}alloc:`;
    // Node A in this process, on Redis stores of its own (as another machine would have).
    a = await startTestNode({}, redisStores({ redis: redis.url, prefix, ...TTL }));
    b = await spawnNode({ redisUrl: redis.url, prefix, ...TTL });
    const both = [`127.0.0.1:${a.tcpPort}`, `127.0.0.1:${b.tcpPort}`];
    const end = Date.now() + 10_000;
    let listed: string[] = [];
    while (listed.length < 2 && Date.now() < end) {
      listed = (await alloc(a.httpPort)).bytes.toString().split(',');
      if (listed.length < 2) await new Promise((r) => setTimeout(r, 25));
    }
    assert.deepEqual([...listed].sort(), [...both].sort());
    // A crash: nothing removes B's entry, its TTL does.
    await b.kill();
    await allocUntil(a.httpPort, `127.0.0.1:${a.tcpPort}`);
  });
});

describe('DeviceClient allocUrl', () => {
  let node: TestNode;
  let allocator: Server;
  let allocatorPort = 0;
  /** What the stub allocator answers next: status and body (or 'hang'). */
  let answer: { status: number; body: string } | 'hang' = { status: 200, body: '' };
  const clients: DeviceClient[] = [];

  before(async () => {
    node = await startTestNode();
    allocator = createServer((_req, res) => {
      if (answer === 'hang') return; // never answers
      res.writeHead(answer.status, { 'content-type': 'text/plain' });
      res.end(answer.body);
    });
    await new Promise<void>((r) => allocator.listen(0, '127.0.0.1', r));
    allocatorPort = (allocator.address() as AddressInfo).port;
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    allocator.closeAllConnections();
    await new Promise((r) => allocator.close(r));
    await node.stop();
  });

  const url = () => `http://127.0.0.1:${allocatorPort}/alloc`;
  function track(c: DeviceClient): DeviceClient {
    clients.push(c);
    return c;
  }
  function nextError(c: DeviceClient): Promise<Error> {
    return new Promise((resolve) => c.once('error', resolve));
  }

  it('tries the listed addresses in order: a dead first one, then the next', async () => {
    const dead = await freePort();
    answer = { status: 200, body: `127.0.0.1:${dead},127.0.0.1:${node.tcpPort}` };
    const c = track(
      allocClient(url(), 'order-1', { autoReconnect: true, reconnect: { initialMs: 10, maxMs: 50 } }),
    );
    c.on('error', () => {});
    let failed = 0;
    c.on('disconnected', () => failed++);
    const bound = new Promise<void>((resolve) => c.once('bind', () => resolve()));
    await c.connect();
    await bound;
    assert.equal(c.server.port, node.tcpPort);
    assert.equal(failed, 1, 'the dead address was tried first, once');
    assert.ok(node.node.connections.router.get('order-1', ClientType.MOBILE));
  });

  it('asks the allocator again on reconnect: the node it was on stopped, the next answer is used', async () => {
    const other = await startTestNode();
    answer = { status: 200, body: `127.0.0.1:${other.tcpPort}` };
    const c = track(
      allocClient(url(), 're-1', { autoReconnect: true, reconnect: { initialMs: 10, maxMs: 50 } }),
    );
    c.on('error', () => {});
    const first = new Promise<void>((resolve) => c.once('bind', () => resolve()));
    await c.connect();
    await first;
    assert.equal(c.server.port, other.tcpPort);
    answer = { status: 200, body: `127.0.0.1:${node.tcpPort}` };
    const again = new Promise<void>((resolve) => c.once('bind', () => resolve()));
    await other.stop();
    await again;
    assert.equal(c.server.port, node.tcpPort);
    assert.ok(node.node.connections.router.get('re-1', ClientType.MOBILE));
  });

  it('falls back to servers when the allocator fails', async () => {
    answer = { status: 503, body: 'no live node' };
    const c = track(allocClient(url(), 'fb-1', { servers: [{ host: '127.0.0.1', port: node.tcpPort }] }));
    const err = nextError(c);
    await c.connect();
    const e = await err;
    assert.ok(e instanceof DeviceClientError && e.code === 'MPUSH_ERR_ALLOC', String(e));
    assert.match(e.message, /503/);
    assert.equal(c.server.port, node.tcpPort);
  });

  it('allocTimeoutMs: an allocator that never answers fails the request, servers are used', async () => {
    answer = 'hang';
    const c = track(
      allocClient(url(), 'to-1', {
        allocTimeoutMs: 100,
        servers: [{ host: '127.0.0.1', port: node.tcpPort }],
      }),
    );
    const err = nextError(c);
    await c.connect();
    assert.equal(((await err) as DeviceClientError).code, 'MPUSH_ERR_ALLOC');
  });

  it('allocMaxBytes: a longer body is an error, not a list', async () => {
    const entry = `127.0.0.1:${node.tcpPort}`;
    answer = { status: 200, body: Array.from({ length: 20 }, () => entry).join(',') };
    assert.ok(answer.body.length > 200);
    const c = track(allocClient(url(), 'big-1', { allocMaxBytes: 200 }));
    const err = nextError(c);
    await assert.rejects(c.connect());
    const e = (await err) as DeviceClientError;
    assert.equal(e.code, 'MPUSH_ERR_ALLOC');
    assert.match(e.message, /over 200 bytes/);
    // The same body within the limit connects.
    const ok = track(allocClient(url(), 'big-2', { allocMaxBytes: 4096 }));
    await ok.connect();
  });

  it('a malformed entry is an error naming it, and the client does not crash', async () => {
    answer = { status: 200, body: `127.0.0.1:${node.tcpPort},127.0.0.1:0` };
    const c = track(allocClient(url(), 'bad-1'));
    const err = nextError(c);
    await assert.rejects(c.connect());
    const e = (await err) as DeviceClientError;
    assert.equal(e.code, 'MPUSH_ERR_ALLOC');
    assert.match(e.message, /127\.0\.0\.1:0/);
  });

  it('needs servers or allocUrl', () => {
    assert.throws(() => new DeviceClient({ publicKey, deviceId: 'x' }), /server or an allocUrl/);
    assert.throws(() => new DeviceClient({ publicKey, deviceId: 'x', allocUrl: 'ftp://h/alloc' }), /http/);
  });
});
