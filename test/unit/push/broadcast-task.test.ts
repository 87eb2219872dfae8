import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Command, Flags } from '../../../src/protocol/index.js';
import type { BroadcastTask } from '../../../src/push/broadcast-task.js';
import type { MemoryDevice } from '../../helpers/memory-server.js';
import { waitFor } from '../../helpers/wait.js';
import { type PushRig, pushMessage, pushRig } from './push-rig.js';

const finished = (task: BroadcastTask) => new Promise<BroadcastTask>((r) => task.onFinish(r));

describe('BroadcastTask counts, over memory devices', () => {
  let rig: PushRig;
  afterEach(() => rig.close());

  /** vip (tags "vip,x"), plain (tags "x"), untagged, one handshaken but unbound, one whose writes fail. */
  function fleet() {
    const vip = rig.bound('vip', 'vip,x');
    const plain = rig.bound('plain', 'x');
    const untagged = rig.bound('untagged');
    const unbound = rig.s.connect();
    unbound.handshake(rig.s.publicKey);
    const broken = rig.bound('broken', 'x');
    broken.transport.vanish();
    return { vip, plain, untagged, unbound, broken };
  }

  const pushesTo = (d: MemoryDevice) => d.transport.packets.filter((p) => p.cmd === Command.PUSH);

  it('everyone bound: matched and sent per device, a failed write counted as failed', async () => {
    rig = pushRig();
    const f = fleet();
    const task = await finished(rig.push.broadcast(pushMessage({ content: Buffer.from('all') }), 0, 't-all'));
    assert.equal(task.status, 'done');
    assert.deepEqual(task.counts, { matched: 4, sent: 3, acked: 0, failed: 1 });
    for (const d of [f.vip, f.plain, f.untagged]) {
      const [p] = pushesTo(d);
      assert.equal(d.open(p!).toString(), 'all', 'one plaintext, encrypted per connection');
    }
    assert.deepEqual(pushesTo(f.unbound), [], 'an unbound connection is not a target');
    assert.equal(rig.push.task('t-all'), task);
    assert.ok(task.report().finishedAt! >= task.report().startedAt);
  });

  it('skips devices unbound or closed after the task took its snapshot', async () => {
    rig = pushRig();
    const f = fleet();
    const task = rig.push.broadcast(pushMessage(), 0, 't-snapshot');
    // The first slice runs on the next turn: these changes come between the snapshot and it.
    assert.ok(f.plain.unbind('plain').ok);
    f.untagged.conn.close({ name: 'test', wsCode: 1000, reconnect: true });
    await finished(task);
    assert.deepEqual(task.counts, { matched: 2, sent: 1, acked: 0, failed: 1 });
    assert.deepEqual(pushesTo(f.plain), []);
  });

  it('tags: MPush matches a substring of the bind tags', async () => {
    rig = pushRig();
    const f = fleet();
    const task = await finished(rig.push.broadcast(pushMessage({ tags: ['vi'] }), 0, 't-tags'));
    assert.deepEqual(task.counts, { matched: 1, sent: 1, acked: 0, failed: 0 });
    assert.equal(pushesTo(f.vip).length, 1);
  });

  it("tags with push.tagMatch 'exact': whole tags only", async () => {
    rig = pushRig({ push: { tagMatch: 'exact' } });
    fleet();
    const part = await finished(rig.push.broadcast(pushMessage({ tags: ['vi'] }), 0, 't-part'));
    assert.equal(part.counts.matched, 0);
    const whole = await finished(rig.push.broadcast(pushMessage({ tags: ['x'] }), 0, 't-whole'));
    assert.deepEqual(whole.counts, { matched: 3, sent: 2, acked: 0, failed: 1 });
  });

  it('a condition decides alone', async () => {
    rig = pushRig();
    const f = fleet();
    const task = await finished(
      rig.push.broadcast(pushMessage({ condition: "userId == 'plain'", tags: ['vip'] }), 0, 't-cond'),
    );
    assert.deepEqual(task.counts, { matched: 1, sent: 1, acked: 0, failed: 0 });
    assert.equal(pushesTo(f.plain).length, 1);
  });

  it('broadcastMax stops at that many matched devices', async () => {
    rig = pushRig();
    fleet();
    const task = await finished(rig.push.broadcast(pushMessage({ broadcastMax: 2 }), 0, 't-max'));
    assert.equal(task.counts.matched, 2);
  });

  it('acks: counted as they come; the ones that never come count as failed', async () => {
    rig = pushRig();
    const f = fleet();
    const task = await finished(rig.push.broadcast(pushMessage({ timeout: 30 }), Flags.AUTO_ACK, 't-acks'));
    assert.deepEqual(task.counts, { matched: 4, sent: 3, acked: 0, failed: 1 }, 'done once all are written');
    const [p] = pushesTo(f.vip);
    assert.equal(p!.flags, Flags.CRYPTO | Flags.AUTO_ACK);
    f.vip.send(Command.ACK, Buffer.alloc(0), { sessionId: p!.sessionId, encrypt: false });
    assert.equal(task.counts.acked, 1);
    await waitFor(() => task.counts.failed === 3, 3000, 'the two unacked pushes to time out');
    assert.deepEqual(task.counts, { matched: 4, sent: 3, acked: 1, failed: 3 });
    assert.equal(rig.push.acks.pending, 0);
  });

  it('cancel stops it at the next device, and the same taskId runs once', async () => {
    rig = pushRig();
    for (let i = 0; i < 20; i++) rig.bound(`r${i}`);
    const task = rig.push.broadcast(pushMessage({ broadcastRate: 1 }), 0, 't-slow');
    assert.equal(rig.push.broadcast(pushMessage(), 0, 't-slow'), task, 'a running task is not started twice');
    await waitFor(() => task.counts.sent >= 1, 3000, 'the first slice');
    assert.equal(task.cancel(), true);
    assert.equal(task.status, 'cancelled');
    const sent = task.counts.sent;
    assert.ok(sent < 20);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(task.counts.sent, sent, 'nothing sent after the cancel');
    assert.equal(task.cancel(), false);
  });
});
