import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { RecentDisconnects } from '../../src/api/console-disconnects.js';
import { HttpServer } from '../../src/api/http-server.js';
import { MemoryNodeRegistry } from '../../src/cluster/node-registry.js';
import { MemoryRouteStore } from '../../src/cluster/route-store.js';
import { closeAll, connectDevice, type TestDevice } from '../helpers/devices.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait.js';

// The admin console's API (GET /api/console/overview, GET /api/users/:userId/inbox, the node and
// connected-since of GET /api/users/:userId) and its page's assets, over real HTTP to a real node
// with real devices. The page itself is driven in test/browser/console.test.ts.

// biome-ignore lint/suspicious/noExplicitAny: JSON bodies are checked field by field
type Json = any;

const run = promisify(execFile);
/** dist/test/integration → the repository root. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SECRET = 'console-test-secret';
const AUTH = `Bearer ${SECRET}`;
/** Hang guard for awaited conditions; never a timing assertion. */
const WAIT = 5000;

async function get(
  port: number,
  path: string,
  opts: { auth?: string; method?: string } = {},
): Promise<{ status: number; body: Json; text: string; headers: Headers }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: opts.method ?? 'GET',
    headers: opts.auth === undefined ? {} : { authorization: opts.auth },
    redirect: 'manual',
  });
  const text = await res.text();
  let body: Json;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, body, text, headers: res.headers };
}

const overview = (n: TestNode, query = '') =>
  get(n.httpPort, `/api/console/overview${query}`, { auth: AUTH });

describe('the admin console page', () => {
  let n: TestNode;
  before(async () => {
    n = await startTestNode({ api: { secret: SECRET } });
  });
  after(() => n.stop());

  it('is served at /admin/ without the secret, from the package, whatever the working directory', async () => {
    // A node started from another directory still serves the package's own web/ folder.
    const elsewhere = mkdtempSync(join(tmpdir(), 'mpush-console-cwd-'));
    const helper = new URL('../helpers/node.js', import.meta.url).href;
    const script = `
      const { startTestNode } = await import(${JSON.stringify(helper)});
      const n = await startTestNode();
      const res = await fetch('http://127.0.0.1:' + n.httpPort + '/admin/');
      console.log(JSON.stringify({ status: res.status, text: await res.text() }));
      await n.stop();
    `;
    try {
      const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
        cwd: elsewhere,
      });
      const fromElsewhere = JSON.parse(stdout) as { status: number; text: string };
      assert.equal(fromElsewhere.status, 200);
      assert.equal(fromElsewhere.text, readFileSync(join(ROOT, 'web', 'index.html'), 'utf8'));
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
    const page = await get(n.httpPort, '/admin/');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.equal(page.text, readFileSync(join(ROOT, 'web', 'index.html'), 'utf8'));
    const csp = page.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'self'/, 'no CDN: the page loads from its own origin only');
    assert.match(csp, /frame-ancestors 'none'/);
    const js = await get(n.httpPort, '/admin/console.js');
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.equal(js.text, readFileSync(join(ROOT, 'web', 'console.js'), 'utf8'));
    assert.equal((await get(n.httpPort, '/admin/console.css')).status, 200);
  });

  it('redirects /admin to /admin/; unknown files are 404, other methods 405', async () => {
    const r = await get(n.httpPort, '/admin');
    assert.equal(r.status, 308);
    assert.equal(r.headers.get('location'), '/admin/');
    assert.equal((await get(n.httpPort, '/admin/nope.js')).status, 404);
    assert.equal((await get(n.httpPort, '/admin/%2e%2e%2fpackage.json')).status, 404);
    const post = await get(n.httpPort, '/admin/', { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(typeof post.body.error, 'string');
  });
});

describe('the console API', () => {
  let n: TestNode;
  const devices: TestDevice[] = [];
  before(async () => {
    n = await startTestNode({
      api: { secret: SECRET },
      cluster: { registryRefreshMs: 100 },
      console: { recentDisconnects: 3 },
    });
  });
  after(async () => {
    await closeAll(devices);
    await n.stop();
  });

  it('needs the bearer secret, like the rest of /api/', async () => {
    for (const path of ['/api/console/overview', '/api/users/u1/inbox']) {
      for (const auth of [undefined, 'Bearer wrong', SECRET]) {
        const r = await get(n.httpPort, path, auth === undefined ? {} : { auth });
        assert.equal(r.status, 401, `${path} with ${auth ?? 'no authorization'}`);
        assert.match(r.body.error, /bearer/);
      }
    }
  });

  it('lists the nodes with their connections, online users and push rate', async () => {
    const before = Date.now();
    const d = await connectDevice(n.tcpPort, 'ov-user');
    devices.push(d);
    const r = await overview(n);
    assert.equal(r.status, 200);
    assert.equal(r.body.node, n.node.id);
    assert.equal(r.body.nodes.length, 1);
    const self = r.body.nodes[0];
    assert.equal(self.id, n.node.id);
    assert.equal(self.self, true);
    assert.equal(self.connections, 1);
    assert.equal(self.onlineUsers, 1);
    assert.equal(self.gateway, `127.0.0.1:${n.node.addresses.gatewayPort}`);
    assert.equal(self.device, `127.0.0.1:${n.tcpPort}`);
    assert.equal(r.body.ackLatency, null, 'not measured here: null, and the page shows —');
    assert.ok(r.body.at >= before);
    // Pushes move the rate the node publishes in the registry.
    for (let i = 0; i < 5; i++) {
      const p = await fetch(`http://127.0.0.1:${n.httpPort}/api/push`, {
        method: 'POST',
        headers: { authorization: AUTH, 'content-type': 'application/json' },
        body: JSON.stringify({ userId: 'ov-user', content: `p${i}` }),
      });
      assert.equal(p.status, 200);
    }
    let rate = 0;
    const end = Date.now() + WAIT;
    while (rate === 0 && Date.now() < end) {
      await new Promise((res) => setTimeout(res, 50));
      rate = (await overview(n)).body.nodes[0].pushRate;
    }
    assert.ok(rate > 0, `push rate ${rate} after 5 pushes`);
  });

  it('lists the latest disconnects, newest first, at most console.recentDisconnects', async () => {
    for (const userId of ['gone-1', 'gone-2', 'gone-3', 'gone-4']) {
      const d = await connectDevice(n.tcpPort, userId);
      await d.client.close();
      await waitFor(
        () => n.node.disconnects.list()[0]?.userId === userId,
        WAIT,
        `${userId}'s disconnect recorded`,
      );
    }
    const r = await overview(n);
    assert.equal(r.status, 200);
    const recent = r.body.disconnects.recent;
    assert.deepEqual(
      recent.map((d: Json) => d.userId),
      ['gone-4', 'gone-3', 'gone-2'],
    );
    assert.equal(recent[0].reason, 'remote-closed');
    assert.equal(recent[0].transport, 'tcp');
    assert.equal(recent[0].reconnect, true);
    assert.equal(recent[0].clientType, 1);
    assert.match(recent[0].deviceId, /^test-dev-/);
    assert.ok(r.body.disconnects.byReason['remote-closed'] >= 4, 'counts by reason include the forgotten');
    const one = await overview(n, '?disconnects=1');
    assert.deepEqual(
      one.body.disconnects.recent.map((d: Json) => d.userId),
      ['gone-4'],
    );
  });

  it('refuses a bad query with every problem named', async () => {
    const r = await overview(n, '?disconnects=lots&since=1');
    assert.equal(r.status, 400);
    assert.deepEqual(r.body, {
      error: 'invalid request',
      problems: ['disconnects must be an integer', 'unknown field since'],
    });
    assert.deepEqual((await overview(n, '?disconnects=-1')).body.problems, [
      'disconnects must be an integer',
    ]);
    assert.deepEqual((await overview(n, '?disconnects=10001')).body.problems, [
      'disconnects must be ≤ 10000',
    ]);
  });

  it("GET /api/users/:userId names each device's node and when it connected", async () => {
    const before = Date.now();
    const d = await connectDevice(n.tcpPort, 'who');
    devices.push(d);
    const r = await get(n.httpPort, '/api/users/who', { auth: AUTH });
    assert.equal(r.status, 200);
    assert.equal(r.body.devices.length, 1);
    const dev = r.body.devices[0];
    assert.equal(dev.node, n.node.id);
    assert.equal(dev.clientTypeName, 'mobile');
    assert.equal(dev.osName, 'android');
    // The connection clock is coarse (heartbeat.tickMs): within a tick of the connect.
    assert.ok(
      dev.connectedAt >= before - n.config.heartbeat.tickMs && dev.connectedAt <= Date.now(),
      `connectedAt ${dev.connectedAt}`,
    );
  });

  it('GET /api/users/:userId/inbox lists what is kept, per device type, without taking it', async () => {
    const push = async (body: unknown) => {
      const res = await fetch(`http://127.0.0.1:${n.httpPort}/api/push`, {
        method: 'POST',
        headers: { authorization: AUTH, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      assert.equal(res.status, 200);
    };
    await push({ userId: 'later', content: 'kept for you', msgId: 'm-kept', store: true });
    await push({ userId: 'later', content: 'short-lived', msgId: 'm-expiring', store: true, ttl: 1 });
    const first = await get(n.httpPort, '/api/users/later/inbox', { auth: AUTH });
    assert.equal(first.status, 200);
    assert.equal(first.body.userId, 'later');
    assert.deepEqual(
      first.body.messages.map((m: Json) => m.messageId),
      ['m-kept', 'm-expiring'],
    );
    const kept = first.body.messages[0];
    assert.deepEqual(kept.pendingFor, ['mobile', 'pc', 'web']);
    assert.equal(kept.preview, 'kept for you');
    assert.equal(kept.bytes, Buffer.byteLength('kept for you'));
    assert.ok(kept.expiresAt > kept.storedAt);
    // Past its ttl a message is no longer listed (the replay, not this read, expires it).
    await waitFor(() => Date.now() > first.body.messages[1].expiresAt, WAIT, 'the ttl to pass');
    const second = await get(n.httpPort, '/api/users/later/inbox', { auth: AUTH });
    assert.deepEqual(
      second.body.messages.map((m: Json) => m.messageId),
      ['m-kept'],
    );
    // The read took nothing: the device that binds still gets it, and then it waits for the others.
    const d = await connectDevice(n.tcpPort, 'later');
    devices.push(d);
    await waitFor(() => d.pushes.length > 0, WAIT, 'the replay');
    assert.equal(d.pushes[0]!.content.toString(), 'kept for you');
    let waitsFor: string[] = [];
    const end = Date.now() + WAIT;
    while (waitsFor.includes('mobile') || waitsFor.length === 0) {
      if (Date.now() > end) assert.fail(`m-kept still waits for ${waitsFor.join(', ')}`);
      const third = await get(n.httpPort, '/api/users/later/inbox', { auth: AUTH });
      waitsFor = third.body.messages.find((m: Json) => m.messageId === 'm-kept').pendingFor;
    }
    assert.deepEqual(waitsFor, ['pc', 'web']);
    // The expired one was left for the replay, which reports it: its receipt says so.
    const expired = await get(n.httpPort, '/api/messages/m-expiring', { auth: AUTH });
    assert.equal(expired.body.users[0].inbox, 'expired');
  });

  it('refuses a bad user id in the path', async () => {
    const long = await get(n.httpPort, `/api/users/${'u'.repeat(257)}/inbox`, { auth: AUTH });
    assert.equal(long.status, 400);
    assert.deepEqual(long.body.problems, ['userId is longer than 256']);
    const bad = await get(n.httpPort, '/api/users/%E0%A4%A/inbox', { auth: AUTH });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error, 'malformed percent-encoding in the path');
  });
});

describe('the overview of a cluster', () => {
  const table = new MemoryNodeRegistry();
  const routes = new MemoryRouteStore();
  const nodes: TestNode[] = [];
  const devices: TestDevice[] = [];
  before(async () => {
    for (let i = 0; i < 2; i++)
      nodes.push(
        await startTestNode(
          { api: { secret: SECRET }, cluster: { registryRefreshMs: 100 } },
          { registry: table.peer(), routes },
        ),
      );
  });
  after(async () => {
    await closeAll(devices);
    await Promise.all(nodes.map((n) => n.stop()));
  });

  it('lists every live node, the others with the load they last published', async () => {
    const [a, b] = nodes as [TestNode, TestNode];
    for (const u of ['on-b-1', 'on-b-2']) devices.push(await connectDevice(b.tcpPort, u));
    let listed: Json[] = [];
    const end = Date.now() + WAIT;
    while (listed.find((x) => x.id === b.node.id)?.connections !== 2) {
      if (Date.now() > end) assert.fail(`node b never shows 2 connections: ${JSON.stringify(listed)}`);
      await new Promise((res) => setTimeout(res, 50));
      listed = (await overview(a)).body.nodes;
    }
    assert.deepEqual(listed.map((x) => x.id).sort(), [a.node.id, b.node.id].sort());
    assert.equal(listed.find((x) => x.id === a.node.id).self, true);
    const other = listed.find((x) => x.id === b.node.id);
    assert.equal(other.self, false);
    assert.equal(other.onlineUsers, 2);
    // The user lookup on a names the node the device is on; since when is b's to know.
    const who = await get(a.httpPort, '/api/users/on-b-1', { auth: AUTH });
    assert.equal(who.body.devices[0].node, b.node.id);
    assert.equal(who.body.devices[0].connectedAt, null);
  });
});

describe('the overview with an ack latency', () => {
  let n: TestNode;
  let http: HttpServer;
  let port: number;
  before(async () => {
    n = await startTestNode({ api: { secret: SECRET } });
    // The node's own view, plus the metrics' ackLatency (wired at the merge).
    http = new HttpServer({
      node: { ...n.node.httpView, ackLatency: () => ({ count: 12, p50Ms: 3, p90Ms: 7, p99Ms: 21 }) },
    });
    port = await http.listen(0, '127.0.0.1');
  });
  after(async () => {
    await http.close();
    await n.stop();
  });

  it('carries what the view measures', async () => {
    const r = await get(port, '/api/console/overview', { auth: AUTH });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.ackLatency, { count: 12, p50Ms: 3, p90Ms: 7, p99Ms: 21 });
  });
});

describe('RecentDisconnects', () => {
  const record = (userId: string) => ({
    at: 0,
    reason: 'remote-closed',
    reconnect: true,
    transport: 'tcp' as const,
    userId,
    clientType: 1,
    deviceId: 'd',
  });

  it('keeps the last `capacity`, newest first, across wraps', () => {
    const ring = new RecentDisconnects(3);
    assert.deepEqual(ring.list(), []);
    ring.add(record('a'));
    ring.add(record('b'));
    assert.deepEqual(
      ring.list().map((r) => r.userId),
      ['b', 'a'],
    );
    for (const u of ['c', 'd', 'e', 'f', 'g']) ring.add(record(u));
    assert.deepEqual(
      ring.list().map((r) => r.userId),
      ['g', 'f', 'e'],
    );
    assert.equal(ring.total, 7);
  });

  it('keeps nothing with capacity 0', () => {
    const ring = new RecentDisconnects(0);
    ring.add(record('a'));
    assert.deepEqual(ring.list(), []);
    assert.equal(ring.total, 1);
  });
});
