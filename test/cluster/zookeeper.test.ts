import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import zookeeper from 'node-zookeeper-client';
import { RedisClusterBus } from '../../src/cluster/redis-cluster-bus.js';
import { createRedis } from '../../src/cluster/redis-connection.js';
import { createRedisStores } from '../../src/cluster/redis-stores.js';
import { mpushServices, ZookeeperRegistrar } from '../../src/cluster/zookeeper-registrar.js';
import { type Config, ConfigError, type DeepPartial } from '../../src/config/index.js';
import { closeAll, connectDevice } from '../helpers/devices.js';
import { startTestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait.js';
import { connectZk, startTestZookeeper, type TestZookeeper } from '../helpers/zookeeper.js';
import { closeTestRedis, freshPrefix, newClient, testRedis } from './shared-redis.js';

after(closeTestRedis);

// biome-ignore lint/suspicious/noExplicitAny: the client's callbacks differ per call; results are checked by the test
type AnyCallback = (err: Error | zookeeper.Exception | null, ...v: any[]) => void;

function zk<T>(fn: (cb: AnyCallback) => void): Promise<T[]> {
  return new Promise((resolve, reject) => fn((err, ...v) => (err ? reject(err) : resolve(v as T[]))));
}

async function children(c: zookeeper.Client, path: string): Promise<string[]> {
  const [names] = await zk<string[]>((cb) => c.getChildren(path, cb));
  return names!;
}

async function dataOf(c: zookeeper.Client, path: string): Promise<{ json: unknown; stat: zookeeper.Stat }> {
  const [data, stat] = await zk<Buffer | zookeeper.Stat>((cb) => c.getData(path, cb));
  return { json: JSON.parse((data as Buffer).toString()), stat: stat as zookeeper.Stat };
}

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The client sets `permission`; its type declarations call it `perms`. */
function permissionOf(a: zookeeper.ACL): number {
  return (a as unknown as { permission: number }).permission;
}

/** ZooKeeper's digest id for `user[:password]`: the user, and base64 SHA-1 of the whole string. */
function digestId(auth: string): string {
  return `${auth.split(':')[0]}:${createHash('sha1').update(auth).digest('base64')}`;
}

describe('ZooKeeper registration in MPush layout (real ZooKeeper)', () => {
  let server: TestZookeeper;
  let reader: zookeeper.Client;

  before(async () => {
    server = await startTestZookeeper();
    reader = await server.client();
  });
  after(async () => server?.stop());

  /** A node on the test Redis registering in ZooKeeper under `namespace`. */
  async function zkNode(namespace: string, extra: DeepPartial<Config> = {}) {
    const redis = await testRedis();
    const cluster = {
      redis: redis.url,
      prefix: await freshPrefix(),
      zookeeper: server.connect,
      zookeeperNamespace: namespace,
    };
    return startTestNode({ ...extra, cluster });
  }

  function registrar(
    namespace: string,
    extra: Partial<ConstructorParameters<typeof ZookeeperRegistrar>[0]> = {},
  ) {
    return new ZookeeperRegistrar({
      connect: server.connect,
      namespace,
      digest: 'mpush',
      sessionTimeoutMs: 2000,
      connectTimeoutMs: 3000,
      ...extra,
    });
  }

  it('writes gs, cs and ws as EPHEMERAL nodes with MPush data under persistent parents, creator-all ACL', async () => {
    const r = registrar('ns1');
    await r.start(mpushServices({ host: '10.0.0.7', gatewayPort: 3001, tcpPort: 3000, wsPort: 8080 }));
    try {
      for (const [kind, json] of [
        ['gs', { host: '10.0.0.7', port: 3001 }],
        ['cs', { attrs: { weight: 1 }, host: '10.0.0.7', port: 3000 }],
        ['ws', { host: '10.0.0.7', port: 8080 }],
      ] as const) {
        const names = await children(reader, `/ns1/cluster/${kind}`);
        assert.equal(names.length, 1, kind);
        assert.match(names[0]!, /^[0-9a-f-]{36}$/);
        const path = `/ns1/cluster/${kind}/${names[0]}`;
        const { json: got, stat } = await dataOf(reader, path);
        assert.deepEqual(got, json);
        // The byte form MPush's own servers write: keys in this order, no spaces.
        const [raw] = await zk<Buffer>((cb) => reader.getData(path, cb));
        assert.equal(raw!.toString(), JSON.stringify(json));
        assert.notEqual(stat.ephemeralOwner.toString('hex'), '0000000000000000', `${kind} is ephemeral`);
        const [acls] = await zk<zookeeper.ACL[]>((cb) => reader.getACL(path, cb));
        assert.deepEqual(
          acls!.map((a) => [permissionOf(a), a.id.scheme, a.id.id]),
          [[zookeeper.Permission.ALL, 'digest', digestId('mpush')]],
        );
      }
      for (const dir of ['/ns1', '/ns1/cluster', '/ns1/cluster/gs']) {
        const [data, stat] = await zk<Buffer | null | zookeeper.Stat>((cb) => reader.getData(dir, cb));
        assert.ok(!data || (data as Buffer).length === 0, `${dir} is empty`);
        assert.equal(
          (stat as zookeeper.Stat).ephemeralOwner.toString('hex'),
          '0000000000000000',
          `${dir} persistent`,
        );
      }
      // The ACL is real: a client without MPush's digest cannot read the node.
      const stranger = await connectZk(server.connect, { digest: null });
      try {
        const [name] = await children(reader, '/ns1/cluster/gs');
        await assert.rejects(
          zk((cb) => stranger.getData(`/ns1/cluster/gs/${name}`, cb)),
          (e: unknown) => e instanceof zookeeper.Exception && e.getCode() === zookeeper.Exception.NO_AUTH,
        );
      } finally {
        stranger.close();
      }
    } finally {
      await r.close();
    }
  });

  it('advertises devices at node.publicHost / node.publicPort, the gateway where routes point', async () => {
    const node = await zkNode('ns7', { node: { publicHost: 'push.example.com', publicPort: 443 } });
    try {
      const [cs] = await children(reader, '/ns7/cluster/cs');
      assert.deepEqual((await dataOf(reader, `/ns7/cluster/cs/${cs}`)).json, {
        attrs: { weight: 1 },
        host: 'push.example.com',
        port: 443,
      });
      const [gs] = await children(reader, '/ns7/cluster/gs');
      assert.deepEqual((await dataOf(reader, `/ns7/cluster/gs/${gs}`)).json, {
        host: '127.0.0.1',
        port: node.node.addresses.gatewayPort,
      });
    } finally {
      await node.stop();
    }
  });

  it('leaves out ws when WebSocket devices are off', async () => {
    const r = registrar('ns2');
    await r.start(mpushServices({ host: '127.0.0.1', gatewayPort: 1, tcpPort: 2 }));
    try {
      assert.deepEqual((await children(reader, '/ns2/cluster')).sort(), ['cs', 'gs']);
    } finally {
      await r.close();
    }
  });

  it('close() removes the nodes and keeps the parents', async () => {
    const r = registrar('ns3');
    await r.start(mpushServices({ host: '127.0.0.1', gatewayPort: 1, tcpPort: 2, wsPort: 3 }));
    assert.equal((await children(reader, '/ns3/cluster/gs')).length, 1);
    await r.close();
    for (const kind of ['gs', 'cs', 'ws'])
      assert.deepEqual(await children(reader, `/ns3/cluster/${kind}`), []);
  });

  it('registers again under a new session after its session is lost', async () => {
    const registered: string[][] = [];
    const errors: string[] = [];
    const r = registrar('ns4', {
      onRegistered: (p) => registered.push(p),
      onError: (e) => errors.push(e.message),
    });
    await r.start(mpushServices({ host: '127.0.0.1', gatewayPort: 1, tcpPort: 2 }));
    try {
      const first = r.session()!;
      const [gs] = await children(reader, '/ns4/cluster/gs');
      // A partition longer than the session timeout (2 s): the server expires the session and
      // deletes its ephemeral nodes; the registrar must notice and register again. On waking, the
      // server may read the client's queued pings before it expires anything, and the session
      // survives: then freeze again.
      for (let attempt = 0; registered.length < 2; attempt++) {
        assert.ok(attempt < 5, 'the session never expired');
        await server.freeze(4000);
        await until('re-registration', async () => (registered.length >= 2 ? true : undefined), 6000).catch(
          () =>
            assert.equal(
              r.session()!.id.toString('hex'),
              first.id.toString('hex'),
              'same session, or re-registered',
            ),
        );
      }
      assert.deepEqual(errors, []);
      assert.notEqual(r.session()!.id.toString('hex'), first.id.toString('hex'), 'a new session');
      // The freeze may have expired the reader's own session too: read through a fresh one (it is
      // the reader of the tests that follow as well).
      reader = await server.client();
      assert.deepEqual(await children(reader, '/ns4/cluster/gs'), [gs], 'the same path again');
      const { json } = await dataOf(reader, `/ns4/cluster/gs/${gs}`);
      assert.deepEqual(json, { host: '127.0.0.1', port: 1 });
    } finally {
      await r.close();
    }
  });

  it('start() fails with a clear error when ZooKeeper does not answer', async () => {
    const r = new ZookeeperRegistrar({
      connect: '127.0.0.1:1',
      namespace: 'x',
      digest: 'mpush',
      sessionTimeoutMs: 2000,
      connectTimeoutMs: 500,
    });
    await assert.rejects(
      r.start(mpushServices({ host: 'h', gatewayPort: 1, tcpPort: 2 })),
      /zookeeper at 127\.0\.0\.1:1 gave no session/,
    );
    await r.close();
  });

  it('a node started with cluster.zookeeper registers its real ports, and leaves on stop', async () => {
    const node = await zkNode('ns5');
    let stopped = false;
    try {
      const { gatewayPort, tcpPort, httpPort } = node.node.addresses;
      const [gs] = await children(reader, '/ns5/cluster/gs');
      assert.deepEqual((await dataOf(reader, `/ns5/cluster/gs/${gs}`)).json, {
        host: '127.0.0.1',
        port: gatewayPort,
      });
      const [cs] = await children(reader, '/ns5/cluster/cs');
      assert.deepEqual((await dataOf(reader, `/ns5/cluster/cs/${cs}`)).json, {
        attrs: { weight: 1 },
        host: '127.0.0.1',
        port: tcpPort,
      });
      const [ws] = await children(reader, '/ns5/cluster/ws');
      assert.deepEqual((await dataOf(reader, `/ns5/cluster/ws/${ws}`)).json, {
        host: '127.0.0.1',
        port: httpPort,
      });
      await node.stop();
      stopped = true;
      for (const kind of ['gs', 'cs', 'ws'])
        assert.deepEqual(await children(reader, `/ns5/cluster/${kind}`), []);
    } finally {
      if (!stopped) await node.stop();
    }
  });

  it('cluster.zookeeper without cluster.redis is a config error', async () => {
    await assert.rejects(
      startTestNode({ cluster: { zookeeper: server.connect } }),
      (e: unknown) => e instanceof ConfigError && /cluster\.zookeeper needs cluster\.redis/.test(e.message),
    );
  });
  it("mixed cluster: MPush's own Redis kick message, both ways", async () => {
    const url = (await testRedis()).url;
    const prefix = await freshPrefix();
    const redis = createRedis(url);
    const stores = createRedisStores(redis, { prefix });
    const bus = new RedisClusterBus(redis, prefix);
    const node = await startTestNode(
      { cluster: { redis: url, prefix, zookeeper: server.connect, zookeeperNamespace: 'ns6' } },
      { ...stores, bus },
    );
    // An MPush-Java node, as Redis sees it: a publisher and a subscriber on MPush's channels.
    const java = await newClient();
    const javaSub = await newClient();
    const heard: Array<{ channel: string; text: string }> = [];
    javaSub.on('message', (channel: string, text: string) => heard.push({ channel, text }));
    await javaSub.subscribe('/mpush/kick/10.9.9.9:3001');
    const devices = [];
    try {
      const gw = `127.0.0.1:${node.node.addresses.gatewayPort}`;
      // 1. Java → us: the kick names our gateway and the route's connId; a wrong connId is ignored.
      const a = await connectDevice(node.tcpPort, 'ann');
      devices.push(a);
      // The bind is answered once the route is written.
      const found = (await stores.routes.lookup('ann')).get(1);
      assert.ok(found, "ann's route");
      const route = found;
      let kicked = 0;
      a.client.on('kick', () => kicked++);
      const kick = (connId: string) =>
        java.publish(
          `/mpush/kick/${gw}`,
          JSON.stringify({
            clientType: 1,
            connId,
            deviceId: route.deviceId,
            targetPort: node.node.addresses.gatewayPort,
            targetServer: '127.0.0.1',
            userId: 'ann',
          }),
        );
      await kick('some-other-connection');
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(kicked, 0, 'another connection id kicks nothing');
      await kick(route.connId);
      await waitFor(() => kicked === 1, 3000, 'the kick');
      assert.equal(node.node.connections.router.get('ann', 1), undefined, 'unbound');

      // 2. Us → Java: a bind over a route that points at a node we do not know (the Java node's
      // gateway) publishes MPush's message on that node's channel.
      await stores.routes.register('bob', 1, {
        host: '10.9.9.9',
        port: 3001,
        deviceId: 'java-device',
        osName: 'android',
        clientVersion: '1',
        connId: 'java-conn-7',
      });
      devices.push(await connectDevice(node.tcpPort, 'bob'));
      await waitFor(() => heard.length === 1, 3000, 'the kick on the Java node channel');
      assert.deepEqual(heard[0], {
        channel: '/mpush/kick/10.9.9.9:3001',
        text: '{"clientType":1,"connId":"java-conn-7","deviceId":"java-device","targetPort":3001,"targetServer":"10.9.9.9","userId":"bob"}',
      });
    } finally {
      await closeAll(devices);
      java.disconnect();
      javaSub.disconnect();
      await node.stop();
      await bus.close();
      redis.disconnect();
    }
  });
});
