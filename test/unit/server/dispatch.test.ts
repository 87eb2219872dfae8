import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Disconnect } from '../../../src/connection/index.js';
import {
  BindUserCodec,
  Command,
  ErrorCode,
  ErrorCodec,
  encodeJsonPacket,
  encodePacket,
  FastConnectCodec,
  Flags,
  type Packet,
} from '../../../src/protocol/index.js';
import { type MemoryDevice, type MemoryServer, memoryServer } from '../../helpers/memory-server.js';
import { waitFor } from '../../helpers/wait.js';

/** The exact frame MPush sends for a command that needs a handshake, before one (mpush-wire §12). */
function notHandshakeFrame(cmd: number, sessionId: number): Buffer {
  return encodePacket({
    cmd: Command.ERROR,
    flags: 0,
    sessionId,
    body: ErrorCodec.encode({ cmd, code: 0, reason: 'not handshake', data: '' }),
  });
}

function errorOf(p: Packet) {
  assert.equal(p.cmd, Command.ERROR);
  assert.equal(p.flags, 0, 'an ERROR is never encrypted');
  return ErrorCodec.decode(p.body);
}

const NEEDS_HANDSHAKE = [
  ['BIND', Command.BIND],
  ['UNBIND', Command.UNBIND],
  ['ACK', Command.ACK],
  ['PUSH', Command.PUSH],
] as const;

describe('dispatch: the handshake precondition, checked once before the switch', () => {
  let s: MemoryServer;
  beforeEach(() => {
    s = memoryServer();
  });
  afterEach(() => s.close());

  for (const [name, cmd] of NEEDS_HANDSHAKE) {
    it(`binary ${name} before a handshake: the exact ERROR, then close, the body never decoded`, () => {
      const acks: number[] = [];
      s.server.context.ackListener = (_c, sid) => acks.push(sid);
      const d = s.connect();
      // A body that does not decode (nor decrypt): the check must come before either.
      d.send(cmd, Buffer.from([0x7f, 0xff, 0x01]), { sessionId: 4242, flags: Flags.CRYPTO, encrypt: false });
      assert.deepEqual(d.transport.writes, [notHandshakeFrame(cmd, 4242)]);
      assert.equal(d.conn.closed, true);
      assert.equal(d.conn.closeReason, Disconnect.NOT_HANDSHAKED);
      assert.deepEqual(d.transport.closedBy, {
        code: Disconnect.NOT_HANDSHAKED.wsCode,
        reason: Disconnect.NOT_HANDSHAKED.name,
        destroyed: false,
      });
      assert.deepEqual(acks, [], 'no handler ran');
      assert.equal(s.server.stats.protocolErrors, 0, 'not counted as bad input');
    });

    it(`JSON ${name} before a handshake: the exact ERROR, then close, the fields never read`, () => {
      const d = s.connect('json');
      // userId / content of the wrong type: reading them would be bad input, not "not handshake".
      d.sendJson(cmd, { userId: 5, content: 6 }, 77);
      assert.deepEqual(d.transport.writes, [
        encodeJsonPacket(Command.ERROR, 77, { cmd, code: 0, reason: 'not handshake', data: '' }),
      ]);
      assert.equal(d.conn.closeReason, Disconnect.NOT_HANDSHAKED);
    });
  }

  it('lets a handshake-free command through before the handshake', () => {
    const d = s.connect();
    d.send(Command.HEARTBEAT, Buffer.alloc(0));
    assert.equal(d.transport.heartbeats, 1);
    assert.equal(d.conn.closed, false);
  });

  it('lets BIND, ACK and PUSH reach their handlers once handshaken', () => {
    const acks: number[] = [];
    s.server.context.ackListener = (_c, sid) => acks.push(sid);
    const d = s.connect();
    d.handshake(s.publicKey);
    assert.ok(d.bind('u1').ok);
    d.send(Command.ACK, Buffer.alloc(0), { sessionId: 9, encrypt: false });
    assert.deepEqual(acks, [9]);
    d.send(Command.PUSH, Buffer.from('hi'), { flags: Flags.AUTO_ACK, sessionId: 10 });
    assert.equal(d.transport.take(Command.ACK).sessionId, 10);
    assert.equal(d.conn.closed, false);
  });
});

describe('dispatch: what has no handler, and handlers that fail', () => {
  let s: MemoryServer;
  let d: MemoryDevice;
  beforeEach(() => {
    s = memoryServer();
    d = s.connect();
    d.handshake(s.publicKey);
  });
  afterEach(() => s.close());

  it('answers an unsupported command with ERROR 101 and closes', () => {
    d.send(Command.GATEWAY_CHAT, Buffer.from('x'), { sessionId: 31, encrypt: false });
    const err = errorOf(d.transport.take(Command.ERROR));
    assert.deepEqual(err, {
      cmd: Command.GATEWAY_CHAT,
      code: ErrorCode.UNSUPPORTED_CMD,
      reason: 'unsupported command',
      data: '',
    });
    assert.equal(d.conn.closeReason, Disconnect.UNSUPPORTED_CMD);
    assert.equal(s.server.stats.unsupported, 1);
  });

  it('answers an unsupported command before any handshake with 101 too, not "not handshake"', () => {
    const fresh = s.connect();
    fresh.send(Command.CHAT, Buffer.alloc(0), { sessionId: 3 });
    assert.equal(errorOf(fresh.transport.take(Command.ERROR)).code, ErrorCode.UNSUPPORTED_CMD);
    assert.equal(fresh.conn.closeReason, Disconnect.UNSUPPORTED_CMD);
  });

  it('answers an unsupported JSON command with ERROR 101 and closes', () => {
    const j = s.connect('json');
    j.sendJson(Command.CHAT, {}, 8);
    const err = j.transport.takeText(Command.ERROR);
    assert.equal(err.sessionId, 8);
    assert.deepEqual(err.body, {
      cmd: Command.CHAT,
      code: ErrorCode.UNSUPPORTED_CMD,
      reason: 'unsupported command',
      data: '',
    });
    assert.equal(j.conn.closeReason, Disconnect.UNSUPPORTED_CMD);
  });

  it('a handler that throws: ERROR 100 "internal error" and a DISPATCH_ERROR close', () => {
    s.server.events.on('devicePush', () => {
      throw new Error('listener bug');
    });
    d.send(Command.PUSH, Buffer.from('boom'), { sessionId: 12 });
    const err = errorOf(d.transport.take(Command.ERROR));
    assert.deepEqual(err, {
      cmd: Command.PUSH,
      code: ErrorCode.DISPATCH_ERROR,
      reason: 'internal error',
      data: '',
    });
    assert.equal(d.conn.closeReason, Disconnect.DISPATCH_ERROR);
    assert.equal(s.server.stats.protocolErrors, 0, 'our failure, not bad input');
  });

  it('a JSON handler that throws: the same ERROR and close', () => {
    s.server.events.on('devicePush', () => {
      throw new Error('listener bug');
    });
    const j = s.connect('json');
    j.sendJson(Command.HANDSHAKE, { deviceId: 'w1' });
    j.transport.takeText(Command.HANDSHAKE);
    j.sendJson(Command.PUSH, { content: 'x' }, 5);
    assert.deepEqual(j.transport.takeText(Command.ERROR).body, {
      cmd: Command.PUSH,
      code: ErrorCode.DISPATCH_ERROR,
      reason: 'internal error',
      data: '',
    });
    assert.equal(j.conn.closeReason, Disconnect.DISPATCH_ERROR);
  });

  it('bad input (a truncated body): ERROR with its code and message, and a PROTOCOL_ERROR close', () => {
    // userId declared 5 bytes long, 1 present.
    d.send(Command.BIND, Buffer.from([0x00, 0x05, 0x61]), { sessionId: 21, encrypt: false });
    const err = errorOf(d.transport.take(Command.ERROR));
    assert.equal(err.cmd, Command.BIND);
    assert.equal(err.code, ErrorCode.DISPATCH_ERROR);
    assert.match(err.reason, /./);
    assert.equal(d.conn.closeReason, Disconnect.PROTOCOL_ERROR);
    assert.equal(s.server.stats.protocolErrors, 1);
  });

  it('bad input (cipher text that does not decrypt): the same answer', () => {
    d.send(Command.UNBIND, Buffer.alloc(17, 1), { sessionId: 22, flags: Flags.CRYPTO, encrypt: false });
    const err = errorOf(d.transport.take(Command.ERROR));
    assert.equal(err.cmd, Command.UNBIND);
    assert.equal(err.code, ErrorCode.DISPATCH_ERROR);
    assert.equal(d.conn.closeReason, Disconnect.PROTOCOL_ERROR);
  });

  it('bad input on JSON (a field of the wrong type): ERROR naming the field, and close', () => {
    const j = s.connect('json');
    j.sendJson(Command.HANDSHAKE, { deviceId: 'w2' });
    j.transport.takeText(Command.HANDSHAKE);
    j.sendJson(Command.BIND, { userId: 42 }, 6);
    const err = j.transport.takeText(Command.ERROR);
    assert.equal(err.sessionId, 6);
    assert.equal(err.body.code, ErrorCode.DISPATCH_ERROR);
    assert.equal(err.body.reason, 'body.userId must be a string');
    assert.equal(j.conn.closeReason, Disconnect.PROTOCOL_ERROR);
  });
});

describe('dispatch: packets held during a fast connect (limits.fastConnectQueue)', () => {
  const QUEUE = 4;
  let s: MemoryServer;
  let session: { id: string; device: MemoryDevice };
  beforeEach(() => {
    s = memoryServer({ limits: { fastConnectQueue: QUEUE } });
    const first = s.connect();
    const ok = first.handshake(s.publicKey, { deviceId: 'dev-fc' });
    first.conn.close(Disconnect.REMOTE_CLOSED);
    session = { id: ok.sessionId, device: first };
  });
  afterEach(() => s.close());

  /** A new connection that resumes the session: its cipher is the first connection's. */
  function resume() {
    const d = s.connect();
    const fc = d.frame(
      Command.FAST_CONNECT,
      FastConnectCodec.encode({
        sessionId: session.id,
        deviceId: 'dev-fc',
        minHeartbeat: 0,
        maxHeartbeat: 0,
      }),
      { encrypt: false, sessionId: 1 },
    );
    d.cipher = session.device.cipher;
    return { d, fc };
  }

  const bindFrame = (d: MemoryDevice, userId: string, sessionId: number) =>
    d.frame(Command.BIND, BindUserCodec.encode({ userId, data: '', tags: '' }), { sessionId });

  it('replays what came during the lookup, in order, once the session is restored', async () => {
    const { d, fc } = resume();
    const binds = [10, 11, 12, 13].map((sid, i) => bindFrame(d, `u${i}`, sid));
    const chunk = Buffer.concat([fc, ...binds]);
    d.transport.feed(chunk);
    // A transport may reuse its read buffer once receive() returns: what is held must be a copy.
    chunk.fill(0);
    assert.equal(d.transport.packets.length, 0, 'held: nothing answered before the lookup ends');
    await waitFor(() => d.transport.packets.length === 5, 3000, 'the fast connect and 4 binds answered');
    const [first, ...rest] = d.transport.packets;
    assert.equal(first!.cmd, Command.FAST_CONNECT);
    assert.deepEqual(
      rest.map((p) => [p.cmd, p.sessionId]),
      [
        [Command.OK, 10],
        [Command.OK, 11],
        [Command.OK, 12],
        [Command.OK, 13],
      ],
      'every held BIND succeeded (the handshake precondition holds by then), in arrival order',
    );
    // The last bind of the connection wins its binding.
    assert.equal(d.conn.userId, 'u3');
    assert.equal(d.conn.held, null);
  });

  it('holds exactly limits.fastConnectQueue packets; one more is refused and closes', async () => {
    const { d, fc } = resume();
    const binds = [10, 11, 12, 13, 14].map((sid, i) => bindFrame(d, `u${i}`, sid));
    d.transport.feed(Buffer.concat([fc, ...binds]));
    assert.equal(d.conn.closed, true, 'the fifth packet closed it at once');
    assert.equal(d.conn.closeReason, Disconnect.PROTOCOL_ERROR);
    const refused = d.transport.take(Command.ERROR);
    assert.equal(refused.sessionId, 14, 'the packet one past the queue is the one refused');
    const err = errorOf(refused);
    assert.equal(err.cmd, Command.BIND);
    assert.equal(err.reason, 'too many packets during fast connect');
    assert.equal(d.transport.packets.length, 0, 'the ERROR is all that was written');
    // The lookup ends on a closed connection: nothing more is written, nothing held is replayed.
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(d.transport.packets, []);
    assert.equal(s.server.router.onlineUsers, 0);
  });
});
