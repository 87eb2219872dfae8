import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PushSender } from '../../src/client/push/push-sender.js';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/log.js';
import { MpushNode } from '../../src/node.js';
import { ClientType } from '../../src/protocol/index.js';
import { closeAll, connectDevice, type TestDevice } from '../helpers/devices.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { mpushDefaultKeys } from '../helpers/shared.js';
import { waitFor } from '../helpers/wait.js';

// biome-ignore lint/suspicious/noExplicitAny: JSON bodies are checked field by field
type Json = any;

interface Reply {
  status: number;
  body: Json;
  text: string;
}

/** One HTTP request to the node's HTTP port; a JSON body is parsed, any other is kept as text. */
async function call(
  port: number,
  method: string,
  path: string,
  opts: { json?: unknown; raw?: string; auth?: string } = {},
): Promise<Reply> {
  const headers: Record<string, string> = {};
  let body: string | undefined;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers['content-type'] = 'application/json';
  } else if (opts.raw !== undefined) {
    body = opts.raw;
  }
  if (opts.auth !== undefined) headers.authorization = opts.auth;
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers,
    ...(body !== undefined ? { body } : {}),
  });
  const text = await res.text();
  let parsed: Json;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed, text };
}

const TIMELINE = ['begin', 'check-gateway-conn', 'send-to-gateway-begin', 'send-to-gateway-end', 'end'];

function assertTimeline(r: Json): void {
  for (const k of TIMELINE) assert.equal(typeof r.timeline[k], 'number', `timeline.${k}`);
  assert.ok(r.timeline.begin <= r.timeline.end);
}

/** A POST through `agent` (node:http), to see whether its connection was reused. */
function viaAgent(
  agent: Agent,
  port: number,
  path: string,
  body: string,
): Promise<{ status: number; text: string; reusedSocket: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          text += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text, reusedSocket: req.reusedSocket }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Repeats `get` until `ok` holds of its value; fails after `timeoutMs` naming `what`. */
async function until<T>(
  get: () => Promise<T>,
  ok: (v: T) => boolean,
  what: string,
  timeoutMs = 5000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Asserts a 400 whose `problems` name `field` (and returns them). */
function assertProblem(reply: Reply, field: string): string[] {
  assert.equal(reply.status, 400, reply.text);
  assert.equal(reply.body.error, 'invalid request');
  assert.ok(Array.isArray(reply.body.problems), reply.text);
  assert.ok(
    (reply.body.problems as string[]).some((p) => p.includes(field)),
    `a problem naming ${field}: ${reply.text}`,
  );
  return reply.body.problems;
}

describe('HTTP API: POST /api/push', () => {
  let t: TestNode;
  let port: number;
  const devices: TestDevice[] = [];

  before(async () => {
    t = await startTestNode();
    port = t.node.addresses.httpPort;
  });
  after(async () => {
    await closeAll(devices);
    await t.stop();
  });

  it('BIZ_ACK with a device that acks: 200 with one success result and its timeline', async () => {
    const d = await connectDevice(t.tcpPort, 'u1');
    devices.push(d);
    d.client.on('push', (p) => {
      if (p.ackModel === 'biz') d.client.ack(p.sessionId);
    });
    const reply = await call(port, 'POST', '/api/push', {
      json: { userId: 'u1', content: 'hi', ackModel: 'BIZ_ACK', timeout: 3000 },
    });
    assert.equal(reply.status, 200, reply.text);
    assert.equal(reply.body.results.length, 1);
    const [r] = reply.body.results;
    assert.equal(r.userId, 'u1');
    assert.equal(r.clientType, ClientType.MOBILE);
    assert.equal(r.result, 'success');
    assert.equal(r.code, 1);
    assertTimeline(r);
    assert.ok(r.timePoints.acked, 'the node saw the ack');
    assert.equal(d.pushes.length, 1);
    assert.equal(d.pushes[0]!.content.toString(), 'hi');
    assert.equal(d.pushes[0]!.ackModel, 'biz');
  });

  it('AUTO_ACK: success once the SDK acks on receipt', async () => {
    const d = await connectDevice(t.tcpPort, 'u-auto');
    devices.push(d);
    const reply = await call(port, 'POST', '/api/push', {
      json: { userId: 'u-auto', content: 'auto', ackModel: 'AUTO_ACK' },
    });
    assert.equal(reply.status, 200, reply.text);
    const [r] = reply.body.results;
    assert.equal(r.result, 'success');
    assert.equal(r.code, 1);
    assert.ok(r.timePoints.acked);
    assert.equal(d.pushes[0]!.ackModel, 'auto');
  });

  it('NO_ACK (the default): success once written', async () => {
    const d = await connectDevice(t.tcpPort, 'u-noack');
    devices.push(d);
    for (const json of [
      { userId: 'u-noack', content: 'one', ackModel: 'NO_ACK' },
      { userId: 'u-noack', content: 'two' },
    ]) {
      const reply = await call(port, 'POST', '/api/push', { json });
      assert.equal(reply.status, 200, reply.text);
      assert.equal(reply.body.results.length, 1);
      assert.equal(reply.body.results[0].result, 'success');
      assert.ok(reply.body.results[0].timePoints.written);
      assert.equal(reply.body.results[0].timePoints.acked, undefined);
    }
    await waitFor(() => d.pushes.length === 2, 3000, 'both pushes');
    assert.deepEqual(
      d.pushes.map((p) => [p.content.toString(), p.ackModel]),
      [
        ['one', 'none'],
        ['two', 'none'],
      ],
    );
  });

  it('userIds batch: one result per user, an offline user gets offline (code 3)', async () => {
    devices.push(await connectDevice(t.tcpPort, 'b1'));
    devices.push(await connectDevice(t.tcpPort, 'b2'));
    const reply = await call(port, 'POST', '/api/push', {
      json: { userIds: ['b1', 'b2', 'b-nobody'], content: 'batch', ackModel: 'AUTO_ACK' },
    });
    assert.equal(reply.status, 200, reply.text);
    assert.deepEqual(
      reply.body.results.map((r: Json) => [r.userId, r.result, r.code]),
      [
        ['b1', 'success', 1],
        ['b2', 'success', 1],
        ['b-nobody', 'offline', 3],
      ],
    );
    const offline = reply.body.results[2];
    assert.equal(offline.clientType, -1);
    assert.equal(typeof offline.reason, 'string');
  });

  it('a single offline userId: 200 with an offline result', async () => {
    const reply = await call(port, 'POST', '/api/push', { json: { userId: 'nobody', content: 'x' } });
    assert.equal(reply.status, 200, reply.text);
    assert.deepEqual(
      reply.body.results.map((r: Json) => [r.userId, r.result, r.code]),
      [['nobody', 'offline', 3]],
    );
  });

  it('msg object: delivered to the device as its JSON', async () => {
    const d = await connectDevice(t.tcpPort, 'u-msg');
    devices.push(d);
    const msg = { msgType: 2, msgId: 'm-1', content: 'hello', extra: { a: [1, 2] } };
    const reply = await call(port, 'POST', '/api/push', {
      json: { userId: 'u-msg', msg, ackModel: 'AUTO_ACK' },
    });
    assert.equal(reply.status, 200, reply.text);
    assert.equal(reply.body.results[0].result, 'success');
    assert.deepEqual(JSON.parse(d.pushes[0]!.content.toString('utf8')), msg);
  });

  it('a user on two device types: two results, one per client type', async () => {
    const a = await connectDevice(t.tcpPort, 'u-two', { osName: 'android' });
    const w = await connectDevice(t.tcpPort, 'u-two', { osName: 'Windows' });
    devices.push(a, w);
    const reply = await call(port, 'POST', '/api/push', {
      json: { userId: 'u-two', content: 'both', ackModel: 'AUTO_ACK' },
    });
    assert.equal(reply.status, 200, reply.text);
    assert.deepEqual(reply.body.results.map((r: Json) => [r.userId, r.clientType, r.result]).sort(), [
      ['u-two', ClientType.MOBILE, 'success'],
      ['u-two', ClientType.PC, 'success'],
    ]);
    assert.equal(a.pushes.length, 1);
    assert.equal(w.pushes.length, 1);
  });

  it('BIZ_ACK never acked, timeout 500: a timeout result (code 4)', async () => {
    const d = await connectDevice(t.tcpPort, 'u-silent');
    devices.push(d);
    const reply = await call(port, 'POST', '/api/push', {
      json: { userId: 'u-silent', content: 'ignored', ackModel: 'BIZ_ACK', timeout: 500 },
    });
    assert.equal(reply.status, 200, reply.text);
    assert.equal(reply.body.results.length, 1);
    const [r] = reply.body.results;
    assert.equal(r.result, 'timeout');
    assert.equal(r.code, 4);
    assert.equal(r.clientType, ClientType.MOBILE);
    await waitFor(() => t.node.push.acks.pending === 0, 3000, 'the ack task to be released');
  });

  it('the API and PushSender give results of the same shape', async () => {
    devices.push(await connectDevice(t.tcpPort, 'u-shape'));
    const sender = PushSender.create({
      gateways: [{ host: '127.0.0.1', port: t.node.addresses.gatewayPort }],
      routeCacheMs: 0,
    });
    try {
      await sender.start();
      const [fromSdk] = await sender.send({ userId: 'u-shape', content: 'sdk', ackModel: 'AUTO_ACK' });
      const reply = await call(port, 'POST', '/api/push', {
        json: { userId: 'u-shape', content: 'api', ackModel: 'AUTO_ACK' },
      });
      const fromApi = reply.body.results[0];
      assert.equal(fromSdk!.result, 'success');
      assert.equal(fromApi.result, 'success');
      // Both name the message and its inbox copy (issue 9).
      assert.deepEqual(Object.keys(fromApi).sort(), Object.keys(fromSdk!).sort());
      assert.equal(typeof fromApi.messageId, 'string');
      assert.equal(fromApi.stored, false);
      assert.equal(fromSdk!.stored, false);
      assert.deepEqual(Object.keys(fromApi.timeline).sort(), Object.keys(fromSdk!.timeline).sort());
      assert.deepEqual(Object.keys(fromApi.timePoints).sort(), Object.keys(fromSdk!.timePoints!).sort());
      // Offline results too.
      const [sdkOffline] = await sender.send({ userId: 'u-shape-nobody', content: 'x' });
      const apiOffline = (
        await call(port, 'POST', '/api/push', { json: { userId: 'u-shape-nobody', content: 'x' } })
      ).body.results[0];
      assert.deepEqual(Object.keys(apiOffline).sort(), Object.keys(sdkOffline!).sort());
    } finally {
      await sender.stop();
    }
  });

  it("a push for this node's users goes straight to its push center, not through its gateway", async () => {
    const one = await connectDevice(t.tcpPort, 'u-direct');
    const two = await connectDevice(t.tcpPort, 'u-direct-2');
    devices.push(one, two);
    const gatewayPushes = t.node.gateway.stats.pushes;
    const unicasts = t.node.push.unicasts;
    const single = await call(port, 'POST', '/api/push', {
      json: { userId: 'u-direct', content: 'direct', ackModel: 'AUTO_ACK' },
    });
    assert.equal(single.status, 200, single.text);
    assert.equal(single.body.results[0].result, 'success');
    assert.ok(single.body.results[0].timePoints.acked, 'the push center saw the ack');
    assertTimeline(single.body.results[0]);
    assert.equal(single.body.results[0].gateway, `127.0.0.1:${t.node.addresses.gatewayPort}`);
    const batch = await call(port, 'POST', '/api/push', {
      json: { userIds: ['u-direct', 'u-direct-2', 'u-direct-nobody'], content: 'batch', store: true },
    });
    assert.equal(batch.status, 200, batch.text);
    assert.deepEqual(
      batch.body.results.map((r: Json) => [r.userId, r.result, r.stored]),
      [
        ['u-direct', 'success', false],
        ['u-direct-2', 'success', false],
        ['u-direct-nobody', 'offline', true],
      ],
    );
    await waitFor(() => two.pushes.length === 1, 3000, 'the batch push');
    assert.equal(t.node.gateway.stats.pushes, gatewayPushes, 'no push went through the gateway socket');
    // Every push still reaches the push center (and counts in the node's push rate).
    assert.equal(t.node.push.unicasts, unicasts + 4);
  });
});

describe('HTTP API: validation and routing', () => {
  let t: TestNode;
  let port: number;

  before(async () => {
    t = await startTestNode({ api: { maxBodyBytes: 2048 } });
    port = t.node.addresses.httpPort;
  });
  after(async () => {
    await t.stop();
  });

  const push = (json: unknown) => call(port, 'POST', '/api/push', { json });

  it('missing userId and userIds: 400 naming them', async () => {
    assertProblem(await push({ content: 'hi' }), 'userId');
    assertProblem(await push({ content: 'hi', userIds: [] }), 'userIds');
    assertProblem(await push({ content: 'hi', userId: '' }), 'userId');
  });

  it('missing content and msg: 400 naming them', async () => {
    const problems = assertProblem(await push({ userId: 'u1' }), 'content');
    assert.ok(problems.some((p) => p.includes('msg')));
    assertProblem(await push({ userId: 'u1', msg: { msgType: 1 } }), 'msg.content');
  });

  it('wrong types: 400 naming each field', async () => {
    assertProblem(await push({ userId: 'u1', content: 'hi', timeout: '3000' }), 'timeout');
    assertProblem(await push({ userId: 'u1', content: 'hi', timeout: 0 }), 'timeout');
    assertProblem(await push({ userId: 'u1', content: 'hi', timeout: 1.5 }), 'timeout');
    assertProblem(await push({ userId: 'u1', content: 'hi', ackModel: 'SOMETIMES' }), 'ackModel');
    assertProblem(await push({ userIds: 'u1', content: 'hi' }), 'userIds');
    assertProblem(await push({ userIds: ['u1', 2], content: 'hi' }), 'userIds');
    assertProblem(await push({ userId: 42, content: 'hi' }), 'userId');
    assertProblem(await push({ userId: 'u1', content: 7 }), 'content');
    assertProblem(await push({ userId: 'u1', msg: 'not an object' }), 'msg');
  });

  it('every problem of a body is named at once', async () => {
    const problems = assertProblem(
      await push({ userId: 'u1', content: 'hi', timeout: '3000', ackModel: 'SOMETIMES' }),
      'timeout',
    );
    assert.ok(
      problems.some((p) => p.includes('ackModel')),
      problems.join('; '),
    );
  });

  it('a field set to null counts as left out', async () => {
    const reply = await push({
      userId: 'nobody',
      userIds: null,
      content: 'x',
      timeout: null,
      ackModel: null,
    });
    assert.equal(reply.status, 200, reply.text);
    assert.equal(reply.body.results[0].result, 'offline');
    assertProblem(await push({ userId: null, content: 'x' }), 'userId');
  });

  it('an unknown field: 400 naming it', async () => {
    assertProblem(await push({ userId: 'u1', content: 'hi', ackmodel: 'NO_ACK' }), 'ackmodel');
    assertProblem(
      await call(port, 'POST', '/api/broadcast', { json: { content: 'x', userId: 'u' } }),
      'userId',
    );
  });

  it('a body that is not JSON: 400', async () => {
    for (const raw of ['{"userId": "u1",', 'userId=u1&content=hi', '']) {
      const reply = await call(port, 'POST', '/api/push', { raw });
      assert.equal(reply.status, 400, `${JSON.stringify(raw)}: ${reply.text}`);
      assert.match(reply.body.error, /JSON/);
    }
  });

  it('a body that arrives in several pieces is read whole', async () => {
    const body = JSON.stringify({ userId: 'nobody', content: 'x'.repeat(300), ackModel: 'NO_ACK' });
    const pieces = [body.slice(0, 7), body.slice(7, 200), body.slice(200)];
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      text += d;
    });
    socket.write(
      `POST /api/push HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`,
    );
    for (const piece of pieces) {
      await new Promise((r) => setTimeout(r, 30));
      socket.write(piece);
    }
    await new Promise((r) => socket.once('close', r));
    assert.match(text, /^HTTP\/1\.1 200 /, text);
    const reply = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as Json;
    assert.equal(reply.results[0].result, 'offline', text);
  });

  it('a JSON body that is not an object: 400', async () => {
    for (const raw of ['[]', '[{"userId":"u1","content":"hi"}]', '"hi"', '42', 'null', 'true']) {
      const reply = await call(port, 'POST', '/api/push', { raw });
      assertProblem(reply, 'body must be a JSON object');
    }
  });

  it('a body over api.maxBodyBytes: 413', async () => {
    const reply = await push({ userId: 'u1', content: 'x'.repeat(4096) });
    assert.equal(reply.status, 413, reply.text);
    assert.match(reply.body.error, /maxBodyBytes/);
    // The server still answers afterwards.
    assert.equal((await call(port, 'GET', '/health')).status, 200);
  });

  it('a body over api.maxBodyBytes keeps the keep-alive connection serving the next request', async () => {
    // Regression: the body reader used to abandon the request at the limit, so the rest of a
    // large body stalled the connection and the client's next request on it hung until reset.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const big = JSON.stringify({ userId: 'u1', content: 'x'.repeat(512 * 1024) });
      const first = await viaAgent(agent, port, '/api/push', big);
      assert.equal(first.status, 413, first.text);
      for (const body of [big, JSON.stringify({ userId: 'u1' })]) {
        const next = await viaAgent(agent, port, '/api/push', body);
        assert.equal(next.reusedSocket, true, 'the same connection');
        assert.equal(next.status, body === big ? 413 : 400, next.text);
      }
    } finally {
      agent.destroy();
    }
  });

  it('broadcast: missing content, wrong types: 400', async () => {
    assertProblem(await call(port, 'POST', '/api/broadcast', { json: { wait: true } }), 'content');
    assertProblem(
      await call(port, 'POST', '/api/broadcast', { json: { content: 'x', tags: 'vip' } }),
      'tags',
    );
    assertProblem(
      await call(port, 'POST', '/api/broadcast', { json: { content: 'x', wait: 'yes' } }),
      'wait',
    );
    assertProblem(
      await call(port, 'POST', '/api/broadcast', { json: { content: 'x', broadcastRate: -1 } }),
      'broadcastRate',
    );
  });

  it('unknown routes and methods: 404', async () => {
    for (const [method, path] of [
      ['GET', '/'],
      ['GET', '/nope'],
      ['GET', '/api/nope'],
      ['POST', '/api/users/u1'],
      ['GET', '/api/push'],
      ['DELETE', '/api/users/u1'],
      ['GET', '/api/users/a/b'],
      ['POST', '/health'],
    ] as const) {
      const reply = await call(port, method, path);
      assert.equal(reply.status, 404, `${method} ${path}: ${reply.text}`);
      assert.equal(reply.body.error, 'not found');
    }
  });

  it('a malformed percent-encoding in a path: 400, not 500', async () => {
    for (const path of ['/api/users/%E0%A4%A', '/api/broadcast/%zz']) {
      const reply = await call(port, 'GET', path);
      assert.equal(reply.status, 400, `${path}: ${reply.text}`);
    }
  });
});

describe('HTTP API: what the log says', () => {
  it('a client that aborts its body mid-way is noted at debug, not logged as an error', async () => {
    // Regression: every aborted body logged an ERROR with a stack, so any client could grow the log.
    const lines: string[] = [];
    const dataDir = mkdtempSync(join(tmpdir(), 'mpush-test-'));
    const keys = mpushDefaultKeys();
    const config = loadConfig({
      overrides: {
        node: { dataDir },
        server: { host: '127.0.0.1', port: 0 },
        gateway: { host: '127.0.0.1', port: 0 },
        http: { host: '127.0.0.1', port: 0 },
        admin: { port: 0 },
        security: { privateKey: keys.privateKey, publicKey: keys.publicKey },
      },
    });
    const node = new MpushNode({ config, log: createLogger('debug', 'mpush', (l) => lines.push(l)) });
    const { httpPort } = await node.start();
    try {
      for (let i = 0; i < 3; i++) {
        const socket = connect(httpPort, '127.0.0.1');
        await new Promise<void>((r) => socket.once('connect', () => r()));
        socket.write('POST /api/push HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n{"userId":');
        socket.destroy();
      }
      const entries = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      await waitFor(
        () => entries().filter((e) => e.level === 'debug' && /aborted/.test(String(e.msg))).length === 3,
        3000,
        'the three aborts noted at debug',
      );
      assert.deepEqual(
        entries().filter((e) => e.level === 'error' || e.level === 'warn'),
        [],
        'no error or warning for a client that left',
      );
      assert.deepEqual(
        lines.filter((l) => /\bat .*\.js:\d+|stack/.test(l)),
        [],
        'no stack trace for a client that left',
      );
      // Lines of the HTTP port's component.
      assert.ok(entries().some((e) => e.component === 'api' && /aborted/.test(String(e.msg))));
      // The port still answers.
      assert.equal((await call(httpPort, 'GET', '/health')).status, 200);
    } finally {
      await node.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('HTTP API: auth', () => {
  it('with api.secret: no or a wrong bearer → 401, the right one → 200', async () => {
    const t = await startTestNode({ api: { secret: 's3' } });
    try {
      const port = t.node.addresses.httpPort;
      assert.equal(t.node.http.apiSecret, 's3');
      assert.equal(t.node.http.apiSecretGenerated, false);
      const body = { userId: 'nobody', content: 'x' };
      const none = await call(port, 'POST', '/api/push', { json: body });
      assert.equal(none.status, 401, none.text);
      assert.match(none.body.error, /secret/);
      for (const auth of ['Bearer s4', 'Bearer s3x', 'Bearer ', 's3', 'Basic czM=', 'bearer s3']) {
        const wrong = await call(port, 'POST', '/api/push', { json: body, auth });
        assert.equal(wrong.status, 401, `${auth}: ${wrong.text}`);
      }
      const ok = await call(port, 'POST', '/api/push', { json: body, auth: 'Bearer s3' });
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.body.results[0].result, 'offline');
      for (const path of ['/api/stats', '/api/users/nobody']) {
        assert.equal((await call(port, 'GET', path)).status, 401, path);
        assert.equal((await call(port, 'GET', path, { auth: 'Bearer s3' })).status, 200, path);
      }
      // Health and the public key stay open.
      assert.equal((await call(port, 'GET', '/health')).status, 200);
      assert.equal((await call(port, 'GET', '/public-key')).status, 200);
    } finally {
      await t.stop();
    }
  });

  it('http.host 0.0.0.0 without api.secret: a secret is generated and required', async () => {
    const t = await startTestNode({ http: { host: '0.0.0.0' } });
    try {
      assert.equal(t.config.http.host, '0.0.0.0');
      const port = t.node.addresses.httpPort;
      const { apiSecret, apiSecretGenerated } = t.node.http;
      assert.equal(apiSecretGenerated, true);
      assert.equal(typeof apiSecret, 'string');
      assert.ok(apiSecret!.length >= 16);
      const body = { userId: 'nobody', content: 'x' };
      assert.equal((await call(port, 'POST', '/api/push', { json: body })).status, 401);
      assert.equal((await call(port, 'GET', '/api/stats')).status, 401);
      assert.equal((await call(port, 'POST', '/api/push', { json: body, auth: 'Bearer wrong' })).status, 401);
      const ok = await call(port, 'POST', '/api/push', { json: body, auth: `Bearer ${apiSecret}` });
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.body.results[0].result, 'offline');
    } finally {
      await t.stop();
    }
  });

  it('two nodes on 0.0.0.0 generate different secrets', async () => {
    const a = await startTestNode({ http: { host: '0.0.0.0' } });
    const b = await startTestNode({ http: { host: '0.0.0.0' } });
    try {
      assert.notEqual(a.node.http.apiSecret, b.node.http.apiSecret);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('on loopback without api.secret: no auth needed', async () => {
    const t = await startTestNode();
    try {
      assert.equal(t.node.http.apiSecret, null);
      assert.equal(t.node.http.apiSecretGenerated, false);
      const port = t.node.addresses.httpPort;
      const reply = await call(port, 'POST', '/api/push', { json: { userId: 'nobody', content: 'x' } });
      assert.equal(reply.status, 200, reply.text);
      assert.equal((await call(port, 'GET', '/api/stats')).status, 200);
    } finally {
      await t.stop();
    }
  });
});

describe('HTTP API: broadcast', () => {
  let t: TestNode;
  let port: number;
  const devices: TestDevice[] = [];
  /** 10 bound devices: 3 tagged vip (one also beta), 2 beta only, 5 untagged. */
  /** Devices whose bind tags contain "vip", MPush's substring match: 'vipx' counts. */
  const VIP = 4;
  const TOTAL = 10;
  const specs: Array<[string, string | undefined]> = [];

  before(async () => {
    t = await startTestNode();
    port = t.node.addresses.httpPort;
    specs.push(
      ['bc-vip1', 'vip'],
      ['bc-vip2', 'vip,beta'],
      ['bc-vip3', 'gold, vip'],
      ['bc-beta1', 'beta'],
      ['bc-beta2', 'beta,vipx'],
    );
    for (let i = 1; i <= 5; i++) specs.push([`bc-plain${i}`, undefined]);
    for (const [userId, tags] of specs) {
      devices.push(await connectDevice(t.tcpPort, userId, tags ? { tags } : {}));
    }
    assert.equal(t.node.connections.router.boundConnections, TOTAL);
  });
  after(async () => {
    await closeAll(devices);
    await t.stop();
  });

  /** Devices that received a push with this content. */
  const receivedBy = (content: string) =>
    devices.filter((d) => d.pushes.some((p) => p.content.toString() === content)).map((d) => d.client);

  const broadcast = (json: Record<string, unknown>) => call(port, 'POST', '/api/broadcast', { json });

  it('wait:true to everyone: matched and sent equal the bound devices', async () => {
    const reply = await broadcast({ content: 'to-all', wait: true, taskId: 'all-1' });
    assert.equal(reply.status, 200, reply.text);
    const b = reply.body;
    assert.equal(b.taskId, 'all-1');
    assert.equal(b.result, 'success');
    assert.equal(b.matched, TOTAL);
    assert.equal(b.sent, TOTAL);
    assert.equal(b.failed, 0);
    assert.equal(b.nodes.length, 1);
    assert.equal(b.nodes[0].status, 'done');
    assert.equal(b.nodes[0].gateway, `127.0.0.1:${t.node.addresses.gatewayPort}`);
    await waitFor(() => receivedBy('to-all').length === TOTAL, 3000, 'every device to get the broadcast');
  });

  it('wait:true with AUTO_ACK: every device acks', async () => {
    const reply = await broadcast({ content: 'to-all-acked', wait: true, ackModel: 'AUTO_ACK' });
    assert.equal(reply.status, 200, reply.text);
    assert.equal(reply.body.sent, TOTAL);
    const taskId = reply.body.taskId as string;
    assert.match(taskId, /^bc-/);
    await waitFor(() => t.node.push.task(taskId)?.counts.acked === TOTAL, 3000, 'every ack');
    const status = await call(port, 'GET', `/api/broadcast/${taskId}`);
    assert.equal(status.body.acked, TOTAL);
  });

  it('by tags: any of the tags, matched as MPush does (substring of the bind tags)', async () => {
    const reply = await broadcast({ content: 'to-vip', tags: ['vip'], wait: true });
    assert.equal(reply.status, 200, reply.text);
    assert.equal(reply.body.matched, VIP);
    assert.equal(reply.body.sent, VIP);
    await waitFor(() => receivedBy('to-vip').length === VIP, 3000, 'vip devices');
    const both = await broadcast({ content: 'to-vip-or-beta', tags: ['vip', 'beta'], wait: true });
    assert.equal(both.body.matched, 5);
    const none = await broadcast({ content: 'to-nobody', tags: ['nope'], wait: true });
    assert.equal(none.status, 200, none.text);
    assert.equal(none.body.result, 'success');
    assert.equal(none.body.matched, 0);
    assert.equal(none.body.sent, 0);
  });

  it('by condition (MPush syntax)', async () => {
    const reply = await broadcast({
      content: 'to-cond-vip',
      condition: "tags&&tags.indexOf('vip')!=-1",
      wait: true,
    });
    assert.equal(reply.status, 200, reply.text);
    assert.equal(reply.body.matched, VIP);
    assert.equal(reply.body.sent, VIP);
    const one = await broadcast({ content: 'to-one', condition: "userId=='bc-plain3'", wait: true });
    assert.equal(one.body.matched, 1);
    await waitFor(() => receivedBy('to-one').length === 1, 3000, 'the one device');
    assert.equal(receivedBy('to-one')[0], devices[specs.findIndex(([u]) => u === 'bc-plain3')]!.client);
  });

  it('a forbidden or broken condition: 400 and nothing sent', async () => {
    for (const condition of ['constructor', 'process.exit()', 'this', "tags.constructor('x')", 'userId ==']) {
      const reply = await broadcast({ content: 'forbidden', condition, wait: true });
      assert.equal(reply.status, 400, `${condition}: ${reply.text}`);
      assert.ok(
        (reply.body.problems as string[]).some((p) => p.startsWith('condition')),
        `${condition}: ${reply.text}`,
      );
    }
    assert.equal(receivedBy('forbidden').length, 0);
  });

  it('without wait: 202 with a taskId; GET shows the counts until done', async () => {
    const reply = await broadcast({ content: 'async-all' });
    assert.equal(reply.status, 202, reply.text);
    const taskId = reply.body.taskId as string;
    assert.equal(typeof taskId, 'string');
    assert.ok(taskId.length > 0);
    const first = await call(port, 'GET', `/api/broadcast/${encodeURIComponent(taskId)}`);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.body.taskId, taskId);
    assert.equal(first.body.result, 'success');
    for (const k of ['matched', 'sent', 'acked', 'failed']) assert.equal(typeof first.body[k], 'number', k);
    assert.ok(first.body.matched <= TOTAL);
    const last = await until(
      () => call(port, 'GET', `/api/broadcast/${taskId}`),
      (r) => r.body.nodes[0].status === 'done',
      'the broadcast to finish',
    );
    assert.equal(last.body.nodes[0].status, 'done', last.text);
    assert.equal(last.body.matched, TOTAL);
    assert.equal(last.body.sent, TOTAL);
    await waitFor(() => receivedBy('async-all').length === TOTAL, 3000, 'every device');
  });

  it('a caller-chosen taskId is kept, and a taskId with odd characters round-trips', async () => {
    const taskId = 'campaign 7/α';
    const reply = await broadcast({ content: 'named', taskId, wait: true });
    assert.equal(reply.body.taskId, taskId);
    const status = await call(port, 'GET', `/api/broadcast/${encodeURIComponent(taskId)}`);
    assert.equal(status.status, 200, status.text);
    assert.equal(status.body.taskId, taskId);
    assert.equal(status.body.nodes[0].status, 'done');
    assert.equal(status.body.matched, TOTAL);
  });

  it('a slow broadcast (5/s over 10 devices) is cancelled by DELETE', async () => {
    const reply = await broadcast({ content: 'slow', broadcastRate: 5 });
    assert.equal(reply.status, 202, reply.text);
    const taskId = reply.body.taskId as string;
    const running = await call(port, 'GET', `/api/broadcast/${taskId}`);
    assert.equal(running.body.nodes[0].status, 'running', running.text);
    const cancelled = await call(port, 'DELETE', `/api/broadcast/${taskId}`);
    assert.equal(cancelled.status, 200, cancelled.text);
    assert.equal(cancelled.body.taskId, taskId);
    assert.equal(cancelled.body.nodes[0].status, 'cancelled');
    assert.ok(cancelled.body.matched < TOTAL, cancelled.text);
    const matched = cancelled.body.matched as number;
    // It stays cancelled, and nobody else gets it.
    const after = await call(port, 'GET', `/api/broadcast/${taskId}`);
    assert.equal(after.body.nodes[0].status, 'cancelled');
    assert.equal(after.body.matched, matched);
    await waitFor(
      () => receivedBy('slow').length === after.body.sent,
      3000,
      'the pushes sent before the cancel',
    );
    // Cancelling again is harmless.
    const again = await call(port, 'DELETE', `/api/broadcast/${taskId}`);
    assert.equal(again.status, 200);
    assert.equal(again.body.nodes[0].status, 'cancelled');
    assert.equal(again.body.matched, matched);
  });

  it('GET or DELETE of an unknown taskId: result failure, reason unknown task', async () => {
    for (const method of ['GET', 'DELETE']) {
      const reply = await call(port, method, '/api/broadcast/no-such-task');
      assert.equal(reply.status, 200, reply.text);
      assert.equal(reply.body.taskId, 'no-such-task');
      assert.equal(reply.body.result, 'failure');
      assert.match(reply.body.reason, /unknown task/);
      assert.equal(reply.body.matched, 0);
      assert.equal(reply.body.nodes[0].status, 'error');
    }
  });
});

describe('HTTP API: users, stats, health, public key', () => {
  let t: TestNode;
  let port: number;
  const devices: TestDevice[] = [];

  before(async () => {
    t = await startTestNode();
    port = t.node.addresses.httpPort;
    devices.push(await connectDevice(t.tcpPort, 'st-a', { osName: 'android', deviceId: 'dev-a-phone' }));
    devices.push(await connectDevice(t.tcpPort, 'st-a', { osName: 'Windows', deviceId: 'dev-a-pc' }));
    devices.push(await connectDevice(t.tcpPort, 'st-b', { osName: 'android', deviceId: 'dev-b' }));
  });
  after(async () => {
    await closeAll(devices);
    await t.stop();
  });

  it('GET /api/users/:userId: online with its devices, or offline', async () => {
    const reply = await call(port, 'GET', '/api/users/st-a');
    assert.equal(reply.status, 200, reply.text);
    assert.equal(reply.body.userId, 'st-a');
    assert.equal(reply.body.online, true);
    const gateway = `127.0.0.1:${t.node.addresses.gatewayPort}`;
    assert.deepEqual(reply.body.devices.map((d: Json) => [d.clientType, d.deviceId, d.gateway]).sort(), [
      [ClientType.MOBILE, 'dev-a-phone', gateway],
      [ClientType.PC, 'dev-a-pc', gateway],
    ]);
    for (const d of reply.body.devices) assert.equal(typeof d.clientTypeName, 'string');

    const b = await call(port, 'GET', '/api/users/st-b');
    assert.equal(b.body.online, true);
    assert.equal(b.body.devices.length, 1);

    const none = await call(port, 'GET', '/api/users/st-nobody');
    assert.equal(none.status, 200, none.text);
    assert.deepEqual(none.body, { userId: 'st-nobody', online: false, devices: [] });
  });

  it('GET /api/users/:userId decodes the user id', async () => {
    const d = await connectDevice(t.tcpPort, 'user with space/é', { deviceId: 'dev-enc' });
    try {
      const reply = await call(port, 'GET', `/api/users/${encodeURIComponent('user with space/é')}`);
      assert.equal(reply.status, 200, reply.text);
      assert.equal(reply.body.userId, 'user with space/é');
      assert.equal(reply.body.online, true);
      assert.equal(reply.body.devices[0].deviceId, 'dev-enc');
    } finally {
      await d.client.close();
    }
    await waitFor(() => t.node.connections.connections.size === 3, 3000, 'the extra device to go');
  });

  it('GET /api/stats and /health: counts consistent with the devices connected', async () => {
    const stats = await call(port, 'GET', '/api/stats');
    assert.equal(stats.status, 200, stats.text);
    assert.equal(stats.body.connections, 3);
    assert.equal(stats.body.onlineUsers, 2);
    assert.equal(stats.body.boundConnections, 3);
    assert.equal(typeof stats.body.pendingAcks, 'number');
    assert.equal(stats.body.node, t.node.id);
    assert.equal(typeof stats.body.gateway, 'object');

    const health = await call(port, 'GET', '/health');
    assert.equal(health.status, 200, health.text);
    assert.equal(health.body.status, 'ok');
    assert.equal(health.body.node, t.node.id);
    assert.equal(health.body.connections, 3);
    assert.equal(health.body.onlineUsers, 2);
  });

  it('GET /api/stats: the node, its counts, the connection, push, broadcast, gateway, inbox, webhook and HTTP proxy counters, in that order', async () => {
    const stats = await call(port, 'GET', '/api/stats');
    assert.equal(stats.status, 200, stats.text);
    assert.deepEqual(Object.keys(stats.body), [
      'node',
      'connections',
      'onlineUsers',
      'boundConnections',
      'pendingAcks',
      'connection',
      'push',
      'broadcast',
      'gateway',
      'gatewayClients',
      'inbox',
      'webhooks',
      'httpProxy',
    ]);
    assert.deepEqual(stats.body.push, t.node.push.meter.stats);
    assert.deepEqual(stats.body.broadcast, t.node.push.broadcastTotals());
    assert.equal(stats.body.gatewayClients, t.node.gateway.clients);
    assert.deepEqual(stats.body.connection, JSON.parse(JSON.stringify(t.node.connections.stats)));
    assert.deepEqual(stats.body.gateway, t.node.gateway.stats);
    assert.deepEqual(stats.body.inbox, t.node.inbox.stats);
    assert.equal(stats.body.webhooks, null, 'no webhooks.urls');
    assert.equal(stats.body.httpProxy, null, 'httpProxy.enabled is off');
  });

  it('a user whose device goes away is offline again, and the stats follow', async () => {
    const d = await connectDevice(t.tcpPort, 'st-c');
    assert.equal((await call(port, 'GET', '/api/users/st-c')).body.online, true);
    assert.equal((await call(port, 'GET', '/api/stats')).body.onlineUsers, 3);
    await d.client.close();
    await waitFor(() => t.node.connections.router.onlineUsers === 2, 3000, 'the user to go offline');
    const user = await until(
      () => call(port, 'GET', '/api/users/st-c'),
      (r) => r.body.online === false,
      'the route to go',
    );
    assert.equal(user.body.online, false, user.text);
    const stats = await call(port, 'GET', '/api/stats');
    assert.equal(stats.body.onlineUsers, 2);
    assert.equal(stats.body.connections, 3);
  });

  it('GET /public-key: the base64 key MPush SDKs are configured with', async () => {
    const reply = await call(port, 'GET', '/public-key');
    assert.equal(reply.status, 200);
    assert.equal(reply.text.trim(), t.node.keys.publicKeyBase64);
    assert.match(reply.text.trim(), /^[A-Za-z0-9+/]+=*$/);
  });
});
