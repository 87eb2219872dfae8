import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { ClientType, Command, Flags } from '../../src/protocol/index.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait.js';

interface Frame {
  cmd: number;
  flags: number;
  sessionId: number;
  body: Record<string, unknown>;
}

/** A WebSocket device speaking MPush's JSON protocol, recording what it receives. */
class JsonDevice {
  frames: Frame[] = [];
  closeCode = 0;
  private seq = 0;
  constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => this.frames.push(JSON.parse(d.toString())));
    ws.on('close', (code) => {
      this.closeCode = code;
    });
  }
  static open(port: number): Promise<JsonDevice> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
      const d = new JsonDevice(ws);
      ws.once('open', () => resolve(d));
      ws.once('error', reject);
    });
  }
  send(cmd: number, body: Record<string, unknown>, raw?: string): number {
    const sessionId = ++this.seq;
    this.ws.send(raw ?? JSON.stringify({ cmd, flags: Flags.JSON_BODY, sessionId, body }));
    return sessionId;
  }
  async next(pred: (f: Frame) => boolean, what: string): Promise<Frame> {
    let found: Frame | undefined;
    await waitFor(
      () => {
        const i = this.frames.findIndex(pred);
        if (i >= 0) found = this.frames.splice(i, 1)[0];
        return found !== undefined;
      },
      3000,
      what,
    );
    return found!;
  }
  reply(sessionId: number): Promise<Frame> {
    return this.next((f) => f.sessionId === sessionId, `reply to ${sessionId}`);
  }
}

describe('WebSocket JSON protocol (mpush-wire §10)', () => {
  let t: TestNode;
  const open: JsonDevice[] = [];
  const device = async () => {
    const d = await JsonDevice.open(t.httpPort);
    open.push(d);
    return d;
  };
  before(async () => {
    t = await startTestNode({ heartbeat: { tickMs: 20 } });
  });
  after(async () => {
    for (const d of open) d.ws.terminate();
    await t.stop();
  });

  it('handshakes and binds', async () => {
    const d = await device();
    const hs = await d.reply(
      d.send(Command.HANDSHAKE, {
        deviceId: 'web-1',
        osName: 'web',
        osVersion: 'chrome',
        clientVersion: '1',
      }),
    );
    assert.equal(hs.cmd, Command.HANDSHAKE);
    assert.equal(hs.body.heartbeat, 180_000);
    assert.equal(typeof hs.body.sessionId, 'string');
    const ok = await d.reply(d.send(Command.BIND, { userId: 'wu1', tags: 'a', data: '' }));
    assert.equal(ok.cmd, Command.OK);
    assert.deepEqual(ok.body, { cmd: Command.BIND, code: 0, data: `wu1,${ClientType.WEB}` });
    assert.ok(t.node.connections.router.get('wu1', ClientType.WEB));
  });

  it('kicks the previous web device of the same user', async () => {
    const a = await device();
    const b = await device();
    await a.reply(a.send(Command.HANDSHAKE, { deviceId: 'wa', osName: 'web' }));
    await a.reply(a.send(Command.BIND, { userId: 'wu2' }));
    await b.reply(b.send(Command.HANDSHAKE, { deviceId: 'wb', osName: 'web' }));
    await b.reply(b.send(Command.BIND, { userId: 'wu2' }));
    const kick = await a.next((f) => f.cmd === Command.KICK, 'kick');
    assert.deepEqual(kick.body, { deviceId: 'wa', userId: 'wu2' });
    assert.equal(a.ws.readyState, WebSocket.OPEN);
  });

  it('delivers pushes as text with ack flags, and takes the ack', async () => {
    const d = await device();
    await d.reply(d.send(Command.HANDSHAKE, { deviceId: 'wp', osName: 'h5' }));
    await d.reply(d.send(Command.BIND, { userId: 'wu3' }));
    const acks: number[] = [];
    t.node.connections.context.ackListener = (_c, sid) => acks.push(sid);
    const conn = t.node.connections.router.get('wu3', ClientType.WEB)!;
    conn.send({ cmd: Command.PUSH, sessionId: 77, flags: Flags.BIZ_ACK, content: Buffer.from('héllo') });
    const push = await d.next((f) => f.cmd === Command.PUSH, 'push');
    assert.equal(push.body.content, 'héllo');
    assert.equal(push.flags, Flags.JSON_BODY | Flags.BIZ_ACK);
    d.ws.send(JSON.stringify({ cmd: Command.ACK, flags: Flags.JSON_BODY, sessionId: 77, body: {} }));
    await waitFor(() => acks.includes(77), 3000, 'ack');
    t.node.connections.context.ackListener = undefined;
  });

  it('refuses a bind before the handshake and closes', async () => {
    const d = await device();
    const err = await d.reply(d.send(Command.BIND, { userId: 'x' }));
    assert.equal(err.cmd, Command.ERROR);
    assert.equal(err.body.reason, 'not handshake');
    await waitFor(() => d.closeCode !== 0, 3000, 'close');
  });

  it('closes a connection sending a frame that is not a packet, others unaffected', async () => {
    const bad = await device();
    const good = await device();
    bad.send(0, {}, '{"cmd":"nope"');
    const err = await bad.next((f) => f.cmd === Command.ERROR, 'error');
    assert.match(String(err.body.reason), /not JSON/);
    await waitFor(() => bad.closeCode === 4004, 3000, 'protocol-error close');
    await good.reply(good.send(Command.HANDSHAKE, { deviceId: 'ok', osName: 'web' }));
  });

  it('answers an unsupported command with 101 and closes', async () => {
    const d = await device();
    await d.reply(d.send(Command.HANDSHAKE, { deviceId: 'wu', osName: 'web' }));
    const err = await d.reply(d.send(Command.GATEWAY_PUSH, {}));
    assert.equal(err.body.code, 101);
    await waitFor(() => d.closeCode === 4005, 3000, 'close');
  });

  it('closes a message larger than limits.wsMaxPayload', async () => {
    const d = await device();
    d.ws.send('x'.repeat(t.config.limits.wsMaxPayload + 1));
    await waitFor(() => d.closeCode === 1009, 3000, 'close 1009');
  });
});

describe('WebSocket liveness', () => {
  it('pings an idle device: one that answers pongs stays, one that cannot is closed', async () => {
    const t = await startTestNode({
      heartbeat: { minMs: 150, maxMs: 150, graceMs: 50, tickMs: 20, maxTimeouts: 2 },
    });
    try {
      const alive = await JsonDevice.open(t.httpPort); // ws answers pings automatically
      await alive.reply(alive.send(Command.HANDSHAKE, { deviceId: 'alive', osName: 'web' }));
      const dead = await JsonDevice.open(t.httpPort);
      await dead.reply(dead.send(Command.HANDSHAKE, { deviceId: 'dead', osName: 'web' }));
      // A frozen peer: stop reading, so pings go unanswered.
      const sock = (dead.ws as unknown as { _socket: import('node:net').Socket })._socket;
      sock.pause();
      sock.removeAllListeners('data');
      await waitFor(
        () => (t.node.connections.stats.closed['heartbeat-timeout'] ?? 0) === 1,
        5000,
        'dead closed',
      );
      assert.equal(alive.ws.readyState, WebSocket.OPEN);
      alive.ws.terminate();
      dead.ws.terminate();
    } finally {
      await t.stop();
    }
  });
});
