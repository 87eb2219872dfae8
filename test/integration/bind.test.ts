import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mintBindToken } from '../../src/crypto/bind-token.js';
import { loadPublicKey } from '../../src/crypto/index.js';
import { ClientType, Command, KickCodec } from '../../src/protocol/index.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { RawDevice } from '../helpers/raw-device.js';
import { mpushDefaultKeys } from '../helpers/shared.js';
import { waitFor } from '../helpers/wait.js';

const publicKey = loadPublicKey(mpushDefaultKeys().publicKey);

describe('bind, unbind and kick', () => {
  let t: TestNode;
  const devices: RawDevice[] = [];
  const device = async (osName = 'android', deviceId?: string) => {
    const d = await RawDevice.connect(t.tcpPort);
    devices.push(d);
    await d.handshake(publicKey, { osName, ...(deviceId ? { deviceId } : {}) });
    return d;
  };

  before(async () => {
    t = await startTestNode();
  });
  after(async () => {
    for (const d of devices) d.close();
    await t.stop();
  });

  it('binds and answers OK raw with user and client type', async () => {
    const d = await device('android');
    const r = await d.bind('alice', '', 'vip,beta');
    assert.deepEqual(r.ok, { cmd: Command.BIND, code: 0, data: `alice,${ClientType.MOBILE}` });
    const conn = t.node.connections.router.get('alice', ClientType.MOBILE);
    assert.ok(conn);
    assert.equal(conn.tags, 'vip,beta');
  });

  it('kicks the first device of the same type and leaves it connected', async () => {
    const first = await device('android', 'phone-1');
    await first.bind('bob');
    const second = await device('ios', 'phone-2');
    await second.bind('bob');
    const kick = await first.next(Command.KICK);
    assert.ok(kick.flags & 1, 'KICK is encrypted');
    assert.deepEqual(KickCodec.decode(first.open(kick)), { deviceId: 'phone-1', userId: 'bob' });
    assert.equal(t.node.connections.router.get('bob', ClientType.MOBILE)?.deviceId, 'phone-2');
    // Not disconnected (mpush-wire §12): it still answers heartbeats and may bind again.
    assert.equal(first.closed, false);
    const conn = [...t.node.connections.connections.values()].find((c) => c.deviceId === 'phone-1');
    assert.equal(conn?.userId, '');
  });

  it('lets devices of different types coexist', async () => {
    const phone = await device('android');
    const pc = await device('Windows 10');
    const web = await device('web');
    await phone.bind('carol');
    await pc.bind('carol');
    await web.bind('carol');
    const conns = t.node.connections.router.connectionsOf('carol');
    assert.deepEqual(conns.map((c) => c.clientType).sort(), [
      ClientType.MOBILE,
      ClientType.PC,
      ClientType.WEB,
    ]);
    assert.equal(phone.packets.filter((p) => p.cmd === Command.KICK).length, 0);
  });

  it('unbinds', async () => {
    const d = await device('mac os x');
    await d.bind('dave');
    const before = t.node.connections.router.onlineUsers;
    const ok = await d.unbind('dave');
    assert.equal(ok.cmd, Command.UNBIND);
    assert.equal(t.node.connections.router.get('dave', ClientType.PC), undefined);
    assert.equal(t.node.connections.router.onlineUsers, before - 1);
  });

  it('rebinding to another user moves the binding', async () => {
    const d = await device('linux');
    await d.bind('erin');
    await d.bind('frank');
    assert.equal(t.node.connections.router.get('erin', ClientType.PC), undefined);
    assert.ok(t.node.connections.router.get('frank', ClientType.PC));
  });

  it('removes the binding when the device disconnects', async () => {
    const d = await device('android');
    await d.bind('gina');
    d.close();
    await waitFor(() => t.node.connections.router.get('gina', ClientType.MOBILE) === undefined);
  });
});

describe('bind tokens (auth.bindSecret)', () => {
  let t: TestNode;
  const secret = 's3cret';
  const devices: RawDevice[] = [];
  before(async () => {
    t = await startTestNode({ auth: { bindSecret: secret } });
  });
  after(async () => {
    for (const d of devices) d.close();
    await t.stop();
  });
  const device = async () => {
    const d = await RawDevice.connect(t.tcpPort);
    devices.push(d);
    await d.handshake(publicKey);
    return d;
  };

  it('refuses a bind without a token', async () => {
    const r = await (await device()).bind('u1');
    assert.equal(r.error?.reason, 'bind token malformed');
  });

  it('accepts a valid token', async () => {
    const r = await (await device()).bind('u1', mintBindToken(secret, 'u1', 60));
    assert.ok(r.ok);
  });

  it('refuses an expired token', async () => {
    const token = mintBindToken(secret, 'u1', 60, Math.floor(Date.now() / 1000) - 120);
    const r = await (await device()).bind('u1', token);
    assert.equal(r.error?.reason, 'bind token expired');
  });

  it('refuses a token forged with another secret or minted for another user', async () => {
    const d = await device();
    assert.equal(
      (await d.bind('u1', mintBindToken('other', 'u1', 60))).error?.reason,
      'bind token bad-signature',
    );
    assert.equal(
      (await d.bind('u1', mintBindToken(secret, 'u2', 60))).error?.reason,
      'bind token bad-signature',
    );
    assert.equal(d.closed, false);
  });
});
