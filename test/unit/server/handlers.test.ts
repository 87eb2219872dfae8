import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Connection } from '../../../src/connection/index.js';
import { Disconnect } from '../../../src/connection/index.js';
import { mintBindToken } from '../../../src/crypto/bind-token.js';
import { AesCipher, mixKey, RsaClientCipher } from '../../../src/crypto/index.js';
import {
  ClientType,
  Command,
  ErrorCode,
  ErrorCodec,
  FastConnectCodec,
  FastConnectOkCodec,
  Flags,
  HandshakeCodec,
  HandshakeOkCodec,
  KickCodec,
} from '../../../src/protocol/index.js';
import { type MemoryDevice, type MemoryServer, memoryServer } from '../../helpers/memory-server.js';
import { waitFor } from '../../helpers/wait.js';

describe('handshake handler', () => {
  let s: MemoryServer;
  beforeEach(() => {
    s = memoryServer({ heartbeat: { minMs: 10_000, maxMs: 60_000 } });
  });
  afterEach(() => s.close());

  it('answers HandshakeOk under AES(clientKey, iv), then switches to AES(clientKey ^ serverKey, iv)', async () => {
    const d = s.connect();
    d.cipher = new RsaClientCipher(s.publicKey);
    d.send(
      Command.HANDSHAKE,
      HandshakeCodec.encode({
        deviceId: 'dev-hs',
        osName: 'Android',
        osVersion: '10',
        clientVersion: '2.0',
        iv: d.iv,
        clientKey: d.clientKey,
        minHeartbeat: 0,
        maxHeartbeat: 240_000,
        timestamp: 0,
      }),
    );
    const reply = d.transport.take(Command.HANDSHAKE);
    assert.equal(reply.flags, Flags.CRYPTO);
    const ok = HandshakeOkCodec.decode(new AesCipher(d.clientKey, d.iv).decrypt(reply.body));
    assert.equal(ok.serverKey.length, 16);
    assert.equal(ok.heartbeat, 60_000, 'min(client max, server max)');
    assert.match(ok.sessionId, /^[0-9a-f]{32}$/);

    // The connection now speaks the mixed key: a bind under it is understood and answered.
    const sessionKey = mixKey(d.clientKey, ok.serverKey);
    d.cipher = new AesCipher(sessionKey, d.iv);
    assert.ok(d.bind('u-hs').ok);
    assert.equal(d.conn.clientType, ClientType.MOBILE, 'from the lower-cased osName');
    assert.equal(d.conn.handshaked, true);
    assert.equal(s.server.stats.handshakes, 1);

    // Stored for fast connect (mpush-wire §6).
    const stored = await s.sessions.get(ok.sessionId);
    assert.deepEqual(stored, {
      deviceId: 'dev-hs',
      osName: 'Android',
      osVersion: '10',
      clientVersion: '2.0',
      sessionKey: sessionKey.toString('hex'),
      iv: d.iv.toString('hex'),
      expireTime: ok.expireTime,
    });
  });

  it('grants at least the server minimum heartbeat', () => {
    const d = s.connect();
    assert.equal(d.handshake(s.publicKey, { maxHeartbeat: 1_000 }).heartbeat, 10_000);
  });

  it('refuses keys that are not 16 bytes with ERROR and a BAD_HANDSHAKE close', () => {
    const d = s.connect();
    d.cipher = new RsaClientCipher(s.publicKey);
    d.send(
      Command.HANDSHAKE,
      HandshakeCodec.encode({
        deviceId: 'dev-short',
        osName: 'android',
        osVersion: '',
        clientVersion: '',
        iv: d.iv.subarray(0, 8),
        clientKey: d.clientKey,
        minHeartbeat: 0,
        maxHeartbeat: 0,
        timestamp: 0,
      }),
      { sessionId: 3 },
    );
    const err = ErrorCodec.decode(d.transport.take(Command.ERROR).body);
    assert.deepEqual(
      [err.cmd, err.code, err.reason],
      [Command.HANDSHAKE, ErrorCode.UNKNOWN, 'invalid handshake'],
    );
    assert.equal(d.conn.closeReason, Disconnect.BAD_HANDSHAKE);
    assert.equal(d.conn.handshaked, false);
  });

  it('answers the same deviceId again with 102 and keeps the connection', () => {
    const d = s.connect();
    d.handshake(s.publicKey, { deviceId: 'dev-twice' });
    // The SDK sends its second handshake under the session cipher it now has.
    const sid = d.send(
      Command.HANDSHAKE,
      HandshakeCodec.encode({
        deviceId: 'dev-twice',
        osName: 'android',
        osVersion: '',
        clientVersion: '',
        iv: d.iv,
        clientKey: d.clientKey,
        minHeartbeat: 0,
        maxHeartbeat: 0,
        timestamp: 0,
      }),
    );
    const { error } = d.reply(sid);
    assert.deepEqual([error?.cmd, error?.code], [Command.HANDSHAKE, ErrorCode.REPEAT_HANDSHAKE]);
    assert.equal(d.conn.closed, false);
    assert.ok(d.bind('u-twice').ok, 'the session cipher is unchanged');
  });
});

describe('fast connect handler', () => {
  let s: MemoryServer;
  let first: MemoryDevice;
  let sessionId: string;
  beforeEach(() => {
    s = memoryServer();
    first = s.connect();
    sessionId = first.handshake(s.publicKey, { deviceId: 'dev-fc' }).sessionId;
  });
  afterEach(() => s.close());

  function fastConnect(id: string, deviceId: string): MemoryDevice {
    const d = s.connect();
    d.send(
      Command.FAST_CONNECT,
      FastConnectCodec.encode({ sessionId: id, deviceId, minHeartbeat: 0, maxHeartbeat: 0 }),
      { encrypt: false, sessionId: 7 },
    );
    return d;
  }

  async function errorOf(d: MemoryDevice) {
    await waitFor(() => d.transport.packets.length > 0, 3000, 'the fast connect answer');
    const p = d.transport.take(Command.ERROR);
    assert.equal(p.sessionId, 7);
    return ErrorCodec.decode(p.body);
  }

  it('an unknown session: 103, the connection stays for a full handshake', async () => {
    const d = fastConnect('no-such-session', 'dev-fc');
    assert.equal((await errorOf(d)).code, ErrorCode.SESSION_EXPIRED);
    assert.equal(d.conn.closed, false);
    d.handshake(s.publicKey, { deviceId: 'dev-fc' });
  });

  it('an expired session: 103', async () => {
    const stored = (await s.sessions.get(sessionId))!;
    await s.sessions.set('old', { ...stored, expireTime: Date.now() - 1 }, 60_000);
    const d = fastConnect('old', 'dev-fc');
    assert.equal((await errorOf(d)).code, ErrorCode.SESSION_EXPIRED);
    assert.equal(d.conn.handshaked, false);
  });

  it("another device's session: 104", async () => {
    const d = fastConnect(sessionId, 'dev-thief');
    const err = await errorOf(d);
    assert.deepEqual([err.cmd, err.code], [Command.FAST_CONNECT, ErrorCode.INVALID_DEVICE]);
    assert.equal(d.conn.handshaked, false);
    assert.equal(d.conn.closed, false);
  });

  it('a live session: FastConnectOk (raw), then the stored cipher and identity', async () => {
    const d = fastConnect(sessionId, 'dev-fc');
    await waitFor(() => d.transport.packets.length > 0, 3000, 'FastConnectOk');
    const ok = d.transport.take(Command.FAST_CONNECT);
    assert.equal(ok.flags, 0, 'FastConnectOk travels raw');
    assert.equal(FastConnectOkCodec.decode(ok.body).heartbeat, s.config.heartbeat.maxMs);
    assert.equal(d.conn.handshaked, true);
    assert.equal(d.conn.deviceId, 'dev-fc');
    assert.equal(d.conn.sessionId, sessionId);
    assert.equal(s.server.stats.fastConnects, 1);
    d.cipher = first.cipher; // the session key of the first connection
    assert.ok(d.bind('u-fc').ok, 'a bind under the restored cipher is understood');
  });
});

describe('bind and unbind handlers', () => {
  let s: MemoryServer;
  beforeEach(() => {
    s = memoryServer();
  });
  afterEach(() => s.close());

  function device(osName = 'android'): MemoryDevice {
    const d = s.connect();
    d.handshake(s.publicKey, { osName });
    return d;
  }

  it('binds, answering OK "userId,clientType"', () => {
    const online: Connection[] = [];
    s.server.events.on('online', (c) => online.push(c));
    const d = device();
    assert.deepEqual(d.bind('alice').ok, { cmd: Command.BIND, code: 0, data: `alice,${ClientType.MOBILE}` });
    assert.equal(s.server.router.get('alice', ClientType.MOBILE), d.conn);
    assert.deepEqual(online, [d.conn]);
    assert.equal(s.server.stats.binds, 1);
  });

  it('a second device of the same type kicks the first (KICK, unbound, left connected)', () => {
    const kicks: string[] = [];
    s.server.events.on('kick', (_c, userId) => kicks.push(userId));
    const phone1 = device();
    const phone2 = device();
    const pc = device('windows');
    assert.ok(phone1.bind('bob').ok);
    assert.ok(pc.bind('bob').ok);
    assert.ok(phone2.bind('bob').ok);
    const kick = phone1.transport.take(Command.KICK);
    assert.equal(kick.flags, Flags.CRYPTO, 'a KICK is encrypted');
    assert.deepEqual(KickCodec.decode(phone1.open(kick)), { deviceId: phone1.conn.deviceId, userId: 'bob' });
    assert.equal(phone1.conn.closed, false, 'MPush leaves the kicked device connected');
    assert.equal(phone1.conn.userId, '');
    assert.equal(s.server.router.get('bob', ClientType.MOBILE), phone2.conn);
    assert.equal(s.server.router.get('bob', ClientType.PC), pc.conn, 'another type is not kicked');
    assert.deepEqual(pc.transport.packets, []);
    assert.deepEqual(kicks, ['bob']);
    assert.equal(s.server.stats.kicks, 1);
  });

  it('a re-bind of the same user refreshes the tags only', () => {
    let online = 0;
    s.server.events.on('online', () => online++);
    const d = device();
    assert.ok(d.bind('carol', '', 'a,b').ok);
    assert.ok(d.bind('carol', '', 'c').ok);
    assert.equal(d.conn.tags, 'c');
    assert.equal(online, 1, 'still the same binding');
    assert.equal(s.server.stats.binds, 1);
    assert.equal(s.server.router.boundConnections, 1);
  });

  it('binding another user moves the connection', () => {
    const offline: string[] = [];
    s.server.events.on('offline', (_c, u) => offline.push(u));
    const d = device();
    d.bind('dan');
    d.bind('erin');
    assert.deepEqual(offline, ['dan']);
    assert.equal(s.server.router.get('dan', ClientType.MOBILE), undefined);
    assert.equal(s.server.router.get('erin', ClientType.MOBILE), d.conn);
  });

  it('an empty userId: ERROR "invalid param", the connection stays', () => {
    const d = device();
    const { error } = d.bind('');
    assert.deepEqual(
      [error?.cmd, error?.code, error?.reason],
      [Command.BIND, ErrorCode.UNKNOWN, 'invalid param'],
    );
    assert.equal(d.conn.closed, false);
  });

  it('unbinds the user it holds, OK either way', () => {
    const offline: string[] = [];
    s.server.events.on('offline', (_c, u) => offline.push(u));
    const d = device();
    d.bind('frank');
    assert.deepEqual(d.unbind('someone-else').ok, {
      cmd: Command.UNBIND,
      code: 0,
      data: `someone-else,${ClientType.MOBILE}`,
    });
    assert.equal(s.server.router.get('frank', ClientType.MOBILE), d.conn, 'not the user it holds');
    assert.ok(d.unbind('frank').ok);
    assert.equal(s.server.router.get('frank', ClientType.MOBILE), undefined);
    assert.equal(d.conn.userId, '');
    assert.deepEqual(offline, ['frank']);
    assert.ok(d.unbind('frank').ok, 'idempotent');
    assert.deepEqual(offline, ['frank']);
  });
});

describe('bind tokens (auth.bindSecret)', () => {
  let s: MemoryServer;
  beforeEach(() => {
    s = memoryServer({ auth: { bindSecret: 'sekret' } });
  });
  afterEach(() => s.close());

  it('refuses a bind without a valid token, keeping the connection', () => {
    const d = s.connect();
    d.handshake(s.publicKey);
    const forged = mintBindToken('other-secret', 'gina', 60);
    for (const data of ['', 'not-a-token', forged, mintBindToken('sekret', 'someone-else', 60)]) {
      const { error } = d.bind('gina', data);
      assert.equal(error?.code, ErrorCode.UNKNOWN, `refused: ${JSON.stringify(data)}`);
      assert.match(error!.reason, /^bind token /);
    }
    assert.equal(s.server.stats.bindsRefused, 4);
    assert.equal(s.server.router.get('gina', ClientType.MOBILE), undefined);
    assert.equal(d.conn.closed, false);
    assert.ok(d.bind('gina', mintBindToken('sekret', 'gina', 60)).ok);
  });
});

describe('ack and device push handlers', () => {
  let s: MemoryServer;
  let d: MemoryDevice;
  beforeEach(() => {
    s = memoryServer();
    d = s.connect();
    d.handshake(s.publicKey);
  });
  afterEach(() => s.close());

  it('hands every ACK to the ack listener, with its connection and sessionId', () => {
    const acks: Array<[Connection, number]> = [];
    s.server.context.ackListener = (c, sid) => acks.push([c, sid]);
    d.send(Command.ACK, Buffer.alloc(0), { sessionId: 501, encrypt: false });
    assert.deepEqual(acks, [[d.conn, 501]]);
    assert.equal(s.server.stats.acks, 1);
  });

  for (const [name, flag] of [
    ['AUTO_ACK', Flags.AUTO_ACK],
    ['BIZ_ACK', Flags.BIZ_ACK],
  ] as const) {
    it(`acks a device PUSH that asks ${name}, with its sessionId, raw`, () => {
      const got: Array<[string, number]> = [];
      s.server.events.on('devicePush', (_c, content, sid) => got.push([content.toString(), sid]));
      d.send(Command.PUSH, Buffer.from('hello'), { sessionId: 61, flags: flag });
      assert.deepEqual(got, [['hello', 61]], 'listeners get the decrypted content');
      const ack = d.transport.take(Command.ACK);
      assert.deepEqual([ack.sessionId, ack.flags, ack.body.length], [61, 0, 0]);
      assert.equal(s.server.stats.devicePushes, 1);
    });
  }

  it('does not ack a device PUSH that asks no ack', () => {
    d.send(Command.PUSH, Buffer.from('quiet'), { sessionId: 62 });
    assert.deepEqual(d.transport.packets, []);
    assert.equal(s.server.stats.devicePushes, 1);
  });
});
