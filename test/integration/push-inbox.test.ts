import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  type MessageReceipt,
  MessageStatusError,
  PushSender,
  type PushSenderOptions,
} from '../../src/client/push/index.js';
import { type InboxEntry, MemoryInboxStore, type StoreOutcome } from '../../src/cluster/inbox-store.js';
import { closeAll, connectDevice, type TestDevice } from '../helpers/devices.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait.js';

/** The real memory store, counting how often a message is handed to it. */
class CountingInboxStore extends MemoryInboxStore {
  readonly stores = new Map<string, number>();
  override store(userId: string, entry: InboxEntry, maxMessages: number): Promise<StoreOutcome> {
    this.stores.set(entry.messageId, (this.stores.get(entry.messageId) ?? 0) + 1);
    return super.store(userId, entry, maxMessages);
  }
}

/** Polls the receipt until `ok` holds (a device's ack is recorded just after it acks). */
async function statusUntil(
  sender: PushSender,
  id: string,
  ok: (r: MessageReceipt) => boolean,
  what: string,
): Promise<MessageReceipt> {
  const end = Date.now() + 3000;
  for (;;) {
    const r = await sender.status(id);
    if (ok(r)) return r;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(r)}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

async function rejectsWith(p: Promise<unknown>, kind: string, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof MessageStatusError, String(err));
    assert.equal(err.kind, kind);
    assert.match(err.message, message);
    return true;
  });
}

describe('PushSender and the durable inbox (one node, real sockets)', () => {
  let n: TestNode;
  let inbox: CountingInboxStore;
  let sender: PushSender;
  const devices: TestDevice[] = [];
  const device = async (userId: string, osName = 'android') => {
    const d = await connectDevice(n.tcpPort, userId, { osName });
    devices.push(d);
    return d;
  };
  const options = (): PushSenderOptions => ({
    gateways: [{ host: '127.0.0.1', port: n.node.addresses.gatewayPort }],
    routeCacheMs: 0,
    logger: { error() {}, warn() {} },
  });

  before(async () => {
    inbox = new CountingInboxStore();
    n = await startTestNode({}, { inbox });
    sender = PushSender.create(options());
    await sender.start();
  });
  after(async () => {
    await sender.stop();
    await closeAll(devices);
    await n.stop();
  });

  it('store to a user with no route: offline, stored; the device binds, gets it with its msgId; status acked', async () => {
    const [r, ...more] = await sender.send({
      userId: 'sdk-off',
      msg: { content: 'later', msgType: 1 },
      msgId: 'sdk-off-1',
      store: true,
      ackModel: 'AUTO_ACK',
    });
    assert.equal(more.length, 0, 'one result for the user');
    assert.deepEqual(
      [r!.result, r!.clientType, r!.messageId, r!.stored, r!.storeError],
      ['offline', -1, 'sdk-off-1', true, undefined],
    );
    const stored = await sender.status('sdk-off-1');
    assert.equal(stored.messageId, 'sdk-off-1');
    assert.equal(stored.users[0]!.userId, 'sdk-off');
    assert.equal(stored.users[0]!.inbox, 'stored');
    const d = await device('sdk-off');
    await waitFor(() => d.pushes.length === 1, 3000, 'the stored message');
    assert.deepEqual(JSON.parse(d.pushes[0]!.content.toString()), {
      content: 'later',
      msgType: 1,
      msgId: 'sdk-off-1',
    });
    assert.equal(d.pushes[0]!.ackModel, 'auto');
    const acked = await statusUntil(
      sender,
      'sdk-off-1',
      (x) => x.users[0]!.devices[0]?.state === 'acked',
      'acked',
    );
    assert.equal(acked.users[0]!.devices[0]!.clientTypeName, 'mobile');
    assert.equal(typeof acked.users[0]!.devices[0]!.ackedAt, 'number');
    assert.equal(inbox.stores.get('sdk-off-1'), 1, 'stored once');
  });

  it('a msg.msgId is the message id', async () => {
    const [r] = await sender.send({ userId: 'sdk-off2', msg: { content: 'x', msgId: 'own-2' }, store: true });
    assert.deepEqual([r!.messageId, r!.stored], ['own-2', true]);
    const d = await device('sdk-off2');
    await waitFor(() => d.pushes.length === 1, 3000, 'the stored message');
    assert.equal(JSON.parse(d.pushes[0]!.content.toString()).msgId, 'own-2');
  });

  it('a BIZ_ACK device that never acks: timeout with stored: true', async () => {
    const silent = await device('sdk-biz');
    const [r] = await sender.send({
      userId: 'sdk-biz',
      content: 'ack me',
      ackModel: 'BIZ_ACK',
      timeout: 900,
      store: true,
      msgId: 'sdk-biz-1',
    });
    assert.deepEqual([r!.result, r!.messageId, r!.stored], ['timeout', 'sdk-biz-1', true]);
    assert.equal(silent.pushes.length, 1);
    const s = await sender.status('sdk-biz-1');
    assert.equal(s.users[0]!.devices[0]!.state, 'stored');
  });

  it('status of an unknown message rejects, naming it', async () => {
    await rejectsWith(sender.status('never-pushed'), 'unknown', /unknown message "never-pushed"/);
    await assert.rejects(sender.status(''), /messageId must be a string of 1 to 128/);
  });

  it('a push without store still gets a messageId, one for every user and device type of the call', async () => {
    const phone = await device('sdk-live', 'android');
    await device('sdk-live', 'windows');
    const results = await sender.send({ userIds: ['sdk-live', 'sdk-nobody'], msg: { content: 'now' } });
    assert.deepEqual(
      results.map((x) => [x.userId, x.result, x.stored]),
      [
        ['sdk-live', 'success', false],
        ['sdk-live', 'success', false],
        ['sdk-nobody', 'offline', false],
      ],
    );
    const id = results[0]!.messageId;
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.ok(results.every((x) => x.messageId === id));
    assert.ok(results.every((x) => x.storeError === undefined));
    await waitFor(() => phone.pushes.length === 1, 3000, 'the live push');
    assert.equal(JSON.parse(phone.pushes[0]!.content.toString()).msgId, id);
    assert.equal(inbox.stores.get(id), undefined, 'nothing stored');
    await rejectsWith(sender.status(id), 'unknown', /unknown message/);
    const [again] = await sender.send({ userId: 'sdk-nobody', content: 'x' });
    assert.notEqual(again!.messageId, id, 'a new id per call');
  });

  it('ttl rides with store: a stored message past its ttl is never delivered', async () => {
    const [r] = await sender.send({
      userId: 'sdk-ttl',
      content: 'stale',
      store: true,
      ttl: 1,
      msgId: 'ttl-1',
    });
    assert.equal(r!.stored, true);
    await new Promise((res) => setTimeout(res, 1100));
    const d = await device('sdk-ttl');
    await sender.send({ userId: 'sdk-ttl', content: 'marker' });
    await waitFor(() => d.pushes.length >= 1, 3000, 'the marker');
    assert.deepEqual(
      d.pushes.map((p) => p.content.toString()),
      ['marker'],
    );
  });

  it('bad inbox fields fail the call with a clear error', async () => {
    await assert.rejects(sender.send({ userId: 'u', content: 'x', ttl: 5 }), /ttl needs store: true/);
    await assert.rejects(
      sender.send({ userId: 'u', content: 'x', store: true, ttl: 0 }),
      /ttl must be a positive integer/,
    );
    await assert.rejects(
      sender.send({ userId: 'u', msg: { content: 'x', msgId: 'a' }, msgId: 'b' }),
      /msgId and msg.msgId differ/,
    );
    await assert.rejects(sender.send({ userId: 'u', content: 'x', msgId: 'm'.repeat(129) }), /msgId must be/);
  });

  it('the HTTP API stores exactly once: one store, one receipt, the device gets it once', async () => {
    const res = await fetch(`http://127.0.0.1:${n.httpPort}/api/push`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'api-once', msgId: 'api-once-1', content: 'one', store: true }),
    });
    const body = (await res.json()) as { results: Array<Record<string, unknown>> };
    assert.deepEqual(
      body.results.map((x) => [x.result, x.messageId, x.stored]),
      [['offline', 'api-once-1', true]],
    );
    assert.equal(inbox.stores.get('api-once-1'), 1, 'handed to the store once');
    const receipt = await sender.status('api-once-1');
    assert.equal(receipt.users.length, 1);
    const d = await device('api-once');
    await waitFor(() => d.pushes.length === 1, 3000, 'the stored message');
    await sender.send({ userId: 'api-once', content: 'marker' });
    await waitFor(() => d.pushes.length === 2, 3000, 'the marker');
    assert.deepEqual(
      d.pushes.map((p) => p.content.toString()),
      ['one', 'marker'],
    );
  });
});

describe('a store push that cannot reach a node says it was not stored', () => {
  let n: TestNode;
  before(async () => {
    n = await startTestNode();
  });
  after(async () => {
    await n.stop();
  });

  it('route lookup failed, gateway down, or gateway silent: stored false, with the reason', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const deadPort = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const silent = createServer((s) => s.on('error', () => {}));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const silentPort = (silent.address() as { port: number }).port;
    const routes: Record<string, number> = { dead: deadPort, mute: silentPort };
    const sender = PushSender.create({
      gateways: [{ host: '127.0.0.1', port: n.node.addresses.gatewayPort }],
      routeCacheMs: 0,
      logger: { error() {}, warn() {} },
      routeSource: {
        lookup: async (ids) => {
          if (ids.includes('broken')) throw new Error('route store down');
          return new Map(
            ids.map((u) => [
              u,
              routes[u] ? [{ clientType: 1, host: '127.0.0.1', port: routes[u]!, connId: 'x:1' }] : [],
            ]),
          );
        },
      },
    });
    try {
      const [broken] = await sender.send({ userId: 'broken', content: 'x', store: true });
      assert.deepEqual([broken!.result, broken!.stored], ['failure', false]);
      assert.match(broken!.storeError!, /not stored: route lookup: route store down/);
      const [dead] = await sender.send({ userId: 'dead', content: 'x', store: true });
      assert.deepEqual([dead!.result, dead!.stored], ['failure', false]);
      assert.match(dead!.storeError!, /reached no gateway/);
      const [mute] = await sender.send({ userId: 'mute', content: 'x', store: true, timeout: 300 });
      assert.deepEqual([mute!.result, mute!.stored], ['timeout', false]);
      assert.match(mute!.storeError!, /whether it was stored is unknown/);
      const [plain] = await sender.send({ userId: 'mute', content: 'x', timeout: 300 });
      assert.equal(plain!.storeError, undefined, 'no store asked: nothing to say of it');
    } finally {
      await sender.stop();
      silent.close();
    }
  });
});

describe('PushSender.status has its own deadline', () => {
  let silent: Server;
  const held: Socket[] = [];
  before(async () => {
    // A gateway that accepts and never answers.
    silent = createServer((s) => {
      held.push(s);
      s.on('error', () => {});
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  });
  after(() => {
    for (const s of held) s.destroy();
    silent.close();
  });

  it('no answer within options.timeout: rejects as a timeout', async () => {
    const port = (silent.address() as { port: number }).port;
    const sender = PushSender.create({ gateways: [{ host: '127.0.0.1', port }], timeout: 60_000 });
    try {
      await sender.start();
      await rejectsWith(sender.status('m-1', { timeout: 200 }), 'timeout', /no reply .* within 200 ms/);
    } finally {
      await sender.stop();
    }
  });
});
