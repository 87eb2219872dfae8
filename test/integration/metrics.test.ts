import assert from 'node:assert/strict';
import { networkInterfaces } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { metricsOpenTo } from '../../src/api/metrics.js';
import { PushSender } from '../../src/client/push/push-sender.js';
import type { RouteEntry } from '../../src/client/push/types.js';
import { redisStores } from '../../src/cluster/node-stores.js';
import { createRedis, instrumentRedis, RedisCommandStats } from '../../src/cluster/redis-connection.js';
import { loadConfig } from '../../src/config/index.js';
import { ClientType } from '../../src/protocol/index.js';
import { closeAll, connectDevice, type TestDevice } from '../helpers/devices.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { startTestRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

/** GET /metrics from `host`: status, and the samples as `name{labels}` → value. */
async function scrape(port: number, opts: { host?: string; auth?: string } = {}) {
  const res = await fetch(`http://${opts.host ?? '127.0.0.1'}:${port}/metrics`, {
    headers: opts.auth ? { authorization: opts.auth } : {},
  });
  const text = await res.text();
  const samples = new Map<string, number>();
  if (res.status === 200) {
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const at = line.lastIndexOf(' ');
      samples.set(line.slice(0, at), Number(line.slice(at + 1)));
    }
  }
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', text, samples };
}

/**
 * A business server whose routes send every user to this node's gateway (as a stale route cache
 * would): the node itself finds who is offline, and counts it.
 */
function senderTo(gatewayPort: number): PushSender {
  const entry: RouteEntry = {
    clientType: ClientType.MOBILE,
    host: '127.0.0.1',
    port: gatewayPort,
    connId: 'x:1',
  };
  return PushSender.create({
    gateways: [{ host: '127.0.0.1', port: gatewayPort }],
    routeCacheMs: 0,
    routeSource: { lookup: async (ids) => new Map(ids.map((u) => [u, [entry]])) },
  });
}

describe('GET /metrics', () => {
  let t: TestNode;
  let sender: PushSender;
  const devices: TestDevice[] = [];
  const ws: WebSocket[] = [];

  before(async () => {
    t = await startTestNode();
    sender = senderTo(t.node.addresses.gatewayPort);
  });
  after(async () => {
    await sender.stop();
    for (const s of ws) s.terminate();
    await closeAll(devices);
    await t.stop();
  });

  it('serves the Prometheus text format with the node’s and the process’s metrics', async () => {
    const m = await scrape(t.httpPort);
    assert.equal(m.status, 200, m.text);
    assert.match(m.contentType, /^text\/plain; version=0\.0\.4/);
    assert.match(m.text, /^# TYPE mpush_pushes_total counter$/m);
    assert.match(m.text, /^# TYPE mpush_ack_latency_seconds histogram$/m);
    // prom-client's default process metrics, event-loop lag among them.
    assert.ok(m.samples.has('process_cpu_user_seconds_total'));
    assert.ok(m.samples.has('nodejs_eventloop_lag_seconds'));
    // Every disconnect reason of the catalogue is there from the start, at 0.
    assert.equal(m.samples.get('mpush_disconnects_total{reason="slow-reader"}'), 0);
    assert.equal(m.samples.get('mpush_ack_latency_seconds_bucket{le="+Inf"}'), 0);
    // And every transport's gauge, before its first connection.
    for (const transport of ['tcp', 'tls', 'ws']) {
      assert.equal(m.samples.get(`mpush_connections{transport="${transport}"}`), 0, transport);
    }
  });

  it('the figures move: connections by transport, binds, pushes by outcome, ack latency, disconnects', async () => {
    const before = (await scrape(t.httpPort)).samples;
    const d = await connectDevice(t.tcpPort, 'metrics-user-1');
    devices.push(d);
    const socket = new WebSocket(`ws://127.0.0.1:${t.httpPort}/`);
    ws.push(socket);
    await new Promise((r) => socket.once('open', r));
    await waitFor(() => t.node.connections.connections.size === 2, 3000, 'both connections accepted');

    const result = async (p: Parameters<PushSender['send']>[0]) =>
      (await sender.send(p)).map((r) => r.result);
    assert.deepEqual(await result({ userId: 'metrics-user-1', content: 'hi', ackModel: 'AUTO_ACK' }), [
      'success',
    ]);
    assert.deepEqual(await result({ userId: 'metrics-nobody', content: 'hi' }), ['offline']);
    assert.deepEqual(
      await result({ userId: 'metrics-user-1', content: 'unacked', ackModel: 'BIZ_ACK', timeout: 500 }),
      ['timeout'],
    );

    const m = (await scrape(t.httpPort)).samples;
    const grew = (name: string) => (m.get(name) ?? 0) - (before.get(name) ?? 0);
    assert.equal(m.get('mpush_connections{transport="tcp"}'), 1);
    assert.equal(m.get('mpush_connections{transport="ws"}'), 1);
    assert.equal(m.get('mpush_online_users'), 1);
    assert.equal(grew('mpush_binds_total'), 1);
    assert.equal(grew('mpush_handshakes_total{kind="full"}'), 1);
    assert.equal(grew('mpush_pushes_total{outcome="success"}'), 1);
    assert.equal(grew('mpush_pushes_total{outcome="offline"}'), 1);
    assert.equal(grew('mpush_pushes_total{outcome="timeout"}'), 1);
    assert.equal(grew('mpush_pushes_total{outcome="failure"}'), 0);
    assert.equal(grew('mpush_acks_total'), 1);
    assert.equal(grew('mpush_ack_latency_seconds_count'), 1);
    assert.equal(grew('mpush_push_ack_latency_seconds_count'), 1);
    // Both pushes to the device were written; the offline one never was.
    assert.equal(grew('mpush_push_write_latency_seconds_count'), 2);
    assert.equal(grew('mpush_gateway_requests_total{kind="push"}'), 3);
    assert.equal(m.get('mpush_gateway_clients'), 1, 'the sender');
    assert.deepEqual(t.node.metrics.ackLatencySummary().count, 1);
    // The admin console shows the same histogram's quantiles.
    const overview = (await (await fetch(`http://127.0.0.1:${t.httpPort}/api/console/overview`)).json()) as {
      ackLatency: { count: number; p50Ms: number } | null;
    };
    assert.equal(overview.ackLatency?.count, 1);
    assert.ok(overview.ackLatency.p50Ms > 0 && overview.ackLatency.p50Ms <= 30_000);

    await d.client.close();
    devices.splice(devices.indexOf(d), 1);
    await waitFor(() => t.node.connections.connections.size === 1, 3000, 'the device gone');
    const closed = (await scrape(t.httpPort)).samples;
    assert.equal(closed.get('mpush_connections{transport="tcp"}'), 0);
    assert.equal(
      (closed.get('mpush_disconnects_total{reason="remote-closed"}') ?? 0) -
        (before.get('mpush_disconnects_total{reason="remote-closed"}') ?? 0),
      1,
    );
    assert.equal(closed.get('mpush_online_users'), 0);
  });

  it('broadcast tasks and their deliveries', async () => {
    const d = await connectDevice(t.tcpPort, 'metrics-user-2');
    devices.push(d);
    const before = (await scrape(t.httpPort)).samples;
    const r = await sender.broadcast({ content: 'everyone' });
    assert.equal(r.sent, 1);
    const m = (await scrape(t.httpPort)).samples;
    const grew = (name: string) => (m.get(name) ?? 0) - (before.get(name) ?? 0);
    assert.equal(grew('mpush_broadcast_tasks_total'), 1);
    assert.equal(grew('mpush_broadcast_deliveries_total{state="matched"}'), 1);
    assert.equal(grew('mpush_broadcast_deliveries_total{state="sent"}'), 1);
    assert.equal(grew('mpush_gateway_requests_total{kind="broadcast"}'), 1);
  });

  it('an HTTP API push to a user with no route is counted offline, once; one a gateway ends is not counted again', async () => {
    const post = async (userId: string): Promise<string[]> => {
      const res = await fetch(`http://127.0.0.1:${t.httpPort}/api/push`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ userId, content: 'hi' }),
      });
      assert.equal(res.status, 200);
      return ((await res.json()) as { results: Array<{ result: string }> }).results.map((r) => r.result);
    };
    const off = 'mpush_pushes_total{outcome="offline"}';
    const ok = 'mpush_pushes_total{outcome="success"}';
    const s0 = (await scrape(t.httpPort)).samples;
    assert.deepEqual(await post('metrics-api-nobody'), ['offline']);
    const s1 = (await scrape(t.httpPort)).samples;
    assert.equal(s1.get(off), s0.get(off)! + 1);
    devices.push(await connectDevice(t.tcpPort, 'metrics-api-user'));
    for (let i = 0; i < 100 && (await t.node.stores.routes.lookup('metrics-api-user')).size === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.deepEqual(await post('metrics-api-user'), ['success']);
    const s2 = (await scrape(t.httpPort)).samples;
    assert.equal(s2.get(ok), s1.get(ok)! + 1);
    assert.equal(s2.get(off), s1.get(off), 'no offline counted for a push the gateway ended');
  });

  it('no label names a user, a device or a connection', async () => {
    const m = await scrape(t.httpPort);
    const allowed = new Set([
      'transport',
      'kind',
      'reason',
      'outcome',
      'state',
      'port',
      'limit',
      'event',
      'result',
    ]);
    allowed.add('command').add('le').add('space').add('version').add('major').add('minor').add('patch');
    allowed.add('type');
    for (const series of m.samples.keys()) {
      for (const [, label] of series.matchAll(/[{,]([a-zA-Z_]+)="/g)) {
        assert.ok(allowed.has(label!), `${series}: label ${label}`);
      }
      assert.doesNotMatch(series, /metrics-user|metrics-nobody|test-dev/, series);
    }
  });
});

describe('GET /metrics: who may read it', () => {
  it('open to loopback; elsewhere the API bearer, unless metrics.public', () => {
    const config = loadConfig({});
    for (const a of ['127.0.0.1', '127.3.4.5', '::1', '::ffff:127.0.0.1'])
      assert.equal(metricsOpenTo(config, a), true, a);
    for (const a of ['192.0.2.7', '::ffff:10.0.0.1', 'fd00::2', undefined])
      assert.equal(metricsOpenTo(config, a), false);
    config.metrics.public = true;
    assert.equal(metricsOpenTo(config, '192.0.2.7'), true);
  });

  // A real request from a non-loopback address: this machine's own non-internal IPv4 address.
  const external = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

  it('from a non-loopback address: 401 without the bearer, 200 with it', {
    skip: !external && 'no non-loopback IPv4 interface',
  }, async () => {
    const t = await startTestNode({ http: { host: '0.0.0.0' }, api: { secret: 'metrics-secret' } });
    try {
      assert.equal((await scrape(t.httpPort, { host: external! })).status, 401);
      assert.equal((await scrape(t.httpPort, { host: external!, auth: 'Bearer wrong' })).status, 401);
      assert.equal(
        (await scrape(t.httpPort, { host: external!, auth: 'Bearer metrics-secret' })).status,
        200,
      );
      assert.equal((await scrape(t.httpPort)).status, 200, 'loopback needs none');
    } finally {
      await t.stop();
    }
  });

  it('metrics.public: open from a non-loopback address', {
    skip: !external && 'no non-loopback IPv4 interface',
  }, async () => {
    const t = await startTestNode({
      http: { host: '0.0.0.0' },
      api: { secret: 'metrics-secret' },
      metrics: { public: true },
    });
    try {
      assert.equal((await scrape(t.httpPort, { host: external! })).status, 200);
      // The API itself stays behind its secret.
      const api = await fetch(`http://${external}:${t.httpPort}/api/stats`);
      assert.equal(api.status, 401);
    } finally {
      await t.stop();
    }
  });
});

describe('GET /metrics: Redis', () => {
  it('counts and times the commands of the Redis stores, by command; failures by command', async () => {
    const redis = await startTestRedis();
    const stores = redisStores({
      redis: redis.url,
      prefix: redis.prefix,
      registryTtlMs: 10_000,
      registryRefreshMs: 3000,
    });
    const t = await startTestNode({}, stores);
    const d = await connectDevice(t.tcpPort, 'metrics-redis-user');
    try {
      await waitFor(
        () => (stores.redisCommands?.calls.get('evalsha') ?? 0) > 0,
        3000,
        'the route written (a script)',
      );
      const m = (await scrape(t.httpPort)).samples;
      assert.ok(m.get('mpush_redis_commands_total{command="evalsha"}')! >= 1);
      assert.ok(m.get('mpush_redis_command_duration_seconds_count')! >= 1);
      assert.equal(m.get('mpush_redis_command_errors_total{command="hgetall"}'), undefined);

      // An error reply is counted against its command, once.
      const client = createRedis(redis.url);
      const stats = new RedisCommandStats();
      instrumentRedis(client, stats);
      await client.set(`${redis.prefix}k`, 'v');
      await assert.rejects(client.call('nosuchcommand'));
      assert.equal(stats.calls.get('set'), 1);
      assert.equal(stats.errors.get('set'), undefined);
      assert.equal(stats.calls.get('nosuchcommand'), 1);
      assert.equal(stats.errors.get('nosuchcommand'), 1);
      // Each command timed once (the connection's own CLIENT / INFO included).
      const calls = [...stats.calls.values()].reduce((a, b) => a + b, 0);
      assert.equal(stats.latency.count, calls);
      client.disconnect();
    } finally {
      await closeAll([d]);
      await t.stop();
      await redis.close();
    }
  });
});
