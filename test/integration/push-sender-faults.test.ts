import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import { PushSender, type PushSenderOptions } from '../../src/client/push/push-sender.js';
import type { PushLogger, PushResult } from '../../src/client/push/types.js';
import { Command, ExtCommand, encodePacket, RouteQueryCodec } from '../../src/protocol/index.js';
import {
  errorFrame,
  FakeGateway,
  okFrame,
  pushOk,
  routeAnswer,
  routesHere,
} from '../helpers/fake-gateway.js';
import { waitFor } from '../helpers/wait.js';

/** Every unhandled rejection of the file: each test ends by asserting there were none. */
const unhandled: unknown[] = [];
const onUnhandled = (err: unknown) => unhandled.push(err);
process.on('unhandledRejection', onUnhandled);
after(() => {
  process.off('unhandledRejection', onUnhandled);
});

/** A logger that keeps what it is told. */
function recordingLogger(): PushLogger & { lines: Array<[string, string, unknown]> } {
  const lines: Array<[string, string, unknown]> = [];
  return {
    lines,
    error: (msg, f) => lines.push(['error', msg, f]),
    warn: (msg, f) => lines.push(['warn', msg, f]),
  };
}

const OUTCOMES = new Set(['success', 'failure', 'offline', 'timeout']);

/** Exactly one result per user (each has one device here), in the caller's order. */
function onePerUser(results: PushResult[], users: string[]): void {
  assert.equal(results.length, users.length, 'one result per (user, device type)');
  results.forEach((r, i) => {
    assert.equal(r.userId, users[i], 'results in the caller order');
    assert.ok(OUTCOMES.has(r.result), `an outcome of the four: ${r.result}`);
  });
}

/**
 * Calls `send` and checks the call ended by its deadline: `timeout` plus a generous bound for
 * a loaded machine (a failure bound, not a measurement).
 */
async function boundedSend(
  sender: PushSender,
  users: string[],
  timeout: number,
  extra: Partial<Parameters<PushSender['send']>[0]> = {},
): Promise<PushResult[]> {
  const t0 = Date.now();
  const results = await sender.send({ userIds: users, content: 'x', timeout, ...extra });
  assert.ok(Date.now() - t0 < timeout + 3000, 'answered by its deadline');
  onePerUser(results, users);
  return results;
}

/** After stop(): nothing in flight, no deadline, no connection. */
function idle(sender: PushSender): void {
  assert.deepEqual(sender.pending(), {
    calls: 0,
    requests: 0,
    routeLookups: 0,
    deadlines: 0,
    connections: 0,
  });
}

describe('PushSender against faulty gateways: one result per (user, device type), within the deadline', () => {
  const gateways: FakeGateway[] = [];
  const senders: PushSender[] = [];
  let log: ReturnType<typeof recordingLogger>;

  async function setup(
    behaviour: ConstructorParameters<typeof FakeGateway>[0],
    opts: Partial<PushSenderOptions> = {},
  ): Promise<{ gw: FakeGateway; sender: PushSender }> {
    const gw = new FakeGateway(behaviour);
    await gw.listen();
    gateways.push(gw);
    log = recordingLogger();
    const sender = PushSender.create({
      gateways: [{ host: '127.0.0.1', port: gw.port }],
      logger: log,
      ...opts,
    });
    senders.push(sender);
    return { gw, sender };
  }

  afterEach(async () => {
    for (const s of senders.splice(0)) {
      await s.stop();
      idle(s);
    }
    for (const g of gateways.splice(0)) await g.close();
    assert.deepEqual(unhandled, [], 'no unhandled rejection');
  });

  it('a gateway that never answers a route query: every user times out by the call timeout', async () => {
    const { gw, sender } = await setup(() => {});
    const users = ['a', 'b', 'c'];
    const results = await boundedSend(sender, users, 300);
    assert.deepEqual(
      results.map((r) => r.result),
      ['timeout', 'timeout', 'timeout'],
    );
    assert.equal(gw.count(ExtCommand.GATEWAY_ROUTE_QUERY), 1, 'one query for the three misses');
  });

  it('broadcastTargets() that never answers: the broadcast goes to the configured gateways within the timeout', async () => {
    const { gw, sender } = await setup(
      (p, socket) => {
        if (p.cmd === Command.GATEWAY_PUSH)
          socket.write(
            okFrame(
              p,
              JSON.stringify({ taskId: 't', status: 'done', matched: 2, sent: 2, acked: 0, failed: 0 }),
            ),
          );
      },
      { timeout: 300, broadcastTargets: () => new Promise(() => {}) },
    );
    const r = await sender.broadcast({ content: 'x', taskId: 't' });
    assert.deepEqual([r.result, r.sent, r.nodes.length], ['success', 2, 1]);
    assert.equal(gw.count(Command.GATEWAY_PUSH), 1);
    assert.ok(
      log.lines.some(([, msg]) => /broadcastTargets failed/.test(msg)),
      'the fallback is logged',
    );
  });

  it('a gateway that never answers a push: timeout, and stop() leaves nothing pending', async () => {
    const { sender } = await setup(routesHere(() => {}));
    const results = await boundedSend(sender, ['a', 'b'], 300);
    assert.deepEqual(
      results.map((r) => r.result),
      ['timeout', 'timeout'],
    );
    // A call still waiting when the sender stops is answered by stop() itself.
    const waiting = sender.send({ userIds: ['c', 'd'], content: 'x', timeout: 60_000 });
    await waitFor(() => sender.pending().requests === 2, 5000, 'the pushes in flight');
    await sender.stop();
    idle(sender);
    const stopped = await waiting;
    assert.deepEqual(
      stopped.map((r) => [r.result, r.reason]),
      [
        ['failure', 'push sender stopped'],
        ['failure', 'push sender stopped'],
      ],
    );
  });

  it('a gateway that closes mid-request: failure, and a written push is never sent again', async () => {
    const { gw, sender } = await setup(routesHere((_p, s) => s.destroy()));
    const users = ['a', 'b', 'c', 'd'];
    const results = await boundedSend(sender, users, 5000);
    for (const r of results) {
      assert.equal(r.result, 'failure');
      assert.match(r.reason ?? '', /connection lost/);
    }
    assert.equal(gw.count(Command.GATEWAY_PUSH), users.length, 'each push reached the gateway once');
    assert.ok(
      log.lines.some(([, msg]) => msg === 'gateway connection lost'),
      'the loss is logged',
    );
  });

  it('a reply that does not decode fails only the request it names; the connection keeps serving', async () => {
    let n = 0;
    const { sender } = await setup(
      routesHere((p, s) => {
        // The first push is answered by an OK whose body is cut short; the others properly.
        s.write(
          n++ === 0
            ? encodePacket({ cmd: Command.OK, flags: 0, sessionId: p.sessionId, body: Buffer.from([1]) })
            : pushOk(p),
        );
      }),
    );
    const results = await boundedSend(sender, ['a', 'b', 'c'], 5000);
    const byResult = results.map((r) => r.result).sort();
    assert.deepEqual(byResult, ['failure', 'success', 'success']);
    const bad = results.find((r) => r.result === 'failure')!;
    assert.match(bad.reason ?? '', /malformed gateway reply/);
    assert.ok(
      log.lines.some(([lvl, msg]) => lvl === 'warn' && /malformed gateway reply/.test(msg)),
      'logged',
    );
    assert.equal(sender.channel('127.0.0.1', gateways[0]!.port).connected, true);
  });

  it('an OK whose data is not what a push OK holds is a malformed reply, for that request alone', async () => {
    const { sender } = await setup(routesHere((p, s) => s.write(okFrame(p, '{"timePoints": 7}'))));
    const [r] = await boundedSend(sender, ['a'], 5000);
    assert.equal(r!.result, 'failure');
    assert.match(r!.reason ?? '', /timePoints is not an object/);
  });

  it('a gateway that answers garbage bytes: the stream is dropped, each request ends once', async () => {
    const { sender } = await setup(
      routesHere((_p, s) => {
        // A header declaring a negative length: no packet can be cut from this stream.
        s.write(Buffer.from([0xff, 0xff, 0xff, 0xf0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]));
      }),
    );
    const results = await boundedSend(sender, ['a', 'b', 'c'], 3000);
    for (const r of results) assert.ok(r.result === 'failure' || r.result === 'timeout', r.result);
    assert.ok(results.some((r) => /undecodable stream/.test(r.reason ?? '')));
    assert.ok(
      log.lines.some(([lvl, msg]) => lvl === 'error' && /undecodable stream/.test(msg)),
      'logged',
    );
  });

  it('a gateway that answers twice: one result, the second reply dropped', async () => {
    const { gw, sender } = await setup(
      routesHere((p, s) => {
        s.write(pushOk(p));
        s.write(pushOk(p));
      }),
    );
    const results = await boundedSend(sender, ['a', 'b'], 5000);
    assert.deepEqual(
      results.map((r) => r.result),
      ['success', 'success'],
    );
    await waitFor(() => sender.channel('127.0.0.1', gw.port).strayReplies === 2, 5000, 'the second replies');
  });

  it('10,001 users: route queries cut under the cap, one result per user, in the caller order', async () => {
    const cap = 10_000;
    const sizes: number[] = [];
    const { sender } = await setup((p, s, gw) => {
      if (p.cmd === ExtCommand.GATEWAY_ROUTE_QUERY) {
        const n = RouteQueryCodec.decode(p.body).userIds.length;
        sizes.push(n);
        if (n > cap) {
          s.write(errorFrame(p, -1, `route query needs up to ${cap} user ids`));
        } else s.write(routeAnswer(p, gw.port));
      } else if (p.cmd === Command.GATEWAY_PUSH) s.write(pushOk(p));
    });
    const users = Array.from({ length: cap + 1 }, (_, i) => `user-${i}`);
    const results = await boundedSend(sender, users, 20_000);
    assert.deepEqual(
      sizes.sort((a, b) => b - a),
      [cap, 1],
    );
    assert.equal(results.filter((r) => r.result === 'success').length, users.length);
  });

  it('a callback that throws: every result still comes, the throw reaches the logger', async () => {
    const { sender } = await setup(routesHere((p, s) => s.write(pushOk(p))));
    let calls = 0;
    const results = await boundedSend(sender, ['a', 'b', 'c'], 5000, {
      callback: {
        onResult() {
          calls++;
          throw new Error('business bug');
        },
      },
    });
    assert.deepEqual(
      results.map((r) => r.result),
      ['success', 'success', 'success'],
    );
    assert.equal(calls, 3, 'called once per result, the throws notwithstanding');
    const errors = log.lines.filter(([lvl, msg]) => lvl === 'error' && msg === 'push callback threw');
    assert.equal(errors.length, 3);
  });

  it('a callback that blocks for 1 s: the other results are unaffected, each comes once', async () => {
    const { sender } = await setup(routesHere((p, s) => s.write(pushOk(p))));
    const seen: string[] = [];
    const results = await boundedSend(sender, ['a', 'b', 'c'], 10_000, {
      callback: {
        onResult(r) {
          if (seen.length === 0) {
            const until = Date.now() + 1000;
            while (Date.now() < until) {
              // a slow business callback
            }
          }
          seen.push(r.userId);
        },
      },
    });
    assert.deepEqual(
      results.map((r) => r.result),
      ['success', 'success', 'success'],
    );
    assert.deepEqual([...seen].sort(), ['a', 'b', 'c']);
  });

  it('a gateway that answers no heartbeat is dropped as dead; its requests fail, the pool reconnects', async () => {
    const { gw, sender } = await setup(
      routesHere(() => {}),
      { heartbeatMs: 50, heartbeatTimeoutMs: 200 },
    );
    gw.heartbeats = false;
    const results = await boundedSend(sender, ['a'], 20_000);
    assert.equal(results[0]!.result, 'failure');
    assert.match(results[0]!.reason ?? '', /heartbeat/);
    await waitFor(() => gw.accepted >= 2, 5000, 'a reconnect');
  });
});

describe('PushSender pool and route cache', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
    assert.deepEqual(unhandled, [], 'no unhandled rejection');
  });

  it('connectionsPerGateway: requests spread over every connection', async () => {
    const perSocket = new Map<unknown, number>();
    const gw = new FakeGateway(
      routesHere((p, s) => {
        perSocket.set(s, (perSocket.get(s) ?? 0) + 1);
        s.write(pushOk(p));
      }),
    );
    await gw.listen();
    const sender = PushSender.create({
      gateways: [{ host: '127.0.0.1', port: gw.port }],
      connectionsPerGateway: 3,
      logger: recordingLogger(),
    });
    cleanup.push(
      () => gw.close(),
      () => sender.stop(),
    );
    await sender.start();
    await waitFor(() => sender.pending().connections === 3, 5000, 'three connections up');
    const users = Array.from({ length: 30 }, (_, i) => `u${i}`);
    await boundedSend(sender, users, 5000);
    assert.equal(perSocket.size, 3, 'pushes on each of the three connections');
  });

  it('concurrent misses for many users are coalesced into one query', async () => {
    const gw = new FakeGateway(routesHere((p, s) => s.write(pushOk(p))));
    await gw.listen();
    const sender = PushSender.create({
      gateways: [{ host: '127.0.0.1', port: gw.port }],
      logger: recordingLogger(),
    });
    cleanup.push(
      () => gw.close(),
      () => sender.stop(),
    );
    const calls = Array.from({ length: 50 }, (_, i) => sender.send({ userId: `u${i}`, content: 'x' }));
    const results = (await Promise.all(calls)).flat();
    assert.equal(results.filter((r) => r.result === 'success').length, 50);
    assert.equal(gw.count(ExtCommand.GATEWAY_ROUTE_QUERY), 1);
  });

  it('a route near expiry is refreshed in the background: the push does not wait for the lookup', async () => {
    let queries = 0;
    const gw = new FakeGateway((p, s, g) => {
      if (p.cmd === ExtCommand.GATEWAY_ROUTE_QUERY) {
        // Only the first query is answered: a push waiting on the refresh would time out.
        if (queries++ === 0) s.write(routeAnswer(p, g.port));
      } else if (p.cmd === Command.GATEWAY_PUSH) s.write(pushOk(p));
    });
    await gw.listen();
    const sender = PushSender.create({
      gateways: [{ host: '127.0.0.1', port: gw.port }],
      routeCacheMs: 60_000,
      logger: recordingLogger(),
    });
    cleanup.push(
      () => gw.close(),
      () => sender.stop(),
    );
    const [first] = await sender.send({ userId: 'u', content: 'x', timeout: 5000 });
    assert.equal(first!.result, 'success');
    // Into the last fifth of the entry's life (only Date is faked: sockets and timers are real).
    const realNow = Date.now;
    const skew = 50_000;
    Date.now = () => realNow() + skew;
    try {
      const [second] = await sender.send({ userId: 'u', content: 'x', timeout: 5000 });
      assert.equal(second!.result, 'success', 'served from the cache');
      await waitFor(() => gw.count(ExtCommand.GATEWAY_ROUTE_QUERY) === 2, 5000, 'the background refresh');
    } finally {
      Date.now = realNow;
    }
  });

  it('a gateway restart under load: every call ends once within its deadline, none is pushed twice', async () => {
    const seen = new Map<string, number>();
    const behaviour = routesHere((p, s) => {
      const body = p.body.toString('latin1');
      seen.set(body, (seen.get(body) ?? 0) + 1);
      s.write(pushOk(p));
    });
    let gw = new FakeGateway(behaviour);
    const port = await gw.listen();
    const sender = PushSender.create({
      gateways: [{ host: '127.0.0.1', port }],
      reconnectMinMs: 20,
      reconnectMaxMs: 200,
      routeCacheMs: 60_000,
      logger: recordingLogger(),
    });
    cleanup.push(
      () => gw.close(),
      () => sender.stop(),
    );
    await sender.start();
    const results: PushResult[] = [];
    let stop = false;
    let n = 0;
    const worker = async () => {
      while (!stop) {
        const id = `u${n++}`;
        const rs = await boundedSend(sender, [id], 2000, { content: id });
        results.push(...rs);
      }
    };
    const load = Promise.all(Array.from({ length: 20 }, worker));
    await waitFor(() => results.length > 200, 10_000, 'load before the restart');
    await gw.close();
    await new Promise((r) => setTimeout(r, 100));
    gw = new FakeGateway(behaviour);
    await gw.listen(port);
    const before = results.length;
    await waitFor(
      () => results.slice(before).filter((r) => r.result === 'success').length > 200,
      15_000,
      'pushes succeeding after the restart',
    );
    stop = true;
    await load;
    for (const [body, times] of seen) assert.equal(times, 1, `pushed once: ${body.slice(0, 20)}`);
    assert.ok(
      results.some((r) => r.result !== 'success'),
      'the restart was felt',
    );
  });
});
