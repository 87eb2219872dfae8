import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { closeAll, connectDevice, type TestDevice } from '../helpers/devices.js';
import { api, eventually, type NodeProcess, spawnNode } from '../helpers/node-process.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';

// biome-ignore lint/suspicious/noExplicitAny: JSON bodies are checked field by field
type Json = any;

const USERS = 10;
const PUSHES = 100; // each to all USERS: 1,000 stored messages

describe('inbox on Redis across node processes: the storing node dies, another delivers', () => {
  let redis: TestRedis;
  let a: NodeProcess;
  let b: NodeProcess;
  const devices: TestDevice[] = [];

  before(async () => {
    redis = await startTestRedis();
    const opts = { redisUrl: redis.url, prefix: redis.prefix, registryTtlMs: 1500, registryRefreshMs: 300 };
    [a, b] = await Promise.all([spawnNode(opts), spawnNode(opts)]);
  });
  after(async () => {
    await closeAll(devices);
    await Promise.all([a?.alive ? a.kill() : undefined, b?.stop()]);
    await redis.close();
  });

  it('1,000 messages stored through node A, A killed -9, devices bind on B: 0 lost, in order, receipts acked', async () => {
    const users = Array.from({ length: USERS }, (_, i) => `inbox-u${i}`);
    let stored = 0;
    for (let k = 0; k < PUSHES; k++) {
      const { results } = await api<{ results: Json[] }>(a, 'POST', '/api/push', {
        userIds: users,
        msgId: `m-${k}`,
        msg: { content: `n${k}` },
        ackModel: 'AUTO_ACK',
        store: true,
      });
      for (const r of results) {
        assert.deepEqual([r.result, r.messageId], ['offline', `m-${k}`]);
        if (r.stored) stored++;
      }
    }
    assert.equal(stored, USERS * PUSHES, 'every result says stored');
    await a.kill();
    for (const u of users) devices.push(await connectDevice(b.tcpPort, u));
    await eventually(
      async () => devices.every((d) => d.pushes.length >= PUSHES) || undefined,
      'every device to receive its stored messages',
    );
    let received = 0;
    for (const d of devices) {
      const ids = d.pushes.map((p) => (JSON.parse(p.content.toString()) as { msgId: string }).msgId);
      assert.deepEqual(
        ids,
        Array.from({ length: PUSHES }, (_, k) => `m-${k}`),
        'each once, in order',
      );
      received += ids.length;
    }
    assert.equal(received, 1000, '0 lost');
    const r = await eventually(async () => {
      const x = await api<Json>(b, 'GET', '/api/messages/m-0');
      return x.users.length === USERS && x.users.every((u: Json) => u.devices[0]?.state === 'acked')
        ? x
        : undefined;
    }, 'the receipt of m-0 to show every user acked');
    assert.equal(r.users[0].inbox, 'stored');
  });
});
