import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BinaryWire,
  type BinaryWireOptions,
  type BinaryWireTypes,
  binaryWireSettings,
  type DeviceHost,
  type DeviceProfile,
  DeviceProtocol,
  JsonWire,
  type JsonWireTypes,
  type ResumeSession,
  ServerReplyError,
  type WireTypes,
} from '../../../src/client/device/index.js';
import { AesCipher, loadPrivateKey, RsaDecryptor } from '../../../src/crypto/index.js';
import {
  Command,
  ErrorCode,
  ErrorCodec,
  encodePacket,
  Flags,
  HEADER_LENGTH,
  type Packet,
} from '../../../src/protocol/index.js';
import { mpushDefaultKeys, readFixture } from '../../helpers/shared.js';

// The Java SDK's own bytes (vectors.json, mpush-client-java 0.8.1). Their common inputs: iv = bytes
// 0..15, clientKey = bytes 16..31, serverKey = bytes 0..15, so the session key is 0x10 x 16.
const vectors = new Map(
  readFixture<{ vectors: Array<{ id: string; hex: string }> }>('vectors.json').vectors.map((v) => [v.id, v]),
);
function vector(id: string): Buffer {
  const v = vectors.get(id);
  if (v === undefined) throw new Error(`no vector ${id}`);
  return Buffer.from(v.hex, 'hex');
}
const IV = '000102030405060708090a0b0c0d0e0f';
const CLIENT_KEY = '101112131415161718191a1b1c1d1e1f';
const SESSION_KEY = '10101010101010101010101010101010';
const keys = mpushDefaultKeys();
const serverRsa = new RsaDecryptor(loadPrivateKey(keys.privateKey));

/** The Java SDK's handshake fields in the vectors. */
const sdkProfile: DeviceProfile = {
  osName: 'android',
  osVersion: '10',
  clientVersion: '1.0.0',
  minHeartbeat: 240_000,
  maxHeartbeat: 240_000,
};
const storedSession: ResumeSession = {
  sessionId: 'sess-1',
  sessionKey: SESSION_KEY,
  iv: IV,
  expireTime: 1_700_086_400_000,
};

/**
 * The in-memory side of a protocol object: records every frame written and every event, in one log,
 * so a test sees what came first. `onX` hooks let a test act inside a callback.
 */
class TestHost<T extends WireTypes> implements DeviceHost<T> {
  readonly log: Array<[string, ...unknown[]]> = [];
  readonly written: Array<T['frame']> = [];
  hooks: Partial<Record<string, (...args: unknown[]) => void>> = {};

  private record(event: string, ...args: unknown[]): void {
    this.log.push([event, ...args]);
    this.hooks[event]?.(...args);
  }

  write(frame: T['frame']): void {
    this.written.push(frame);
    this.log.push(['write', frame]);
  }
  onHandshake(h: unknown): void {
    this.record('handshake', h);
  }
  onError(err: unknown, fatal: boolean): void {
    this.record('error', err, fatal);
  }
  onFastConnectFailed(e: unknown, s: unknown): void {
    this.record('fastConnectFailed', e, s);
  }
  onServerError(e: unknown): void {
    this.record('serverError', e);
  }
  onOk(r: unknown): void {
    this.record('ok', r);
  }
  onAck(sessionId: number): void {
    this.record('ack', sessionId);
  }
  onPush(p: unknown): void {
    this.record('push', p);
  }
  onKick(k: unknown): void {
    this.record('kick', k);
  }
  onHeartbeat(): void {
    this.record('heartbeat');
  }
  onPacket(p: unknown): void {
    this.record('packet', p);
  }

  /** The events logged since the last call, without the writes. */
  takeEvents(): Array<[string, ...unknown[]]> {
    const events = this.log.filter((e) => e[0] !== 'write');
    this.log.length = 0;
    return events;
  }

  /** Everything written since the last call, as one buffer (binary wire). */
  takeBytes(): Buffer {
    const all = Buffer.concat(this.written as Buffer[]);
    this.written.length = 0;
    return all;
  }
}

function binary(options: { profile?: Partial<DeviceProfile>; wire?: BinaryWireOptions } = {}): {
  p: DeviceProtocol<BinaryWireTypes>;
  host: TestHost<BinaryWireTypes>;
  wire: BinaryWire;
} {
  const host = new TestHost<BinaryWireTypes>();
  const wire = new BinaryWire(
    binaryWireSettings({
      publicKey: keys.publicKey,
      handshakeKeys: () => ({ clientKey: Buffer.from(CLIENT_KEY, 'hex'), iv: Buffer.from(IV, 'hex') }),
      ...options.wire,
    }),
  );
  const p = new DeviceProtocol(wire, host, 'dev-1', { ...sdkProfile, ...options.profile });
  return { p, host, wire };
}

/** A binary protocol object made ready by the SDK's fast connect vectors (no RSA: fast). */
function readyBinary(options: Parameters<typeof binary>[0] = {}) {
  const b = binary(options);
  b.p.start(storedSession);
  b.p.receive(vector('fastConnectOk.packet'));
  b.host.takeBytes();
  b.host.takeEvents();
  return b;
}

/** Decrypts a HANDSHAKE frame as the server would: its header, and its body under the server's RSA key. */
function openHandshake(frame: Buffer): { header: string; body: Buffer } {
  return {
    header: frame.subarray(0, HEADER_LENGTH).toString('hex'),
    body: serverRsa.decrypt(frame.subarray(HEADER_LENGTH)),
  };
}

function json(profile: Partial<DeviceProfile> = {}) {
  const host = new TestHost<JsonWireTypes>();
  const p = new DeviceProtocol(new JsonWire(), host, 'web-1', {
    osName: 'web',
    osVersion: 'Chrome',
    clientVersion: '1.0',
    minHeartbeat: 0,
    maxHeartbeat: 0,
    ...profile,
  });
  return { p, host };
}

const frame = (
  cmd: number,
  sessionId: number,
  body: Record<string, unknown>,
  flags: number = Flags.JSON_BODY,
) => JSON.stringify({ cmd, flags, sessionId, body });

describe('DeviceProtocol over the binary wire, against the Java SDK vectors', () => {
  it('full handshake: the SDK HANDSHAKE, HandshakeOk under AES(clientKey, iv), then BIND and UNBIND byte for byte', () => {
    const { p, host } = binary();
    assert.equal(p.start(), 1);
    assert.equal(p.state, 'handshaking');
    const hs = openHandshake(host.takeBytes());
    // The header is pinned by the SDK's sample; RSA padding is random, its plaintext is not.
    assert.equal(hs.header, vector('handshake.packet.rsaSample').subarray(0, HEADER_LENGTH).toString('hex'));
    assert.deepEqual(hs.body, vector('handshake.body.sdkTimestamp0'));

    p.receive(vector('handshakeOk.packet.aes'));
    assert.deepEqual(host.takeEvents(), [
      [
        'handshake',
        {
          sessionId: 'sess-1',
          heartbeat: 180_000,
          expireTime: 1_700_086_400_000,
          fast: false,
          sessionKey: SESSION_KEY,
          iv: IV,
        },
      ],
    ]);
    assert.equal(p.state, 'ready');
    assert.equal(p.sessionId, 'sess-1');
    assert.equal(p.negotiatedHeartbeat, 180_000);

    assert.equal(p.bind('user-0', 'vip,beta'), 2);
    assert.deepEqual(host.takeBytes(), vector('bind.packet.aes'));
    p.receive(vector('ok.bind.packet'));
    assert.deepEqual(host.takeEvents(), [
      ['ok', { cmd: Command.BIND, code: 0, data: 'bind success', sessionId: 2 }],
    ]);
    assert.equal(p.unbind('user-0'), 3);
    assert.deepEqual(host.takeBytes(), vector('unbind.packet.aes'));
  });

  it('fast connect: FAST_CONNECT raw, FastConnectOk raw, then the stored session key', () => {
    const { p, host } = binary();
    assert.equal(p.start(storedSession), 1);
    assert.equal(p.state, 'fast-connecting');
    assert.deepEqual(host.takeBytes(), vector('fastConnect.packet'));
    p.receive(vector('fastConnectOk.packet'));
    assert.deepEqual(host.takeEvents(), [
      [
        'handshake',
        { sessionId: 'sess-1', heartbeat: 180_000, expireTime: storedSession.expireTime, fast: true },
      ],
    ]);
    assert.equal(p.state, 'ready');
    p.bind('user-0', 'vip,beta');
    assert.deepEqual(host.takeBytes(), vector('bind.packet.aes'));
  });

  it('a refused fast connect is reported, then a full handshake follows on the same connection', () => {
    const { p, host } = binary();
    p.start(storedSession);
    host.takeBytes();
    p.receive(vector('error.fastConnect.sessionExpired'));
    const error = {
      cmd: Command.FAST_CONNECT,
      code: ErrorCode.SESSION_EXPIRED,
      reason: 'session expired',
      data: '',
      sessionId: 1,
    };
    assert.deepEqual(host.takeEvents(), [
      ['fastConnectFailed', error, storedSession],
      ['serverError', error],
    ]);
    assert.equal(p.state, 'handshaking');
    const hs = openHandshake(host.takeBytes());
    assert.equal(hs.header, '00000080020000010000000200');
    assert.deepEqual(hs.body, vector('handshake.body.sdkTimestamp0'));
    p.receive(vector('handshakeOk.packet.aes'));
    assert.equal(p.state, 'ready');
  });

  it('pushes: AUTO_ACK is acked before it is delivered, BIZ_ACK only by ack(), no flag never', () => {
    const { p, host } = readyBinary();
    p.receive(vector('push.aes.autoAck'));
    const [write, push] = host.log;
    assert.deepEqual(write, ['write', vector('ack.packet')]);
    assert.deepEqual(push, [
      'push',
      {
        content: Buffer.from('hello mpush'),
        sessionId: 7,
        flags: Flags.CRYPTO | Flags.AUTO_ACK,
        ackModel: 'auto',
      },
    ]);
    host.takeBytes();
    host.takeEvents();

    p.receive(vector('push.aes.bizAck'));
    assert.deepEqual(host.written, []);
    assert.equal((host.takeEvents()[0]![1] as { ackModel: string }).ackModel, 'biz');
    p.ack(7);
    assert.deepEqual(host.takeBytes(), vector('ack.packet'));

    p.receive(vector('push.aes.noAck'));
    assert.deepEqual(host.written, []);
    assert.equal((host.takeEvents()[0]![1] as { ackModel: string }).ackModel, 'none');

    p.receive(vector('push.aes.bizAck.utf8'));
    const [, utf8] = host.takeEvents()[0]!;
    assert.equal((utf8 as { content: Buffer }).content.toString('utf8'), 'héllo 推送 {"n":1}');

    p.receive(vector('push.aes.compressed.bizAck'));
    assert.deepEqual(host.takeEvents(), [
      [
        'push',
        {
          content: Buffer.from('a'.repeat(2000)),
          sessionId: 7,
          flags: Flags.CRYPTO | Flags.COMPRESS | Flags.BIZ_ACK,
          ackModel: 'biz',
        },
      ],
    ]);
  });

  it('kick, heartbeats both ways, and a device push acked by the server', () => {
    const { p, host } = readyBinary();
    p.receive(vector('kick.packet.aes'));
    assert.deepEqual(host.takeEvents(), [['kick', { deviceId: 'dev-1', userId: 'user-0' }]]);
    assert.equal(p.heartbeat(), true);
    assert.deepEqual(host.takeBytes(), vector('heartbeat'));
    p.receive(vector('heartbeat'));
    assert.deepEqual(host.takeEvents(), [['heartbeat']]);

    const id = p.push(Buffer.from('up'), Flags.AUTO_ACK);
    const sent = host.takeBytes();
    assert.equal(sent[7], Flags.CRYPTO | Flags.AUTO_ACK);
    assert.equal(sent.readInt32BE(8), id);
    const session = new AesCipher(Buffer.from(SESSION_KEY, 'hex'), Buffer.from(IV, 'hex'));
    assert.equal(session.decrypt(sent.subarray(HEADER_LENGTH)).toString(), 'up');
    p.receive(encodePacket({ cmd: Command.ACK, flags: 0, sessionId: id, body: Buffer.alloc(0) }));
    assert.deepEqual(host.takeEvents(), [['ack', id]]);
  });

  it('a refused bind reaches onServerError and the protocol stays ready', () => {
    const { p, host } = readyBinary();
    const id = p.bind('user-bad', '', 'forged');
    const body = ErrorCodec.encode({
      cmd: Command.BIND,
      code: ErrorCode.UNKNOWN,
      reason: 'invalid bind token',
      data: '',
    });
    p.receive(encodePacket({ cmd: Command.ERROR, flags: 0, sessionId: id, body }));
    assert.deepEqual(host.takeEvents(), [
      [
        'serverError',
        { cmd: Command.BIND, code: ErrorCode.UNKNOWN, reason: 'invalid bind token', data: '', sessionId: id },
      ],
    ]);
    assert.equal(p.state, 'ready');
  });

  it('a refused handshake fails the protocol, which then ignores input until reset', () => {
    const { p, host } = binary();
    p.start();
    const body = ErrorCodec.encode({
      cmd: Command.HANDSHAKE,
      code: ErrorCode.DISPATCH_ERROR,
      reason: 'bad handshake',
      data: '',
    });
    p.receive(encodePacket({ cmd: Command.ERROR, flags: 0, sessionId: 1, body }));
    const [serverError, error] = host.takeEvents();
    assert.equal(serverError![0], 'serverError');
    assert.equal(error![0], 'error');
    const [, err, fatal] = error!;
    assert.equal(fatal, true);
    assert.equal((err as { code: string }).code, 'MPUSH_ERR_HANDSHAKE');
    assert.equal((err as Error).message, 'handshake refused: 100 bad handshake');
    assert.ok((err as Error).cause instanceof ServerReplyError);
    assert.equal(p.state, 'failed');
    p.receive(vector('kick.packet.aes'));
    assert.deepEqual(host.takeEvents(), []);
    p.reset();
    assert.equal(p.state, 'idle');
  });

  it('decodes the same at every chunk boundary: whole, byte by byte, and split in two everywhere', () => {
    const fromServer = Buffer.concat([
      vector('handshakeOk.packet.aes'),
      vector('ok.bind.packet'),
      vector('push.aes.autoAck'),
      vector('heartbeat'),
      vector('push.aes.compressed.bizAck'),
      vector('kick.packet.aes'),
      vector('heartbeat'),
      vector('heartbeat'),
      vector('push.aes.bizAck.utf8'),
    ]);
    const run = (chunks: Buffer[]) => {
      const { p, host } = binary();
      // What an SDK does: bind as soon as the handshake is accepted.
      host.hooks.handshake = () => p.bind('user-0', 'vip,beta');
      p.start();
      host.takeBytes();
      for (const c of chunks) p.receive(Buffer.from(c)); // a copy: the decoder must not keep views of reused input
      return { events: host.takeEvents(), written: host.takeBytes().toString('hex') };
    };
    const whole = run([fromServer]);
    assert.deepEqual(
      whole.events.map((e) => e[0]),
      ['handshake', 'ok', 'push', 'heartbeat', 'push', 'kick', 'heartbeat', 'heartbeat', 'push'],
    );
    assert.equal(
      whole.written,
      Buffer.concat([vector('bind.packet.aes'), vector('ack.packet')]).toString('hex'),
    );
    const bytes: Buffer[] = [];
    for (let i = 0; i < fromServer.length; i++) bytes.push(fromServer.subarray(i, i + 1));
    assert.deepEqual(run(bytes), whole, 'byte by byte');
    for (let i = 1; i < fromServer.length; i++) {
      assert.deepEqual(run([fromServer.subarray(0, i), fromServer.subarray(i)]), whole, `split at ${i}`);
    }
  });

  it('heartbeat timing: written when due, and a fatal timeout after two heartbeats with nothing read', () => {
    let now = 1_000_000;
    const { p, host } = binary({ profile: { now: () => now } });
    assert.equal(p.nextTimeout(), -1, 'no heartbeat before the handshake');
    const t0 = now;
    p.start(storedSession);
    p.receive(vector('fastConnectOk.packet')); // heartbeat 180 s
    host.takeBytes();
    host.takeEvents();
    // Written 5 s before the server's 180 s, read deadline at two heartbeats.
    assert.equal(p.nextTimeout(), t0 + 175_000);
    now = t0 + 100_000;
    assert.equal(p.handleTimeout(), t0 + 175_000, 'early: nothing due');
    assert.deepEqual(host.written, []);
    now = t0 + 175_000;
    assert.equal(p.handleTimeout(), t0 + 350_000);
    assert.deepEqual(host.takeBytes(), vector('heartbeat'));
    now = t0 + 350_000;
    assert.equal(p.handleTimeout(), t0 + 360_000, 'the read deadline comes first now');
    assert.deepEqual(host.takeBytes(), vector('heartbeat'));
    now = t0 + 359_000;
    p.receive(vector('heartbeat')); // a read moves the deadline
    assert.equal(p.nextTimeout(), t0 + 525_000);
    now = t0 + 359_000 + 360_000;
    assert.equal(p.handleTimeout(), -1);
    const [, [, err, fatal]] = host.takeEvents();
    assert.equal(fatal, true);
    assert.equal((err as { code: string }).code, 'MPUSH_ERR_HEARTBEAT_TIMEOUT');
    assert.equal(p.state, 'failed');
  });

  it('uses the profile heartbeat when the server names none', () => {
    const { p, host } = binary({ profile: { maxHeartbeat: 60_000, now: () => 0 } });
    p.start(storedSession);
    p.receive(encodePacket({ cmd: Command.FAST_CONNECT, flags: 0, sessionId: 1, body: Buffer.alloc(4) }));
    assert.equal((host.takeEvents()[0]![1] as { heartbeat: number }).heartbeat, 0, 'as the server sent it');
    assert.equal(p.negotiatedHeartbeat, 60_000);
    assert.equal(p.nextTimeout(), 55_000);
  });

  it('bad input is fatal: an oversized frame, an unreadable body, a bomb, an unexpected HANDSHAKE reply', () => {
    const failure = (p: DeviceProtocol<BinaryWireTypes>, host: TestHost<BinaryWireTypes>, input: Buffer) => {
      p.receive(input);
      const events = host.takeEvents();
      assert.equal(events.length, 1, JSON.stringify(events));
      const [name, err, fatal] = events[0]!;
      assert.deepEqual([name, fatal, p.state], ['error', true, 'failed']);
      p.receive(vector('heartbeat'));
      assert.deepEqual(host.takeEvents(), [], 'input after a failure is ignored');
      return err as { code: string; message: string };
    };
    const oversized = binary({ wire: { maxPacketSize: 100 } });
    const header = Buffer.alloc(HEADER_LENGTH);
    header.writeInt32BE(1000, 0);
    header[4] = Command.PUSH;
    const tooBig = failure(oversized.p, oversized.host, header);
    assert.equal(tooBig.code, 'MPUSH_ERR_PROTOCOL');
    assert.match(tooBig.message, /^bad frame from the server: .*exceeds the limit of 100 bytes/);

    const early = binary();
    const before = failure(early.p, early.host, vector('push.aes.autoAck'));
    assert.equal(before.code, 'MPUSH_ERR_HANDSHAKE', 'before the handshake');
    assert.match(before.message, /^cannot read command 15 from the server: .*before any key was agreed/);

    const bomb = readyBinary({ wire: { maxInflateBytes: 1000 } });
    const inflated = failure(bomb.p, bomb.host, vector('push.aes.compressed.bizAck'));
    assert.equal(inflated.code, 'MPUSH_ERR_PROTOCOL');
    assert.deepEqual(bomb.host.written, [], 'no ack for a push that could not be read');

    const twice = readyBinary();
    const again = failure(twice.p, twice.host, vector('handshakeOk.packet.aes'));
    assert.equal(again.code, 'MPUSH_ERR_PROTOCOL');
    assert.match(again.message, /unexpected HANDSHAKE reply/);
  });

  it('reset() inside a callback drops the rest of that chunk; sessionIds keep counting', () => {
    const { p, host } = readyBinary();
    host.hooks.push = () => p.reset();
    p.receive(
      Buffer.concat([vector('push.aes.noAck'), vector('push.aes.autoAck'), vector('kick.packet.aes')]),
    );
    assert.deepEqual(
      host.takeEvents().map((e) => e[0]),
      ['push'],
    );
    assert.deepEqual(host.written, [], 'the AUTO_ACK push after the reset was never read');
    assert.equal(p.start(storedSession), 2, 'the next connection goes on numbering');
    assert.equal(p.state, 'fast-connecting');
  });

  it('decodePushes: false hands the content over as it travelled and opens it on demand', () => {
    const { p, host } = readyBinary({ profile: { decodePushes: false } });
    const packet = vector('push.aes.autoAck');
    p.receive(packet);
    assert.deepEqual(host.takeBytes(), vector('ack.packet'), 'still acked on receipt');
    const [[, push]] = host.takeEvents() as [
      [string, { content: Buffer; flags: number; sessionId: number; ackModel: 'auto' }],
    ];
    assert.deepEqual(push.content, packet.subarray(HEADER_LENGTH));
    assert.equal(p.openContent(push).toString(), 'hello mpush');
  });

  it('release() frees the cipher contexts and the session keeps working', () => {
    const { p, host } = readyBinary();
    p.receive(vector('push.aes.noAck'));
    p.release();
    p.bind('user-0', 'vip,beta');
    assert.deepEqual(host.takeBytes(), vector('bind.packet.aes'));
    host.takeEvents();
    p.receive(vector('push.aes.noAck'));
    assert.equal((host.takeEvents()[0]![1] as { content: Buffer }).content.toString(), 'hello mpush');
  });

  it('an exception thrown by a host callback is rethrown later and the decoder goes on', async (t) => {
    // The test runner's own handlers would report the rethrown error: take it here instead.
    const saved = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    t.after(() => {
      process.removeAllListeners('uncaughtException');
      for (const l of saved) process.on('uncaughtException', l);
    });
    const rethrown = new Promise<Error>((resolve) => process.once('uncaughtException', resolve));
    const { p, host } = readyBinary();
    const boom = new Error('listener bug');
    host.hooks.push = () => {
      throw boom;
    };
    p.receive(Buffer.concat([vector('push.aes.noAck'), vector('kick.packet.aes')]));
    assert.deepEqual(
      host.takeEvents().map((e) => e[0]),
      ['push', 'kick'],
    );
    assert.equal(p.state, 'ready');
    assert.equal(await rethrown, boom);
  });

  it('hands commands it does not handle to onPacket', () => {
    const { p, host } = readyBinary();
    const packet: Packet = { cmd: Command.CHAT, flags: 0, sessionId: 4, body: Buffer.from('x') };
    p.receive(encodePacket(packet));
    const [[name, got]] = host.takeEvents() as [[string, Packet]];
    assert.equal(name, 'packet');
    assert.deepEqual([got.cmd, got.sessionId, got.body.toString()], [Command.CHAT, 4, 'x']);
  });
});

describe('DeviceProtocol over the JSON wire (mpush-wire §10)', () => {
  const handshakeReply = frame(Command.HANDSHAKE, 1, {
    sessionId: 'ws-sess',
    heartbeat: 180_000,
    expireTime: 1_900_000_000_000,
  });

  it('handshake, bind and its OK, as MPush web clients write them', () => {
    const { p, host } = json();
    assert.equal(p.start(storedSession), 1, 'no fast connect on this wire: a handshake');
    assert.deepEqual(host.written, [
      '{"cmd":2,"flags":16,"sessionId":1,"body":{"deviceId":"web-1","osName":"web","osVersion":"Chrome","clientVersion":"1.0"}}',
    ]);
    host.written.length = 0;
    assert.equal(p.state, 'handshaking');
    p.receive(handshakeReply);
    assert.deepEqual(host.takeEvents(), [
      ['handshake', { sessionId: 'ws-sess', heartbeat: 180_000, expireTime: 1_900_000_000_000, fast: false }],
    ]);
    assert.equal(p.bind('u1', 'a,b', 'tok'), 2);
    assert.deepEqual(host.written, [
      '{"cmd":5,"flags":16,"sessionId":2,"body":{"userId":"u1","tags":"a,b","data":"tok"}}',
    ]);
    p.receive(frame(Command.OK, 2, { cmd: Command.BIND, code: 0, data: 'u1,3' }));
    assert.deepEqual(host.takeEvents(), [['ok', { cmd: Command.BIND, code: 0, data: 'u1,3', sessionId: 2 }]]);
    p.receive(handshakeReply);
    assert.deepEqual(host.takeEvents(), [], 'a second handshake reply means nothing');
    assert.equal(p.heartbeat(), false, 'no heartbeat frame on this wire');
    assert.equal(p.nextTimeout(), -1);
  });

  it('pushes with each ack model, kick, a refused bind, and an ACK as a plain packet', () => {
    const { p, host } = json();
    p.start();
    p.receive(handshakeReply);
    host.written.length = 0;
    host.takeEvents();

    p.receive(frame(Command.PUSH, 31, { content: 'héllo' }, Flags.JSON_BODY | Flags.AUTO_ACK));
    assert.deepEqual(host.log, [
      ['write', '{"cmd":23,"flags":16,"sessionId":31,"body":{}}'],
      [
        'push',
        { content: 'héllo', sessionId: 31, flags: Flags.JSON_BODY | Flags.AUTO_ACK, ackModel: 'auto' },
      ],
    ]);
    host.log.length = 0;
    host.written.length = 0;
    p.receive(frame(Command.PUSH, 32, { content: 'biz' }, Flags.JSON_BODY | Flags.BIZ_ACK));
    p.receive(frame(Command.PUSH, 33, { content: 'none' }));
    assert.deepEqual(host.written, []);
    assert.deepEqual(
      host.takeEvents().map((e) => (e[1] as { ackModel: string }).ackModel),
      ['biz', 'none'],
    );
    p.ack(32);
    assert.deepEqual(host.written, ['{"cmd":23,"flags":16,"sessionId":32,"body":{}}']);

    p.receive(frame(Command.KICK, 0, { deviceId: 'web-1', userId: 'u1' }));
    p.receive(frame(Command.ERROR, 5, { cmd: Command.BIND, code: -1, reason: 'invalid token' }));
    p.receive(frame(Command.ACK, 9, {}));
    const [kick, error, ack] = host.takeEvents();
    assert.deepEqual(kick, ['kick', { deviceId: 'web-1', userId: 'u1' }]);
    assert.deepEqual(error, [
      'serverError',
      { cmd: Command.BIND, code: -1, reason: 'invalid token', data: '', sessionId: 5 },
    ]);
    assert.equal(ack![0], 'packet');
    assert.equal(p.state, 'ready');
  });

  it('a frame that is not a packet is reported and skipped, the next one is read', () => {
    const { p, host } = json();
    p.start();
    p.receive(handshakeReply);
    host.takeEvents();
    p.receive('{"cmd":"nope"');
    const [[name, err, fatal]] = host.takeEvents();
    assert.deepEqual([name, fatal], ['error', false]);
    assert.equal((err as { code: string }).code, 'MPUSH_ERR_PROTOCOL');
    assert.match((err as Error).message, /^bad frame from the server: /);
    p.receive(frame(Command.PUSH, 1, { content: 'after' }));
    assert.equal((host.takeEvents()[0]![1] as { content: string }).content, 'after');
  });

  it('OK {cmd: HANDSHAKE} answers the handshake; an ERROR with its sessionId refuses it', () => {
    const ok = json();
    ok.p.start();
    ok.p.receive(frame(Command.OK, 1, { cmd: Command.HANDSHAKE, code: 0 }));
    assert.equal(ok.host.takeEvents()[0]![0], 'handshake');
    assert.equal(ok.p.state, 'ready');

    const refused = json();
    refused.p.start();
    refused.p.receive(frame(Command.ERROR, 1, { code: ErrorCode.DISPATCH_ERROR, reason: 'bad' }));
    const [serverError, [name, err, fatal]] = refused.host.takeEvents() as unknown as [unknown[], unknown[]];
    assert.equal(serverError[0], 'serverError');
    assert.deepEqual([name, fatal, refused.p.state], ['error', true, 'failed']);
    assert.equal((err as { code: string }).code, 'MPUSH_ERR_HANDSHAKE');
  });
});
