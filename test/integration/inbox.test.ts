import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { type InboxStore, MemoryInboxStore } from '../../src/cluster/inbox-store.js';
import { RedisInboxStore } from '../../src/cluster/redis-inbox-store.js';
import { closeAll, connectDevice, type TestDevice } from '../helpers/devices.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

// biome-ignore lint/suspicious/noExplicitAny: JSON bodies are checked field by field
type Json = any;

async function call(
  port: number,
  method: string,
  path: string,
  json?: unknown,
): Promise<{ status: number; body: Json }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    ...(json !== undefined
      ? { body: JSON.stringify(json), headers: { 'content-type': 'application/json' } }
      : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

const push = (n: TestNode, body: unknown) => call(n.httpPort, 'POST', '/api/push', body);
const receipt = (n: TestNode, id: string) =>
  call(n.httpPort, 'GET', `/api/messages/${encodeURIComponent(id)}`);
/** Polls the receipt until `ok` holds of it (a replay's ack is recorded after the device acks). */
async function receiptUntil(n: TestNode, id: string, ok: (r: Json) => boolean, what: string): Promise<Json> {
  const end = Date.now() + 3000;
  for (;;) {
    const r = await receipt(n, id);
    if (r.status === 200 && ok(r.body)) return r.body;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(r.body)}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}
const texts = (d: TestDevice) => d.pushes.map((p) => JSON.parse(p.content.toString('utf8')) as Json);

describe('durable inbox over the HTTP API (one node, memory stores)', () => {
  let n: TestNode;
  const devices: TestDevice[] = [];
  const device = async (userId: string, osName = 'android') => {
    const d = await connectDevice(n.tcpPort, userId, { osName });
    devices.push(d);
    return d;
  };
  before(async () => {
    n = await startTestNode({ inbox: { maxMessagesPerUser: 3, maxMessageBytes: 256 } });
  });
  after(async () => {
    await closeAll(devices);
    await n.stop();
  });

  it('a live msg push carries its messageId to the device in the PushMsg JSON and in the result', async () => {
    const d = await device('live1');
    const r = await push(n, { userId: 'live1', msg: { content: 'hi', msgType: 2 } });
    assert.equal(r.status, 200);
    const [res] = r.body.results;
    assert.equal(res.result, 'success');
    assert.match(res.messageId, /^[0-9a-f-]{36}$/, 'generated');
    assert.equal(res.stored, false);
    await waitFor(() => d.pushes.length === 1, 3000, 'the push');
    assert.deepEqual(texts(d)[0], { content: 'hi', msgType: 2, msgId: res.messageId });
    const own = await push(n, { userId: 'live1', msgId: 'mine-1', msg: { content: 'x' } });
    assert.equal(own.body.results[0].messageId, 'mine-1', "the caller's msgId");
    await waitFor(() => d.pushes.length === 2, 3000, 'the second push');
    assert.equal(texts(d)[1].msgId, 'mine-1');
    assert.equal((await receipt(n, res.messageId)).status, 404, 'no receipt without store');
  });

  it('offline user → stored: true → the device binds later, gets it with its id → receipt acked', async () => {
    const r = await push(n, {
      userId: 'off1',
      msgId: 'off1-a',
      msg: { content: 'later' },
      store: true,
      ackModel: 'AUTO_ACK',
    });
    assert.deepEqual(
      r.body.results.map((x: Json) => [x.result, x.messageId, x.stored]),
      [['offline', 'off1-a', true]],
    );
    const stored = (await receipt(n, 'off1-a')).body;
    assert.equal(stored.users[0].userId, 'off1');
    assert.equal(stored.users[0].inbox, 'stored');
    assert.deepEqual(stored.users[0].devices, []);
    const d = await device('off1');
    await waitFor(() => d.pushes.length === 1, 3000, 'the stored message');
    assert.deepEqual(texts(d)[0], { content: 'later', msgId: 'off1-a' });
    assert.equal(d.pushes[0]!.ackModel, 'auto', 'with the ack model it was pushed with');
    const acked = await receiptUntil(n, 'off1-a', (r) => r.users[0].devices[0]?.state === 'acked', 'acked');
    const dev = acked.users[0].devices[0];
    assert.equal(dev.clientTypeName, 'mobile');
    assert.equal(typeof dev.sentAt, 'number');
    assert.equal(typeof dev.ackedAt, 'number');
  });

  it('a phone and a PC of the user each get it once', async () => {
    await push(n, { userId: 'two', msgId: 'two-a', content: 'raw', store: true });
    const phone = await device('two', 'android');
    await waitFor(() => phone.pushes.length === 1, 3000, 'phone replay');
    await phone.client.close();
    const phone2 = await device('two', 'android');
    const pc = await device('two', 'windows');
    await waitFor(() => pc.pushes.length === 1, 3000, 'pc replay');
    assert.equal(pc.pushes[0]!.content.toString(), 'raw');
    // A live push after the binds marks the end: the second phone got nothing stored before it.
    await push(n, { userId: 'two', content: 'marker' });
    await waitFor(() => phone2.pushes.length === 1 && pc.pushes.length === 2, 3000, 'the marker');
    assert.equal(phone2.pushes[0]!.content.toString(), 'marker', 'the phone did not get it twice');
    const r = (await receipt(n, 'two-a')).body;
    assert.deepEqual(
      r.users[0].devices.map((x: Json) => [x.clientTypeName, x.state]),
      [
        ['mobile', 'sent'],
        ['pc', 'sent'],
      ],
    );
  });

  it('TTL expiry: expired, never delivered', async () => {
    await push(n, { userId: 'ttl', msgId: 'ttl-a', content: 'stale', store: true, ttl: 1 });
    await new Promise((r) => setTimeout(r, 1100));
    const d = await device('ttl');
    await push(n, { userId: 'ttl', content: 'marker' });
    await waitFor(() => d.pushes.length >= 1, 3000, 'the marker');
    assert.deepEqual(
      d.pushes.map((p) => p.content.toString()),
      ['marker'],
    );
    await waitFor(() => n.node.inbox.stats.expired === 1, 3000, 'expired counted');
    assert.equal((await receipt(n, 'ttl-a')).body.users[0].inbox, 'expired');
  });

  it('the per-user cap drops the oldest (counted); the rest arrive in order', async () => {
    const before = n.node.inbox.stats.dropped;
    for (const id of ['c1', 'c2', 'c3', 'c4'])
      await push(n, { userId: 'cap', msgId: id, msg: { content: id }, store: true });
    assert.equal(n.node.inbox.stats.dropped - before, 1);
    const d = await device('cap');
    await waitFor(() => d.pushes.length === 3, 3000, 'three replays');
    assert.deepEqual(
      texts(d).map((m) => m.msgId),
      ['c2', 'c3', 'c4'],
    );
    await receiptUntil(n, 'c1', (r) => r.users[0].inbox === 'dropped', 'c1 dropped in its receipt');
  });

  it('inbox.maxMessageBytes: a bigger message is not kept, and the result says so', async () => {
    const r = await push(n, { userId: 'big', content: 'x'.repeat(300), store: true });
    assert.equal(r.body.results[0].result, 'offline');
    assert.equal(r.body.results[0].stored, false);
    assert.match(r.body.results[0].storeError, /inbox.maxMessageBytes/);
  });

  it('BIZ_ACK device that never acks → timeout with stored: true; delivered again after it reconnects', async () => {
    const silent = await device('biz');
    const r = await push(n, {
      userId: 'biz',
      msgId: 'biz-a',
      content: 'ack me',
      ackModel: 'BIZ_ACK',
      timeout: 800,
      store: true,
    });
    assert.deepEqual([r.body.results[0].result, r.body.results[0].stored], ['timeout', true]);
    assert.equal(silent.pushes.length, 1);
    assert.equal((await receipt(n, 'biz-a')).body.users[0].devices[0].state, 'stored');
    await silent.client.close();
    const d = await device('biz');
    await waitFor(() => d.pushes.length === 1, 3000, 'the redelivery');
    assert.equal(d.pushes[0]!.content.toString(), 'ack me');
    assert.equal(d.pushes[0]!.ackModel, 'biz');
    d.client.ack(d.pushes[0]!.sessionId);
    await receiptUntil(n, 'biz-a', (r) => r.users[0].devices[0].state === 'acked', 'acked');
    await d.client.close();
    const d2 = await device('biz');
    await push(n, { userId: 'biz', content: 'marker' });
    await waitFor(() => d2.pushes.length === 1, 3000, 'marker');
    assert.equal(d2.pushes[0]!.content.toString(), 'marker', 'acked: not delivered a third time');
  });

  it('bad inbox fields get a 400 naming the field', async () => {
    const bad = await push(n, { userId: 'u', content: 'x', store: 'yes' });
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(bad.body), /store must be true or false/);
    const ttl = await push(n, { userId: 'u', content: 'x', ttl: 5 });
    assert.match(JSON.stringify(ttl.body), /ttl needs store: true/);
    const clash = await push(n, { userId: 'u', msg: { content: 'x', msgId: 'a' }, msgId: 'b' });
    assert.match(JSON.stringify(clash.body), /msgId and msg.msgId differ/);
  });
});

describe('a store that does not answer never holds the push path', () => {
  let hung: Server;
  const held: Socket[] = [];
  let redis: Redis;
  let n: TestNode;
  const devices: TestDevice[] = [];
  before(async () => {
    // A Redis that accepts connections and never answers: every store call hangs.
    hung = createServer((s) => {
      held.push(s);
    });
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', () => r()));
    const port = (hung.address() as { port: number }).port;
    redis = new Redis({ port, host: '127.0.0.1', lazyConnect: false, enableOfflineQueue: true });
    redis.on('error', () => {});
    n = await startTestNode(
      { inbox: { storeTimeoutMs: 300 } },
      { inbox: new RedisInboxStore(redis, 'mpt:hung:') },
    );
  });
  after(async () => {
    await closeAll(devices);
    await n.stop().catch(() => {});
    redis.disconnect();
    for (const s of held) s.destroy();
    hung.close();
  });

  it('offline: the live result stays, stored: false with the store failure', async () => {
    const r = await push(n, { userId: 'nobody', content: 'x', store: true });
    assert.deepEqual([r.body.results[0].result, r.body.results[0].stored], ['offline', false]);
    assert.match(r.body.results[0].storeError, /inbox store timed out/);
    assert.ok(n.node.inbox.stats.storeFailures >= 1);
  });

  it('online: the device gets it live and the result is success, with the store failure named', async () => {
    const d = await connectDevice(n.tcpPort, 'here');
    devices.push(d);
    const r = await push(n, { userId: 'here', content: 'live', store: true });
    assert.equal(r.body.results[0].result, 'success');
    assert.match(r.body.results[0].storeError, /timed out/);
    assert.equal(d.pushes[0]!.content.toString(), 'live');
  });
});

describe('a receipt Redis refuses while the message is kept', () => {
  let redis: TestRedis;
  let n: TestNode;
  before(async () => {
    redis = await startTestRedis();
    const store = new RedisInboxStore(redis.client, redis.prefix);
    n = await startTestNode({}, { inbox: store });
    // The receipt's key holds a string: HSET on it fails (WRONGTYPE), the inbox write does not.
    await redis.client.set(store.receiptKey('refused'), 'not a hash');
  });
  after(async () => {
    await n.stop();
    await redis.close();
  });

  it('the result says the store failed and why, as when the inbox write fails', async () => {
    const r = await push(n, { userId: 'u', content: 'x', store: true, msgId: 'refused' });
    assert.deepEqual([r.body.results[0].result, r.body.results[0].stored], ['offline', false]);
    assert.match(r.body.results[0].storeError, /WRONGTYPE/);
  });
});

describe('inbox.maxConcurrentReplays: a burst of binds is replayed a few at a time', () => {
  let n: TestNode;
  const devices: TestDevice[] = [];
  /**
   * The memory store, its reads answered 50 ms late (a slow store), counting how many overlap;
   * the reads for users in `failOnce` fail the first time (a store fault).
   */
  const memory = new MemoryInboxStore();
  const reads = { now: 0, most: 0 };
  const failOnce = new Set(['b2']);
  const slow: InboxStore = Object.assign(Object.create(memory) as InboxStore, {
    async pending(...args: Parameters<InboxStore['pending']>) {
      reads.most = Math.max(reads.most, ++reads.now);
      await new Promise((r) => setTimeout(r, 50));
      reads.now--;
      if (failOnce.delete(args[0])) throw new Error('store fault');
      return memory.pending(...args);
    },
  });
  before(async () => {
    n = await startTestNode({ inbox: { maxConcurrentReplays: 2 } }, { inbox: slow });
  });
  after(async () => {
    await closeAll(devices);
    await n.stop();
  });

  it('every device gets its messages, with at most two reads at once; a failed read is tried again', async () => {
    const users = ['b0', 'b1', 'b2', 'b3', 'b4', 'b5'];
    for (const u of users) {
      const r = await push(n, { userId: u, msgId: `${u}-m`, msg: { content: u }, store: true });
      assert.equal(r.body.results[0].stored, true);
    }
    devices.push(...(await Promise.all(users.map((u) => connectDevice(n.tcpPort, u)))));
    await waitFor(() => devices.every((d) => d.pushes.length === 1), 5000, 'every replay');
    assert.deepEqual(
      devices.map((d) => texts(d)[0].msgId),
      users.map((u) => `${u}-m`),
    );
    assert.equal(reads.most, 2);
    assert.equal(n.node.inbox.stats.storeFailures, 1, "b2's first read");
  });
});
