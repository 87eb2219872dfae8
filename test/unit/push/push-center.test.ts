import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Route } from '../../../src/cluster/route-store.js';
import { ClientType, Command, ErrorCode, Flags } from '../../../src/protocol/index.js';
import type { PushOutcome } from '../../../src/push/outcome.js';
import { waitFor } from '../../helpers/wait.js';
import { FailingRouteStore, type PushRig, pushMessage, pushRig } from './push-rig.js';

/** Collects the outcomes of one unicast: exactly one is expected. */
function outcomes() {
  const got: PushOutcome[] = [];
  return { got, done: (o: PushOutcome) => void got.push(o) };
}

const settle = (ms = 30) => new Promise((r) => setTimeout(r, ms));

describe('PushCenter.unicast to a bound device', () => {
  let rig: PushRig;
  beforeEach(() => {
    rig = pushRig();
  });
  afterEach(() => rig.close());

  it('NO_ACK: OK once written, the content encrypted for this device', async () => {
    const d = rig.bound('u1');
    const o = outcomes();
    rig.push.unicast(pushMessage({ userId: 'u1' }), 0, o.done);
    assert.equal(o.got.length, 1, 'complete as soon as written (mpush-wire §12)');
    assert.equal(o.got[0]!.kind, 'ok');
    const p = d.transport.take(Command.PUSH);
    assert.equal(p.flags, Flags.CRYPTO);
    assert.equal(d.open(p).toString(), 'hello');
    assert.equal(rig.push.acks.pending, 0, 'nothing awaited');
    await settle();
    assert.equal(o.got.length, 1);
  });

  for (const [name, flag] of [
    ['AUTO_ACK', Flags.AUTO_ACK],
    ['BIZ_ACK', Flags.BIZ_ACK],
  ] as const) {
    it(`${name}: OK only once the device acks, exactly once`, async () => {
      const d = rig.bound('u2');
      const o = outcomes();
      rig.push.unicast(pushMessage({ userId: 'u2', timeout: 40 }), flag | Flags.CRYPTO, o.done);
      const p = d.transport.take(Command.PUSH);
      assert.equal(p.flags, Flags.CRYPTO | flag, 'the ack model travels in the flags (mpush-wire §12)');
      assert.equal(o.got.length, 0, 'not before the ack');
      assert.equal(rig.push.acks.pending, 1);
      d.send(Command.ACK, Buffer.alloc(0), { sessionId: p.sessionId, encrypt: false });
      assert.equal(o.got.length, 1);
      const ok = o.got[0]!;
      assert.equal(ok.kind, 'ok');
      if (ok.kind === 'ok') {
        assert.deepEqual([ok.userId, ok.clientType], ['u2', ClientType.MOBILE]);
        assert.ok(ok.timePoints.acked! >= ok.timePoints.written!);
      }
      await settle(80); // past the push's timeout
      assert.equal(o.got.length, 1, 'no ack timeout after the ack');
    });
  }

  it('a timeout of 0 means the default, not "expire at once" (mpush-wire §12)', async () => {
    const slow = pushRig({ push: { defaultTimeoutMs: 60_000 } });
    try {
      const d = slow.bound('u0');
      const o = outcomes();
      slow.push.unicast(pushMessage({ userId: 'u0', timeout: 0 }), Flags.AUTO_ACK, o.done);
      await settle(50);
      assert.equal(o.got.length, 0, 'still waiting for the ack');
      d.send(Command.ACK, Buffer.alloc(0), {
        sessionId: d.transport.take(Command.PUSH).sessionId,
        encrypt: false,
      });
      assert.equal(o.got[0]?.kind, 'ok');
    } finally {
      await slow.close();
    }
  });

  it('uses the server counter for the pushed sessionId, not the request', () => {
    const d = rig.bound('u3');
    rig.push.unicast(pushMessage({ userId: 'u3' }), 0, () => {});
    rig.push.unicast(pushMessage({ userId: 'u3' }), 0, () => {});
    const [a, b] = [d.transport.take(Command.PUSH), d.transport.take(Command.PUSH)];
    assert.equal(b.sessionId, a.sessionId + 1);
  });

  it('an ack timeout: ERROR 4 once; a late ack changes nothing', async () => {
    const d = rig.bound('u4');
    const o = outcomes();
    rig.push.unicast(pushMessage({ userId: 'u4', timeout: 20 }), Flags.AUTO_ACK, o.done);
    const p = d.transport.take(Command.PUSH);
    await waitFor(() => o.got.length > 0, 3000, 'the ack timeout');
    assert.deepEqual(o.got, [{ kind: 'error', code: ErrorCode.ACK_TIMEOUT, reason: 'ack timeout' }]);
    d.send(Command.ACK, Buffer.alloc(0), { sessionId: p.sessionId, encrypt: false });
    await settle();
    assert.equal(o.got.length, 1);
  });

  it('an ack from another device with the pushed sessionId does not complete it', async () => {
    const d = rig.bound('u5');
    const stranger = rig.bound('someone');
    const o = outcomes();
    rig.push.unicast(pushMessage({ userId: 'u5', timeout: 20 }), Flags.AUTO_ACK, o.done);
    const p = d.transport.take(Command.PUSH);
    stranger.send(Command.ACK, Buffer.alloc(0), { sessionId: p.sessionId, encrypt: false });
    assert.equal(o.got.length, 0);
    await waitFor(() => o.got.length > 0, 3000, 'the ack timeout');
    assert.equal(o.got[0]!.kind === 'error' && o.got[0]!.code, ErrorCode.ACK_TIMEOUT);
  });

  it('a failed write: ERROR 2, and no ack left waiting', () => {
    const d = rig.bound('u6');
    d.transport.vanish();
    const o = outcomes();
    rig.push.unicast(pushMessage({ userId: 'u6' }), Flags.AUTO_ACK, o.done);
    assert.deepEqual(o.got, [
      { kind: 'error', code: ErrorCode.PUSH_CLIENT_FAILURE, reason: 'write to device failed' },
    ]);
    assert.equal(rig.push.acks.pending, 0);
  });
});

describe('PushCenter.unicast with no local device', () => {
  it('offline: no route anywhere, or a route made here', async () => {
    const rig = pushRig();
    try {
      const o = outcomes();
      rig.push.unicast(pushMessage({ userId: 'nobody' }), 0, o.done);
      await waitFor(() => o.got.length > 0, 3000, 'the outcome');
      assert.deepEqual(o.got, [{ kind: 'error', code: ErrorCode.OFFLINE, reason: 'offline' }]);

      const d = rig.bound('leaving');
      d.conn.close({ name: 'test', wsCode: 1000, reconnect: true });
      await rig.routes.register('leaving', ClientType.MOBILE, route('node-a:1'));
      const o2 = outcomes();
      rig.push.unicast(pushMessage({ userId: 'leaving' }), 0, o2.done);
      await waitFor(() => o2.got.length > 0, 3000, 'the outcome');
      assert.equal(o2.got[0]!.kind === 'error' && o2.got[0]!.code, ErrorCode.OFFLINE);
    } finally {
      await rig.close();
    }
  });

  it('route change: the route points at another live node', async () => {
    const rig = pushRig();
    try {
      await rig.routes.register('moved', ClientType.MOBILE, route('node-b:9'));
      const o = outcomes();
      rig.push.unicast(pushMessage({ userId: 'moved' }), 0, o.done);
      await waitFor(() => o.got.length > 0, 3000, 'the outcome');
      assert.deepEqual(o.got, [{ kind: 'error', code: ErrorCode.ROUTER_CHANGE, reason: 'router change' }]);
    } finally {
      await rig.close();
    }
  });

  it('offline: the route points at a node that is gone', async () => {
    const rig = pushRig({}, { isRouteLive: () => false });
    try {
      await rig.routes.register('stale', ClientType.MOBILE, route('node-b:9'));
      const o = outcomes();
      rig.push.unicast(pushMessage({ userId: 'stale' }), 0, o.done);
      await waitFor(() => o.got.length > 0, 3000, 'the outcome');
      assert.equal(o.got[0]!.kind === 'error' && o.got[0]!.code, ErrorCode.OFFLINE);
    } finally {
      await rig.close();
    }
  });

  it('a failing route store: ERROR 2 naming it', async () => {
    const rig = pushRig({}, { routes: new FailingRouteStore() });
    try {
      const o = outcomes();
      rig.push.unicast(pushMessage({ userId: 'x' }), 0, o.done);
      await waitFor(() => o.got.length > 0, 3000, 'the outcome');
      assert.deepEqual(o.got, [
        { kind: 'error', code: ErrorCode.PUSH_CLIENT_FAILURE, reason: 'route store: store down' },
      ]);
    } finally {
      await rig.close();
    }
  });
});

function route(connId: string): Route {
  return { host: '127.0.0.1', port: 1, deviceId: 'd', osName: 'android', clientVersion: '1', connId };
}

describe('PushCenter: a replay goes before new pushes', () => {
  let rig: PushRig;
  beforeEach(() => {
    rig = pushRig();
  });
  afterEach(() => rig.close());

  it('unicasts to a connection being replayed to wait, then go in order after the replay', async () => {
    const d = rig.bound('r1');
    const conn = rig.s.server.context.router.get('r1', ClientType.MOBILE)!;
    rig.push.beginReplay(conn);
    const o = outcomes();
    rig.push.unicast(pushMessage({ userId: 'r1', content: Buffer.from('live') }), 0, o.done);
    assert.equal(o.got.length, 0, 'held');
    assert.equal(d.transport.packets.length, 0, 'nothing written yet');
    const stored = outcomes();
    rig.push.deliver(conn, Buffer.from('stored'), 0, 1000, {
      onWritten: () => stored.done({ kind: 'ok', userId: 'r1', clientType: 1, timePoints: {} }),
      onAck() {},
      onAckTimeout() {},
      fail() {},
    });
    rig.push.endReplay(conn);
    assert.equal(o.got[0]?.kind, 'ok', 'the held push went at the end of the replay');
    assert.equal(d.open(d.transport.take(Command.PUSH)).toString(), 'stored');
    assert.equal(d.open(d.transport.take(Command.PUSH)).toString(), 'live');
  });
});
