import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PushSender } from '../../src/client/push/push-sender.js';
import { createLogger } from '../../src/log.js';
import { closeAll, connectDevice } from '../helpers/devices.js';
import { startTestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait.js';

type Entry = Record<string, unknown>;

/** A node logging at `level` into `lines`. */
async function loggedNode(level: string) {
  const lines: string[] = [];
  const t = await startTestNode(
    {},
    {},
    createLogger(level, 'mpush', (l) => lines.push(l)),
  );
  const entries = (): Entry[] => lines.map((l) => JSON.parse(l) as Entry);
  const sender = PushSender.create({ gateways: [{ host: '127.0.0.1', port: t.node.addresses.gatewayPort }] });
  return {
    t,
    lines,
    entries,
    sender,
    async stop() {
      await sender.stop();
      await t.stop();
    },
  };
}

describe('node logs', () => {
  it('at info: nothing per push, per ack or per heartbeat', async () => {
    const n = await loggedNode('info');
    const d = await connectDevice(n.t.tcpPort, 'log-user-1');
    try {
      const before = n.lines.length;
      for (let i = 0; i < 20; i++) {
        const [r] = await n.sender.send({ userId: 'log-user-1', content: `p${i}`, ackModel: 'AUTO_ACK' });
        assert.equal(r!.result, 'success');
        d.client.heartbeat();
      }
      const [offline] = await n.sender.send({ userId: 'log-nobody', content: 'x' });
      assert.equal(offline!.result, 'offline');
      // A request on the same socket after the heartbeats: they have all been read by now.
      await d.client.bindUser('log-user-1');
      assert.deepEqual(n.lines.slice(before), []);
    } finally {
      await closeAll([d]);
      await n.stop();
    }
  });

  it('at debug: connection and bind events, by component, with the connection id and the user id', async () => {
    const n = await loggedNode('debug');
    const d = await connectDevice(n.t.tcpPort, 'log-user-2');
    try {
      await closeAll([d]);
      await waitFor(() => n.entries().some((e) => e.msg === 'connection closed'), 3000, 'the close logged');
      const server = n.entries().filter((e) => e.component === 'server');
      const accepted = server.find((e) => e.msg === 'connection accepted');
      const bound = server.find((e) => e.msg === 'bound');
      const closed = server.find((e) => e.msg === 'connection closed');
      assert.ok(accepted && bound && closed, JSON.stringify(server));
      for (const e of [accepted, bound, closed]) assert.equal(e.level, 'debug');
      assert.equal(typeof accepted.conn, 'number');
      assert.equal(accepted.transport, 'tcp');
      assert.equal(bound.conn, accepted.conn);
      assert.equal(bound.userId, 'log-user-2');
      assert.equal(closed.conn, accepted.conn);
      assert.equal(closed.reason, 'remote-closed');
      // Nothing above debug for a device that came and went.
      assert.deepEqual(
        n.entries().filter((e) => e.level !== 'debug'),
        [],
      );
    } finally {
      await n.stop();
    }
  });
});
