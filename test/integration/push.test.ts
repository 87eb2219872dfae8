import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { PushSender } from '../../src/client/push/push-sender.js';
import type { PushResult } from '../../src/client/push/types.js';
import { MemoryNodeRegistry } from '../../src/cluster/node-registry.js';
import { MemoryRouteStore } from '../../src/cluster/route-store.js';
import { MemorySessionStore } from '../../src/cluster/session-store.js';
import {
  ClientType,
  Command,
  ErrorCode,
  ErrorCodec,
  ExtCommand,
  encodePacket,
  FrameDecoder,
  OkCodec,
} from '../../src/protocol/index.js';
import { closeAll, connectDevice, type TestDevice } from '../helpers/devices.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait.js';

/** Counts every callback of a push, to prove each result is delivered exactly once. */
function recorder() {
  const calls: Array<[string, PushResult]> = [];
  return {
    calls,
    callback: {
      onResult: (r: PushResult) => calls.push(['result', r]),
      onSuccess: (r: PushResult) => calls.push(['success', r]),
      onFailure: (r: PushResult) => calls.push(['failure', r]),
      onOffline: (r: PushResult) => calls.push(['offline', r]),
      onTimeout: (r: PushResult) => calls.push(['timeout', r]),
    },
  };
}

describe('push path: one node', () => {
  let t: TestNode;
  let sender: PushSender;
  const devices: TestDevice[] = [];

  before(async () => {
    t = await startTestNode();
    sender = PushSender.create({
      gateways: [{ host: '127.0.0.1', port: t.node.addresses.gatewayPort }],
      routeCacheMs: 0,
    });
    await sender.start();
  });
  after(async () => {
    await sender.stop();
    await closeAll(devices);
    await t.stop();
  });

  it('NO_ACK: success once written, with the timeline and the node time points', async () => {
    const d = await connectDevice(t.tcpPort, 'u-noack');
    devices.push(d);
    const rec = recorder();
    const [r, ...rest] = await sender.send({ userId: 'u-noack', content: 'hello', callback: rec.callback });
    assert.equal(rest.length, 0);
    assert.equal(r!.result, 'success');
    assert.equal(r!.code, 1);
    assert.equal(r!.clientType, ClientType.MOBILE);
    for (const k of [
      'begin',
      'check-gateway-conn',
      'send-to-gateway-begin',
      'send-to-gateway-end',
      'end',
    ] as const) {
      assert.equal(typeof r!.timeline[k], 'number', `timeline.${k}`);
    }
    assert.ok(r!.timePoints?.received && r!.timePoints.written);
    await waitFor(() => d.pushes.length === 1);
    assert.equal(d.pushes[0]!.content.toString(), 'hello');
    assert.deepEqual(
      rec.calls.map((c) => c[0]),
      ['result', 'success'],
    );
  });

  it('timePoints: false: the gateway leaves the time points out of its replies, the push still succeeds', async () => {
    const quiet = PushSender.create({
      gateways: [{ host: '127.0.0.1', port: t.node.addresses.gatewayPort }],
      routeCacheMs: 0,
      timePoints: false,
    });
    await quiet.start();
    try {
      const d = await connectDevice(t.tcpPort, 'u-quiet');
      devices.push(d);
      const [r] = await quiet.send({ userId: 'u-quiet', content: 'hush', ackModel: 'AUTO_ACK' });
      assert.equal(r!.result, 'success');
      assert.equal(r!.timePoints, undefined);
      assert.equal(d.pushes[0]!.content.toString(), 'hush');
    } finally {
      await quiet.stop();
    }
  });

  it('AUTO_ACK: success after the SDK acks; msg is sent as JSON', async () => {
    const d = await connectDevice(t.tcpPort, 'u-auto');
    devices.push(d);
    const [r] = await sender.send({
      userId: 'u-auto',
      msg: { msgType: 1, msgId: 'm1', content: 'x' },
      ackModel: 'AUTO_ACK',
    });
    assert.equal(r!.result, 'success');
    assert.ok(r!.timePoints?.acked);
    assert.deepEqual(JSON.parse(d.pushes[0]!.content.toString()), { msgType: 1, msgId: 'm1', content: 'x' });
  });

  it('BIZ_ACK: success when the app acks', async () => {
    const d = await connectDevice(t.tcpPort, 'u-biz');
    devices.push(d);
    d.client.on('push', (p) => setTimeout(() => d.client.ack(p.sessionId), 20));
    const [r] = await sender.send({ userId: 'u-biz', content: 'biz', ackModel: 'BIZ_ACK', timeout: 3000 });
    assert.equal(r!.result, 'success');
  });

  it('BIZ_ACK never acked: timeout, and the late ack afterwards changes nothing', async () => {
    const d = await connectDevice(t.tcpPort, 'u-silent');
    devices.push(d);
    const rec = recorder();
    const [r] = await sender.send({
      userId: 'u-silent',
      content: 'no ack',
      ackModel: 'BIZ_ACK',
      timeout: 700,
      callback: rec.callback,
    });
    assert.equal(r!.result, 'timeout');
    assert.equal(r!.code, 4);
    d.client.ack(d.pushes[0]!.sessionId); // late
    await new Promise((res) => setTimeout(res, 100));
    assert.deepEqual(
      rec.calls.map((c) => c[0]),
      ['result', 'timeout'],
    );
    assert.equal(t.node.push.acks.pending, 0);
  });

  it('no route: offline', async () => {
    const rec = recorder();
    const [r] = await sender.send({ userId: 'nobody', content: 'x', callback: rec.callback });
    assert.equal(r!.result, 'offline');
    assert.equal(r!.code, 3);
    assert.deepEqual(
      rec.calls.map((c) => c[0]),
      ['result', 'offline'],
    );
  });

  it('a user with several device types gets one result per type', async () => {
    devices.push(await connectDevice(t.tcpPort, 'u-multi', { osName: 'android' }));
    devices.push(await connectDevice(t.tcpPort, 'u-multi', { osName: 'Windows' }));
    const results = await sender.send({ userId: 'u-multi', content: 'both' });
    assert.deepEqual(results.map((r) => [r.clientType, r.result]).sort(), [
      [ClientType.MOBILE, 'success'],
      [ClientType.PC, 'success'],
    ]);
  });

  it('batch: one result per (user, device type), offline users included', async () => {
    devices.push(await connectDevice(t.tcpPort, 'b1'));
    devices.push(await connectDevice(t.tcpPort, 'b2'));
    const results = await sender.send({
      userIds: ['b1', 'b2', 'b3'],
      content: 'batch',
      ackModel: 'AUTO_ACK',
    });
    assert.deepEqual(
      results.map((r) => [r.userId, r.result]),
      [
        ['b1', 'success'],
        ['b2', 'success'],
        ['b3', 'offline'],
      ],
    );
  });

  it('a device connection dropped between route lookup and write: failure (ERROR 2)', async () => {
    const d = await connectDevice(t.tcpPort, 'u-drop');
    const conn = t.node.connections.router.get('u-drop', ClientType.MOBILE)!;
    conn.transport.destroy(); // gone, but its close is not processed yet
    const outcome = await new Promise((resolve) =>
      t.node.push.unicast(
        {
          userId: 'u-drop',
          clientType: ClientType.MOBILE,
          timeout: 1000,
          content: Buffer.from('x'),
          taskId: '',
          tags: null,
          condition: '',
        },
        0,
        resolve,
      ),
    );
    assert.deepEqual(outcome, {
      kind: 'error',
      code: ErrorCode.PUSH_CLIENT_FAILURE,
      reason: 'write to device failed',
    });
    await d.client.close();
  });

  it('a push larger than gateway.maxPacketSize gets an ERROR, and the gateway connection lives on', async () => {
    const small = await PushSender.create({
      gateways: [{ host: '127.0.0.1', port: t.node.addresses.gatewayPort }],
    });
    devices.push(await connectDevice(t.tcpPort, 'u-big'));
    const [big] = await small.send({
      userId: 'u-big',
      content: Buffer.alloc(t.config.gateway.maxPacketSize + 1),
    });
    assert.equal(big!.result, 'failure');
    assert.match(big!.reason ?? '', /exceeds gateway.maxPacketSize/);
    const [ok] = await small.send({ userId: 'u-big', content: 'small' });
    assert.equal(ok!.result, 'success');
    await small.stop();
  });

  it('a gateway timeout of 0 means the default (mpush-wire §12)', async () => {
    devices.push(await connectDevice(t.tcpPort, 'u-t0'));
    const replies: string[] = [];
    await new Promise<void>((resolve) =>
      t.node.push.unicast(
        {
          userId: 'u-t0',
          clientType: ClientType.MOBILE,
          timeout: 0,
          content: Buffer.from('x'),
          taskId: '',
          tags: null,
          condition: '',
        },
        8, // AUTO_ACK
        (o) => {
          replies.push(o.kind);
          resolve();
        },
      ),
    );
    assert.deepEqual(replies, ['ok']);
  });
});

describe('push path: broadcast', () => {
  let t: TestNode;
  let sender: PushSender;
  const devices: TestDevice[] = [];

  before(async () => {
    t = await startTestNode();
    sender = PushSender.create({ gateways: [{ host: '127.0.0.1', port: t.node.addresses.gatewayPort }] });
    for (let i = 0; i < 30; i++) {
      const tags = i % 3 === 0 ? 'vip,beta' : i % 3 === 1 ? 'beta' : '';
      devices.push(
        await connectDevice(t.tcpPort, `bc-${i}`, { tags, clientVersion: i < 10 ? '1.0' : '2.0' }),
      );
    }
  });
  after(async () => {
    await sender.stop();
    await closeAll(devices);
    await t.stop();
  });

  it('reaches every bound device, with exact counts and acks', async () => {
    const r = await sender.broadcast({ content: 'all', ackModel: 'AUTO_ACK' });
    assert.equal(r.result, 'success');
    assert.equal(r.matched, 30);
    assert.equal(r.sent, 30);
    await waitFor(() => devices.every((d) => d.pushes.some((p) => p.content.toString() === 'all')));
    await waitFor(() => t.node.push.task(r.taskId)?.counts.acked === 30, 3000, 'acks counted');
    const live = await sender.broadcastStatus(r.taskId);
    assert.equal(live.acked, 30);
  });

  it('by tags: any of the tags matches', async () => {
    const vip = await sender.broadcast({ content: 'vip', tags: ['vip'] });
    assert.equal(vip.matched, 10);
    const either = await sender.broadcast({ content: 'either', tags: ['vip', 'beta'] });
    assert.equal(either.matched, 20);
  });

  it('by condition, in MPush syntax', async () => {
    const r = await sender.broadcast({
      content: 'cond',
      condition: "tags&&tags.indexOf('beta')!=-1&&clientVersion=='2.0'",
    });
    assert.equal(r.matched, 13); // beta: i%3 in {0,1} among i = 10..29
  });

  it('refuses a condition that tries to escape', async () => {
    for (const condition of [
      'tags.constructor',
      "userId['__proto__']",
      'process.exit(1)',
      `${'1+'.repeat(5000)}1`,
    ]) {
      const r = await sender.broadcast({ content: 'x', condition });
      assert.equal(r.result, 'failure', condition);
      assert.equal(r.matched, 0);
    }
  });

  it('flow control holds the rate', async () => {
    const rate = 40;
    const started = Date.now();
    const run = sender.broadcast({ content: 'slow', broadcastRate: rate, taskId: 'rate-task' });
    let samples = 0;
    while (t.node.push.task('rate-task')?.status !== 'done') {
      const task = t.node.push.task('rate-task');
      if (task) {
        // The server started after `started`: it may never be ahead of the rate plus one slice of burst.
        const elapsed = (Date.now() - started) / 1000;
        assert.ok(
          task.counts.matched <= Math.floor(elapsed * rate) + rate,
          `${task.counts.matched} in ${elapsed}s`,
        );
        samples++;
      }
      await new Promise((res) => setTimeout(res, 25));
    }
    const r = await run;
    assert.equal(r.matched, 30);
    assert.ok(samples > 3);
  });

  it('broadcastMax caps the devices reached', async () => {
    const r = await sender.broadcast({ content: 'capped', broadcastMax: 7 });
    assert.equal(r.matched, 7);
  });

  it('cancel stops a broadcast', async () => {
    const run = sender.broadcast({ content: 'cancel-me', broadcastRate: 10, taskId: 'cancel-task' });
    await waitFor(() => (t.node.push.task('cancel-task')?.counts.sent ?? 0) >= 2);
    const c = await sender.cancelBroadcast('cancel-task');
    assert.equal(c.nodes[0]!.status, 'cancelled');
    const r = await run;
    const sentAtCancel = r.sent;
    assert.ok(sentAtCancel < 30);
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(t.node.push.task('cancel-task')!.counts.sent, sentAtCancel);
  });
});

describe('push path: across nodes (redirect)', () => {
  it('follows a route change to the new node, and fails past the redirect bound', async () => {
    // Two nodes in one process sharing memory stores: a cluster without Redis.
    const routes = new MemoryRouteStore();
    const registry = new MemoryNodeRegistry();
    const a = await startTestNode({}, { routes, registry, sessions: new MemorySessionStore() });
    const b = await startTestNode({}, { routes, registry, sessions: new MemorySessionStore() });
    const sender = PushSender.create({
      gateways: [{ host: '127.0.0.1', port: a.node.addresses.gatewayPort }],
      routeCacheMs: 60_000,
    });
    const strict = PushSender.create({
      gateways: [{ host: '127.0.0.1', port: a.node.addresses.gatewayPort }],
      routeCacheMs: 60_000,
      maxRedirects: 0,
    });
    try {
      const onA = await connectDevice(a.tcpPort, 'mover');
      const [first] = await sender.send({ userId: 'mover', content: '1' });
      assert.equal(first!.gateway, `127.0.0.1:${a.node.addresses.gatewayPort}`);
      await strict.send({ userId: 'mover', content: 'prime the cache' });
      // The device moves to node B; the senders' cached routes still say A.
      await onA.client.close();
      await waitFor(() => a.node.connections.router.onlineUsers === 0);
      const onB = await connectDevice(b.tcpPort, 'mover');
      const rec = recorder();
      const [moved] = await sender.send({ userId: 'mover', content: '2', callback: rec.callback });
      assert.equal(moved!.result, 'success');
      assert.equal(moved!.redirects, 1);
      assert.equal(moved!.gateway, `127.0.0.1:${b.node.addresses.gatewayPort}`);
      assert.deepEqual(
        rec.calls.map((c) => c[0]),
        ['result', 'success'],
      );
      await waitFor(() => onB.pushes.some((p) => p.content.toString() === '2'));
      const [bounded] = await strict.send({ userId: 'mover', content: '3' });
      assert.equal(bounded!.result, 'failure');
      assert.match(bounded!.reason ?? '', /redirect bound/);
      await onB.client.close();
    } finally {
      await sender.stop();
      await strict.stop();
      await a.stop();
      await b.stop();
    }
  });
});

/** A scripted gateway: answers every GATEWAY_PUSH with the given reply (or nothing). */
async function scriptedGateway(
  reply: (sessionId: number) => Buffer | null,
): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    const dec = new FrameDecoder({
      onPacket: (p) => {
        if (p.cmd === ExtCommand.GATEWAY_HELLO) {
          // Speaks the extensions (the scripted answers are mpush-ts's, not MPush's).
          socket.write(
            encodePacket({
              cmd: Command.OK,
              flags: 0,
              sessionId: p.sessionId,
              body: OkCodec.encode({ cmd: p.cmd, code: 0, data: '1' }),
            }),
          );
          return;
        }
        if (p.cmd === ExtCommand.GATEWAY_ROUTE_QUERY) {
          const data = JSON.stringify({
            u: [
              {
                clientType: 1,
                host: '127.0.0.1',
                port: (server.address() as { port: number }).port,
                connId: 'x:1',
              },
            ],
          });
          socket.write(
            encodePacket({
              cmd: Command.OK,
              flags: 0,
              sessionId: p.sessionId,
              body: OkCodec.encode({ cmd: p.cmd, code: 0, data }),
            }),
          );
          return;
        }
        const out = reply(p.sessionId);
        if (out) socket.write(out);
      },
      onHeartbeat: () => {},
    });
    socket.on('data', (c) => dec.push(c));
    socket.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, port: (server.address() as { port: number }).port };
}

function errorReply(code: number) {
  return (sessionId: number) =>
    encodePacket({
      cmd: Command.ERROR,
      flags: 0,
      sessionId,
      body: ErrorCodec.encode({ cmd: Command.GATEWAY_PUSH, code, reason: `code ${code}`, data: '' }),
    });
}

describe('push path: every gateway answer maps to exactly one result', () => {
  const cases: Array<[string, (sid: number) => Buffer | null, string]> = [
    ['ERROR 1', errorReply(ErrorCode.OFFLINE), 'offline'],
    ['ERROR 2', errorReply(ErrorCode.PUSH_CLIENT_FAILURE), 'failure'],
    ['ERROR 4', errorReply(ErrorCode.ACK_TIMEOUT), 'timeout'],
    ['no reply', () => null, 'timeout'],
    [
      'two replies (OK, then ERROR)',
      (sid) =>
        Buffer.concat([
          encodePacket({
            cmd: Command.OK,
            flags: 0,
            sessionId: sid,
            body: OkCodec.encode({ cmd: 16, code: 0, data: '' }),
          }),
          errorReply(2)(sid),
        ]),
      'success',
    ],
  ];
  for (const [name, reply, expected] of cases) {
    it(`${name} → ${expected}`, async () => {
      const gw = await scriptedGateway(reply);
      const sender = PushSender.create({ gateways: [{ host: '127.0.0.1', port: gw.port }] });
      try {
        const rec = recorder();
        const [r] = await sender.send({ userId: 'u', content: 'x', timeout: 600, callback: rec.callback });
        assert.equal(r!.result, expected);
        await new Promise((res) => setTimeout(res, 50));
        assert.deepEqual(
          rec.calls.map((c) => c[0]),
          ['result', expected],
        );
      } finally {
        await sender.stop();
        gw.server.close();
      }
    });
  }

  it('a route to an address where nothing listens → failure', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const sender = PushSender.create({
      gateways: [{ host: '127.0.0.1', port }],
      routeSource: {
        lookup: async (ids) =>
          new Map(ids.map((u) => [u, [{ clientType: 1, host: '127.0.0.1', port, connId: 'gone:1' }]])),
      },
    });
    const rec = recorder();
    const [r] = await sender.send({ userId: 'u', content: 'x', callback: rec.callback });
    assert.equal(r!.result, 'failure');
    assert.match(r!.reason ?? '', /ECONNREFUSED/);
    assert.deepEqual(
      rec.calls.map((c) => c[0]),
      ['result', 'failure'],
    );
    await sender.stop();
  });

  it('the gateway connection dropping mid-request → failure', async () => {
    const gw = await scriptedGateway(() => null);
    gw.server.on('connection', (s) => setTimeout(() => s.destroy(), 100));
    const sender = PushSender.create({ gateways: [{ host: '127.0.0.1', port: gw.port }] });
    const [r] = await sender.send({ userId: 'u', content: 'x', timeout: 3000 });
    assert.equal(r!.result, 'failure');
    await sender.stop();
    gw.server.close();
  });
});

describe('push.tagMatch', () => {
  it("'exact' matches whole tags where MPush's default matches substrings", async () => {
    const exact = await startTestNode({ push: { tagMatch: 'exact' } });
    const mpush = await startTestNode();
    const devices: TestDevice[] = [];
    try {
      for (const t of [exact, mpush]) {
        devices.push(await connectDevice(t.tcpPort, 'tm-1', { tags: 'vip' }));
        devices.push(await connectDevice(t.tcpPort, 'tm-2', { tags: 'vipx,beta' }));
      }
      const count = async (t: TestNode) => {
        const s = PushSender.create({
          gateways: [{ host: '127.0.0.1', port: t.node.addresses.gatewayPort }],
        });
        const r = await s.broadcast({ content: 'x', tags: ['vip'] });
        await s.stop();
        return r.matched;
      };
      assert.equal(await count(exact), 1);
      assert.equal(await count(mpush), 2);
    } finally {
      await closeAll(devices);
      await exact.stop();
      await mpush.stop();
    }
  });
});

describe('gateway.maxOutboundBytes and gateway.drainTimeoutMs, each alone', () => {
  it('drops a push client that stops reading its replies; other clients are served', async () => {
    // The drain deadline is out of reach: only the byte bound can drop this client.
    const t = await startTestNode({ gateway: { maxOutboundBytes: 64 * 1024, drainTimeoutMs: 3_600_000 } });
    const { connect } = await import('node:net');
    const { BodyWriter } = await import('../../src/protocol/index.js');
    try {
      const port = t.node.addresses.gatewayPort;
      const slow = connect(port, '127.0.0.1');
      await new Promise<void>((r) => slow.once('connect', () => r()));
      slow.pause(); // never reads: its replies pile up on the gateway
      let closed = false;
      slow.on('close', () => {
        closed = true;
      });
      slow.on('error', () => {});
      // Each route query for 10,000 users is answered with ~150 KB: far past the socket buffers.
      const ids = JSON.stringify(Array.from({ length: 10_000 }, (_, i) => `nobody-${i}`));
      const body = new BodyWriter(ids.length + 8).writeString(ids).finish();
      for (let i = 1; i <= 200 && !closed; i++) {
        slow.write(encodePacket({ cmd: ExtCommand.GATEWAY_ROUTE_QUERY, flags: 0, sessionId: i, body }));
        await new Promise((r) => setImmediate(r));
      }
      await waitFor(() => t.node.gateway.stats.slowClients === 1, 10_000, 'slow push client dropped');
      assert.equal(t.node.gateway.stats.drainTimeouts, 0);
      const sender = PushSender.create({ gateways: [{ host: '127.0.0.1', port }] });
      const [r] = await sender.send({ userId: 'nobody', content: 'x' });
      assert.equal(r!.result, 'offline');
      await sender.stop();
      slow.destroy();
    } finally {
      await t.stop();
    }
  });

  it('drops a push client whose replies do not drain in time; other clients are served', async () => {
    // The byte bound is out of reach: only the drain deadline can drop this client.
    const t = await startTestNode({ gateway: { maxOutboundBytes: 1024 * 1024 * 1024, drainTimeoutMs: 300 } });
    const { connect } = await import('node:net');
    const { BodyWriter } = await import('../../src/protocol/index.js');
    try {
      const port = t.node.addresses.gatewayPort;
      const slow = connect(port, '127.0.0.1');
      await new Promise<void>((r) => slow.once('connect', () => r()));
      slow.pause(); // never reads: its replies fill the socket buffers, then wait on the gateway
      slow.on('error', () => {});
      const ids = JSON.stringify(Array.from({ length: 10_000 }, (_, i) => `nobody-${i}`));
      const body = new BodyWriter(ids.length + 8).writeString(ids).finish();
      // ~15 MB of replies: more than the loopback buffers hold, so a write is left waiting.
      for (let i = 1; i <= 100 && t.node.gateway.stats.drainTimeouts === 0; i++) {
        slow.write(encodePacket({ cmd: ExtCommand.GATEWAY_ROUTE_QUERY, flags: 0, sessionId: i, body }));
        await new Promise((r) => setImmediate(r));
      }
      await waitFor(() => t.node.gateway.stats.drainTimeouts === 1, 10_000, 'undrained push client dropped');
      assert.equal(t.node.gateway.stats.slowClients, 0);
      const sender = PushSender.create({ gateways: [{ host: '127.0.0.1', port }] });
      const [r] = await sender.send({ userId: 'nobody', content: 'x' });
      assert.equal(r!.result, 'offline');
      await sender.stop();
      slow.destroy();
    } finally {
      await t.stop();
    }
  });
});

describe('gateway: bad input is answered as on the device port', () => {
  it('a bad condition and an unreadable body get ERROR 100 naming them; the push client stays connected', async () => {
    const t = await startTestNode();
    const { connect } = await import('node:net');
    const { GatewayPushCodec } = await import('../../src/protocol/index.js');
    try {
      const sock = connect(t.node.addresses.gatewayPort, '127.0.0.1');
      await new Promise<void>((r) => sock.once('connect', () => r()));
      const replies: Array<{ cmd: number; sessionId: number; code: number; reason: string }> = [];
      const dec = new FrameDecoder({
        onPacket: (p) =>
          replies.push(
            p.cmd === Command.ERROR
              ? { ...ErrorCodec.decode(p.body), cmd: p.cmd, sessionId: p.sessionId }
              : { cmd: p.cmd, sessionId: p.sessionId, code: 0, reason: '' },
          ),
        onHeartbeat: () => {},
      });
      sock.on('data', (c: Buffer) => dec.push(c));
      const push = (sessionId: number, body: Buffer) =>
        sock.write(encodePacket({ cmd: Command.GATEWAY_PUSH, flags: 0, sessionId, body }));
      const broadcast = (condition: string) =>
        GatewayPushCodec.encode({
          userId: '',
          clientType: 0,
          timeout: 0,
          content: Buffer.from('x'),
          taskId: '',
          tags: null,
          condition,
        });
      push(1, broadcast('process.exit(1)'));
      push(2, Buffer.from([0x00, 0x09, 0x41])); // a userId string declared 9 bytes long, 1 there
      push(3, broadcast(''));
      await waitFor(() => replies.length === 3, 5000, 'three replies');
      const bySession = new Map(replies.map((r) => [r.sessionId, r]));
      assert.equal(bySession.get(1)!.cmd, Command.ERROR);
      assert.equal(bySession.get(1)!.code, ErrorCode.DISPATCH_ERROR);
      assert.match(bySession.get(1)!.reason, /'exit' is not allowed/);
      assert.equal(bySession.get(2)!.cmd, Command.ERROR);
      assert.equal(bySession.get(2)!.code, ErrorCode.DISPATCH_ERROR);
      assert.equal(bySession.get(3)!.cmd, Command.OK, 'the same connection still serves a good broadcast');
      sock.destroy();
    } finally {
      await t.stop();
    }
  });
});
