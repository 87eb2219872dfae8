import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadPublicKey } from '../../src/crypto/index.js';
import { Command, ErrorCode, FastConnectOkCodec, HEARTBEAT_FRAME } from '../../src/protocol/index.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { RawDevice } from '../helpers/raw-device.js';
import { mpushDefaultKeys } from '../helpers/shared.js';
import { waitFor } from '../helpers/wait.js';

describe('handshake and fast connect over TCP', () => {
  let t: TestNode;
  const publicKey = loadPublicKey(mpushDefaultKeys().publicKey);
  const devices: RawDevice[] = [];
  const open = async () => {
    const d = await RawDevice.connect(t.tcpPort);
    devices.push(d);
    return d;
  };

  before(async () => {
    t = await startTestNode();
  });
  after(async () => {
    for (const d of devices) d.close();
    await t.stop();
  });

  it('completes a full handshake with MPush default keys and negotiates the heartbeat', async () => {
    const d = await open();
    const ok = await d.handshake(publicKey, { deviceId: 'dev-hs', maxHeartbeat: 240_000 });
    assert.equal(ok.serverKey.length, 16);
    assert.equal(ok.heartbeat, 180_000); // max(serverMin, min(clientMax, serverMax)) with MPush defaults
    assert.match(ok.sessionId, /^[0-9a-f]{32}$/);
    assert.ok(ok.expireTime > Date.now());
    // The session cipher works: a heartbeat is echoed and a bind succeeds.
    d.raw(HEARTBEAT_FRAME);
    await d.until(() => d.heartbeats > 0 || undefined, 2000, 'heartbeat echo');
    const r = await d.bind('u-hs');
    assert.ok(r.ok, 'bind ok');
    assert.equal(r.ok.cmd, Command.BIND);
  });

  it('closes a device that half-closes its socket: the server ends its side and drops the connection', async () => {
    const d = await open();
    await d.handshake(publicKey, { deviceId: 'dev-half' });
    const closed = () => t.node.connections.stats.closed['remote-closed'] ?? 0;
    const before = closed();
    d.socket.end();
    // The device's socket closes only once the server has sent its FIN too.
    await d.waitClosed(3000);
    await waitFor(() => closed() > before, 3000, 'the connection closed as remote-closed');
  });

  it('answers garbage in place of the RSA block with ERROR and closes, the server unaffected', async () => {
    const d = await open();
    d.raw(
      Buffer.concat([
        Buffer.from('0000008002000001000000010000', 'hex').subarray(0, 13),
        Buffer.alloc(128, 0x5a),
      ]),
    );
    const err = await d.next(Command.ERROR);
    assert.equal(d.error(err).code, ErrorCode.DISPATCH_ERROR);
    await d.waitClosed();
    const other = await open();
    await other.handshake(publicKey);
  });

  it('refuses a repeated handshake with 102 and keeps the connection', async () => {
    const d = await open();
    await d.handshake(publicKey, { deviceId: 'dev-repeat' });
    // The SDK would send its second handshake under the AES session cipher.
    const { HandshakeCodec } = await import('../../src/protocol/index.js');
    d.send(
      Command.HANDSHAKE,
      HandshakeCodec.encode({
        deviceId: 'dev-repeat',
        osName: 'android',
        osVersion: '10',
        clientVersion: '1',
        iv: d.iv,
        clientKey: d.clientKey,
        minHeartbeat: 0,
        maxHeartbeat: 0,
        timestamp: 0,
      }),
    );
    const err = await d.next(Command.ERROR);
    assert.equal(d.error(err).code, ErrorCode.REPEAT_HANDSHAKE);
    assert.equal((await d.bind('u-repeat')).ok?.cmd, Command.BIND);
    assert.equal(d.closed, false);
  });

  it('fast-connects with a stored session and restores the cipher', async () => {
    const first = await open();
    const ok = await first.handshake(publicKey, { deviceId: 'dev-fast' });
    first.close();
    const d = await open();
    d.cipher = first.cipher; // the SDK keeps the session key and iv
    const sid = d.fastConnect(ok.sessionId, 'dev-fast');
    const reply = await d.next(Command.FAST_CONNECT);
    assert.equal(reply.sessionId, sid);
    assert.equal(reply.flags, 0, 'FastConnectOk is sent raw');
    assert.equal(FastConnectOkCodec.decode(reply.body).heartbeat, 180_000);
    assert.ok((await d.bind('u-fast')).ok);
  });

  it('answers an unknown session with 103 and another device with 104, keeping the connection', async () => {
    const first = await open();
    const ok = await first.handshake(publicKey, { deviceId: 'dev-owner' });
    const d = await open();
    d.fastConnect('no-such-session', 'dev-x');
    assert.equal(d.error(await d.next(Command.ERROR)).code, ErrorCode.SESSION_EXPIRED);
    d.fastConnect(ok.sessionId, 'dev-thief');
    assert.equal(d.error(await d.next(Command.ERROR)).code, ErrorCode.INVALID_DEVICE);
    // Still open: the device falls back to a full handshake on the same connection.
    await d.handshake(publicKey, { deviceId: 'dev-x' });
  });

  it('answers an unsupported command with 101 and closes', async () => {
    const d = await open();
    await d.handshake(publicKey);
    d.send(Command.GATEWAY_CHAT, Buffer.from('x'), { encrypt: false });
    const err = await d.next(Command.ERROR);
    assert.equal(d.error(err).code, ErrorCode.UNSUPPORTED_CMD);
    await d.waitClosed();
  });

  it('refuses a bind before the handshake and closes', async () => {
    const d = await open();
    d.send(Command.BIND, Buffer.from('0001750000', 'hex'), { encrypt: false });
    const err = d.error(await d.next(Command.ERROR));
    assert.equal(err.cmd, Command.BIND);
    assert.equal(err.reason, 'not handshake');
    await d.waitClosed();
  });

  it('rejects a handshake without a 16-byte key', async () => {
    const d = await open();
    const { HandshakeCodec } = await import('../../src/protocol/index.js');
    const { RsaClientCipher } = await import('../../src/crypto/index.js');
    d.cipher = new RsaClientCipher(publicKey);
    d.send(
      Command.HANDSHAKE,
      HandshakeCodec.encode({
        deviceId: 'd',
        osName: 'android',
        osVersion: '',
        clientVersion: '',
        iv: Buffer.alloc(8),
        clientKey: Buffer.alloc(16),
        minHeartbeat: 0,
        maxHeartbeat: 0,
        timestamp: 0,
      }),
    );
    await d.next(Command.ERROR);
    await d.waitClosed();
  });

  it('serves the public key in the form MPush SDKs take', async () => {
    const res = await fetch(`http://127.0.0.1:${t.httpPort}/public-key`);
    assert.equal(res.status, 200);
    assert.equal((await res.text()).trim(), mpushDefaultKeys().publicKey);
  });
});
