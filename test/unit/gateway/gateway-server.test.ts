import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { MemoryInboxStore } from '../../../src/cluster/inbox-store.js';
import { signGatewayAuth } from '../../../src/crypto/gateway-mac.js';
import { GatewayServer } from '../../../src/gateway/gateway-server.js';
import { silentLogger } from '../../../src/log.js';
import {
  BodyWriter,
  BroadcastAction,
  ClientType,
  Command,
  decodeHelloReply,
  ErrorCode,
  ErrorCodec,
  type ErrorMessage,
  ExtCommand,
  encodePacket,
  Flags,
  FrameDecoder,
  GATEWAY_EXT_VERSION,
  GatewayAuthCodec,
  GatewayHelloCodec,
  GatewayKickCodec,
  GatewayPushCodec,
  HEARTBEAT_FRAME,
  KickCodec,
  MessageStatusCodec,
  OkCodec,
  type OkMessage,
  type Packet,
} from '../../../src/protocol/index.js';
import { Inbox } from '../../../src/push/inbox.js';
import { waitFor } from '../../helpers/wait.js';
import { FailingRouteStore, type PushRig, pushMessage, pushRig } from '../push/push-rig.js';

/**
 * A push client at the packet level. The gateway's connections need a socket (GatewayConnection
 * writes to it directly), so this one side is a real TCP socket on port 0; the devices behind
 * the gateway are memory transports.
 */
class GatewayPeer {
  readonly packets: Packet[] = [];
  closed = false;
  private seq = 0;
  private readonly decoder = new FrameDecoder({ onPacket: (p) => this.packets.push(p), onHeartbeat() {} });

  private constructor(readonly socket: Socket) {
    socket.on('data', (c) => this.decoder.push(c));
    socket.on('close', () => {
      this.closed = true;
    });
    socket.on('error', () => {});
  }

  static open(port: number): Promise<GatewayPeer> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => resolve(new GatewayPeer(s)));
      s.once('error', reject);
    });
  }

  send(cmd: number, body: Buffer, flags = 0): number {
    const sessionId = ++this.seq;
    this.socket.write(encodePacket({ cmd, flags, sessionId, body }));
    return sessionId;
  }

  /** The reply (OK or ERROR) to `sessionId`. */
  async reply(sessionId: number): Promise<{ ok?: OkMessage; error?: ErrorMessage }> {
    let p: Packet | undefined;
    await waitFor(
      () => {
        const i = this.packets.findIndex((x) => x.sessionId === sessionId);
        if (i >= 0) p = this.packets.splice(i, 1)[0];
        return p !== undefined;
      },
      5000,
      `reply to ${sessionId}`,
    );
    return p!.cmd === Command.OK ? { ok: OkCodec.decode(p!.body) } : { error: ErrorCodec.decode(p!.body) };
  }

  /**
   * Says GATEWAY_HELLO, as mpush-ts's PushSender does: from here on, mpush-ts's replies.
   * @returns the login challenge, when the gateway has a secret and this connection is not in yet.
   */
  async hello(timePoints?: boolean): Promise<Buffer | undefined> {
    const m = timePoints === undefined ? { version: 1 } : { version: 1, timePoints };
    const { ok } = await this.reply(this.send(ExtCommand.GATEWAY_HELLO, GatewayHelloCodec.encode(m)));
    assert.ok(ok, 'hello answered OK');
    const reply = decodeHelloReply(ok.data);
    assert.equal(reply.version, GATEWAY_EXT_VERSION);
    return reply.nonce;
  }

  /** The next packet to arrive (any sessionId), raw. */
  async next(): Promise<Packet> {
    await waitFor(() => this.packets.length > 0, 5000, 'a packet');
    return this.packets.shift()!;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A gateway over a push rig, with an in-memory inbox. */
function gatewayOn(rig: PushRig): GatewayServer {
  const { config } = rig.s;
  return new GatewayServer({
    config,
    log: silentLogger,
    server: rig.s.server.context,
    push: rig.push,
    inbox: new Inbox({ config, log: silentLogger, store: new MemoryInboxStore(), push: rig.push }),
    routes: rig.routes,
  });
}

describe('GatewayServer packet handling (devices on memory transports)', () => {
  let rig: PushRig;
  let gw: GatewayServer;
  let peer: GatewayPeer;
  beforeEach(async () => {
    rig = pushRig({ gateway: { host: '127.0.0.1', port: 0, maxPacketSize: 4096 } });
    gw = gatewayOn(rig);
    peer = await GatewayPeer.open(await gw.listen());
    // mpush-ts's PushSender says hello; the plain MPush client has its own suite below.
    await peer.hello();
  });
  afterEach(async () => {
    peer.close();
    await gw.close();
    await rig.close();
  });

  const push = (m: Parameters<typeof pushMessage>[0], flags = 0) =>
    peer.send(Command.GATEWAY_PUSH, GatewayPushCodec.encode(pushMessage(m)), flags);

  it('GATEWAY_PUSH to a bound device: the PUSH, then OK with the node time points by name', async () => {
    const d = rig.bound('alice');
    const sid = push({ userId: 'alice', content: Buffer.from('hi') });
    const { ok } = await peer.reply(sid);
    assert.equal(ok?.cmd, Command.GATEWAY_PUSH);
    const data = JSON.parse(ok!.data) as {
      userId: string;
      clientType: number;
      timePoints: Record<string, number>;
    };
    assert.deepEqual([data.userId, data.clientType], ['alice', ClientType.MOBILE]);
    assert.deepEqual(Object.keys(data.timePoints), ['received', 'written']);
    assert.equal(d.open(d.transport.take(Command.PUSH)).toString(), 'hi');
    assert.equal(gw.stats.pushes, 1);
  });

  it('a hello asking for no time points: OK data {userId, clientType}, with the inbox extension too', async () => {
    await peer.hello(false);
    rig.bound('quiet');
    const { ok } = await peer.reply(push({ userId: 'quiet' }));
    assert.equal(ok!.data, `{"userId":"quiet","clientType":${ClientType.MOBILE}}`);
    const ext = { messageId: 'q1' };
    const { ok: kept } = await peer.reply(push({ userId: 'quiet', ext }));
    assert.deepEqual(Object.keys(JSON.parse(kept!.data)), ['userId', 'clientType', 'messageId', 'stored']);
    // Asking again for them: they are back.
    await peer.hello(true);
    const { ok: again } = await peer.reply(push({ userId: 'quiet' }));
    assert.deepEqual(Object.keys(JSON.parse(again!.data)), ['userId', 'clientType', 'timePoints']);
  });

  it('GATEWAY_PUSH with AUTO_ACK: OK only after the device acks', async () => {
    const d = rig.bound('bob');
    const sid = push({ userId: 'bob' }, Flags.AUTO_ACK);
    await waitFor(() => d.transport.packets.length > 0, 3000, 'the push to reach the device');
    const p = d.transport.take(Command.PUSH);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(peer.packets.length, 0, 'no reply before the ack');
    d.send(Command.ACK, Buffer.alloc(0), { sessionId: p.sessionId, encrypt: false });
    assert.ok((await peer.reply(sid)).ok);
  });

  it('GATEWAY_PUSH to nobody: ERROR 1 (offline) with the request sessionId', async () => {
    const { error } = await peer.reply(push({ userId: 'nobody' }));
    assert.deepEqual([error?.cmd, error?.code], [Command.GATEWAY_PUSH, ErrorCode.OFFLINE]);
  });

  it('GATEWAY_PUSH unacked: ERROR 4 (ack timeout)', async () => {
    rig.bound('carol');
    const { error } = await peer.reply(push({ userId: 'carol', timeout: 20 }, Flags.BIZ_ACK));
    assert.equal(error?.code, ErrorCode.ACK_TIMEOUT);
  });

  it('a broadcast (no userId): OK with the task report once it is done', async () => {
    rig.bound('b1');
    rig.bound('b2');
    const { ok } = await peer.reply(push({ taskId: 'task-1' }));
    const report = JSON.parse(ok!.data) as { taskId: string; status: string; sent: number };
    assert.deepEqual([report.taskId, report.status, report.sent], ['task-1', 'done', 2]);
    assert.equal(gw.stats.broadcasts, 1);
  });

  it('GATEWAY_KICK: the bound device gets KICK and is unbound; another deviceId is left alone', async () => {
    const d = rig.bound('dave');
    const kick = (deviceId: string) =>
      peer.send(
        Command.GATEWAY_KICK,
        GatewayKickCodec.encode({
          userId: 'dave',
          deviceId,
          connId: 'x',
          clientType: ClientType.MOBILE,
          targetServer: '127.0.0.1',
          targetPort: 0,
        }),
      );
    kick('some-other-device');
    const sid = push({ userId: 'dave' }); // replies in order: the kick above has been handled
    await peer.reply(sid);
    d.transport.take(Command.PUSH);
    assert.equal(rig.s.server.router.get('dave', ClientType.MOBILE), d.conn);
    assert.deepEqual(d.transport.packets, []);

    kick(d.conn.deviceId);
    await waitFor(() => d.transport.packets.length > 0, 3000, 'the KICK');
    assert.deepEqual(KickCodec.decode(d.open(d.transport.take(Command.KICK))), {
      deviceId: d.conn.deviceId,
      userId: 'dave',
    });
    assert.equal(rig.s.server.router.get('dave', ClientType.MOBILE), undefined);
    assert.equal(d.conn.closed, false, 'kicked, not disconnected (mpush-wire §12)');
  });

  it('GATEWAY_ROUTE_QUERY: the routes of each user, as JSON', async () => {
    const route = {
      host: '10.0.0.1',
      port: 3001,
      deviceId: 'd1',
      osName: 'android',
      clientVersion: '1',
      connId: 'n:1',
    };
    await rig.routes.register('erin', ClientType.MOBILE, route);
    const sid = peer.send(
      ExtCommand.GATEWAY_ROUTE_QUERY,
      new BodyWriter(64).writeString(JSON.stringify(['erin', 'nobody'])).finish(),
    );
    const { ok } = await peer.reply(sid);
    assert.deepEqual(JSON.parse(ok!.data), {
      erin: [{ clientType: ClientType.MOBILE, ...route }],
      nobody: [],
    });
    const bad = peer.send(ExtCommand.GATEWAY_ROUTE_QUERY, new BodyWriter(16).writeString('{}').finish());
    assert.equal((await peer.reply(bad)).error?.code, ErrorCode.UNKNOWN);
  });

  it('GATEWAY_BROADCAST_CONTROL: query and cancel a task; an unknown task is an ERROR', async () => {
    for (let i = 0; i < 5; i++) rig.bound(`r${i}`);
    push({ taskId: 'slow', broadcastRate: 1 });
    await waitFor(() => rig.push.task('slow') !== undefined, 3000, 'the task to start');
    const control = (taskId: string, action: number) =>
      peer.send(
        ExtCommand.GATEWAY_BROADCAST_CONTROL,
        new BodyWriter(32).writeString(taskId).writeByte(action).finish(),
      );
    const query = await peer.reply(control('slow', BroadcastAction.QUERY));
    assert.equal(JSON.parse(query.ok!.data).status, 'running');
    const cancel = await peer.reply(control('slow', BroadcastAction.CANCEL));
    assert.equal(JSON.parse(cancel.ok!.data).status, 'cancelled');
    const unknown = await peer.reply(control('no-such-task', BroadcastAction.QUERY));
    assert.deepEqual([unknown.error?.code, unknown.error?.reason], [ErrorCode.UNKNOWN, 'unknown task']);
  });

  it('an undecodable GATEWAY_PUSH: ERROR 100 as on the device port, and the connection stays', async () => {
    const sid = peer.send(Command.GATEWAY_PUSH, Buffer.from([0x00, 0x09, 0x61]));
    const { error } = await peer.reply(sid);
    assert.deepEqual([error?.cmd, error?.code], [Command.GATEWAY_PUSH, ErrorCode.DISPATCH_ERROR]);
    assert.ok((await peer.reply(push({ userId: 'nobody' }))).error, 'still answered');
    assert.equal(peer.closed, false);
  });

  it('an oversize packet: ERROR 2, and the connection stays (mpush-wire §12)', async () => {
    const sid = push({ userId: 'x', content: Buffer.alloc(8192) });
    const { error } = await peer.reply(sid);
    assert.equal(error?.code, ErrorCode.PUSH_CLIENT_FAILURE);
    assert.match(error!.reason, /gateway\.maxPacketSize/);
    assert.equal(gw.stats.oversized, 1);
    assert.ok((await peer.reply(push({ userId: 'nobody' }))).error, 'still answered');
  });

  it('an unsupported command: ERROR 101 and close', async () => {
    const { error } = await peer.reply(peer.send(Command.GATEWAY_CHAT, Buffer.alloc(0)));
    assert.equal(error?.code, ErrorCode.UNSUPPORTED_CMD);
    await waitFor(() => peer.closed, 3000, 'the close');
  });

  describe('inbox extension (push-ext.ts)', () => {
    it('a push without it gets exactly the replies of MPush push clients: no messageId, no data on ERROR', async () => {
      rig.bound('plain');
      const { ok } = await peer.reply(push({ userId: 'plain' }));
      assert.deepEqual(Object.keys(JSON.parse(ok!.data)), ['userId', 'clientType', 'timePoints']);
      const { error } = await peer.reply(push({ userId: 'nobody' }));
      assert.deepEqual([error?.code, error?.reason, error?.data], [ErrorCode.OFFLINE, 'offline', '']);
    });

    it('with it, OK names the messageId (the given one, else generated) and stored: false', async () => {
      rig.bound('ext');
      const given = await peer.reply(push({ userId: 'ext', ext: { messageId: 'm-1' } }));
      assert.deepEqual(JSON.parse(given.ok!.data).messageId, 'm-1');
      assert.equal(JSON.parse(given.ok!.data).stored, false);
      const generated = await peer.reply(push({ userId: 'ext', ext: {} }));
      assert.match(JSON.parse(generated.ok!.data).messageId, /^[0-9a-f-]{36}$/);
    });

    it('store: true to an offline user: ERROR 1 as before, its data says stored; the receipt is queryable', async () => {
      const { error } = await peer.reply(
        push({ userId: 'away', ext: { messageId: 'm-away', store: true, ttl: 60 } }, Flags.BIZ_ACK),
      );
      assert.deepEqual([error?.code, error?.reason], [ErrorCode.OFFLINE, 'offline']);
      assert.deepEqual(JSON.parse(error!.data), { messageId: 'm-away', stored: true });
      const status = await peer.reply(
        peer.send(ExtCommand.GATEWAY_MESSAGE_STATUS, MessageStatusCodec.encode({ messageId: 'm-away' })),
      );
      const r = JSON.parse(status.ok!.data);
      assert.equal(r.messageId, 'm-away');
      assert.deepEqual([r.users[0].userId, r.users[0].inbox], ['away', 'stored']);
      assert.equal(r.users[0].devices[0].state, 'stored', 'the targeted device type');
    });

    it('status of an unknown message: ERROR, the connection stays', async () => {
      const { error } = await peer.reply(
        peer.send(ExtCommand.GATEWAY_MESSAGE_STATUS, MessageStatusCodec.encode({ messageId: 'never' })),
      );
      assert.deepEqual([error?.code, error?.reason], [ErrorCode.UNKNOWN, 'unknown message']);
      rig.bound('still');
      assert.ok((await peer.reply(push({ userId: 'still' }))).ok);
    });

    it('a bad extension is answered with an ERROR naming it, the connection stays', async () => {
      const body = new BodyWriter(64)
        .writeBytes(GatewayPushCodec.encode(pushMessage({ userId: 'x' })))
        .finish()
        .subarray(2); // the push body as encoded, then a bad extension string
      const bad = Buffer.concat([body, new BodyWriter(16).writeString('{"store":1}').finish()]);
      const { error } = await peer.reply(peer.send(Command.GATEWAY_PUSH, bad));
      assert.match(error!.reason, /store must be true or false/);
      rig.bound('after');
      assert.ok((await peer.reply(push({ userId: 'after' }))).ok);
    });
  });
});

describe('GatewayServer: gateway.maxRouteQueryUsers caps a route query', () => {
  it('a query of exactly the cap is answered; one user more is refused, naming the key', async () => {
    const rig = pushRig({ gateway: { host: '127.0.0.1', port: 0, maxRouteQueryUsers: 3 } });
    const gw = gatewayOn(rig);
    const peer = await GatewayPeer.open(await gw.listen());
    try {
      const query = (n: number) =>
        peer.send(
          ExtCommand.GATEWAY_ROUTE_QUERY,
          new BodyWriter(64)
            .writeString(JSON.stringify(Array.from({ length: n }, (_, i) => `u${i}`)))
            .finish(),
        );
      const atCap = await peer.reply(query(3));
      assert.deepEqual(Object.keys(JSON.parse(atCap.ok!.data)).sort(), ['u0', 'u1', 'u2']);
      const over = await peer.reply(query(4));
      assert.equal(over.error?.code, ErrorCode.UNKNOWN);
      assert.match(over.error!.reason, /up to 3 user ids \(gateway\.maxRouteQueryUsers\)/);
      assert.equal(peer.closed, false, 'a refused query keeps the connection');
    } finally {
      peer.close();
      await gw.close();
      await rig.close();
    }
  });
});

/**
 * MPush 0.8.1's own PushClient never says GATEWAY_HELLO. It must get exactly what MPush's server
 * sends (mpush-wire §9, §12): OK / ERROR with MPush's reason texts and its GatewayPushResult JSON
 * (keys in fastjson's order, time points as a flat name/ms array with MPush's names), and nothing
 * at all on an ack timeout — MPush's client drops a request on any ERROR and handles only 1–3.
 */
describe('GatewayServer: a plain MPush push client gets MPush replies, byte for byte', () => {
  let rig: PushRig;
  let gw: GatewayServer;
  let peer: GatewayPeer;
  const start = async (opts: Parameters<typeof pushRig>[1] = {}) => {
    rig = pushRig({ gateway: { host: '127.0.0.1', port: 0 } }, opts);
    gw = gatewayOn(rig);
    peer = await GatewayPeer.open(await gw.listen());
  };
  afterEach(async () => {
    peer.close();
    await gw.close();
    await rig.close();
  });

  const push = (m: Parameters<typeof pushMessage>[0], flags = 0) =>
    peer.send(Command.GATEWAY_PUSH, GatewayPushCodec.encode(pushMessage(m)), flags);

  /** The times in a reply's data, so the expected bytes can be built with them. */
  const timesOf = (data: string): number[] =>
    (JSON.parse(data) as { timePoints: unknown[] }).timePoints.filter(
      (x): x is number => typeof x === 'number',
    );

  /** The exact packet MPush's server writes: OK or ERROR, flags 0, the request's sessionId. */
  function assertPacket(
    p: Packet,
    expected: { sessionId: number; ok?: string; error?: [number, string, string] },
  ) {
    const body =
      expected.ok !== undefined
        ? OkCodec.encode({ cmd: Command.GATEWAY_PUSH, code: 0, data: expected.ok })
        : ErrorCodec.encode({
            cmd: Command.GATEWAY_PUSH,
            code: expected.error![0],
            reason: expected.error![1],
            data: expected.error![2],
          });
    const cmd = expected.ok !== undefined ? Command.OK : Command.ERROR;
    assert.deepEqual(
      encodePacket({ cmd: p.cmd, flags: p.flags, sessionId: p.sessionId, body: p.body }),
      encodePacket({ cmd, flags: 0, sessionId: expected.sessionId, body }),
    );
  }

  /** The next packet is MPush's ERROR for `sid`: its code, reason text, and result JSON ending in `end`. */
  async function expectMPushError(
    sid: number,
    code: number,
    reason: string,
    end: string,
    user: string,
    type = 1,
  ) {
    const p = await peer.next();
    const [t0, t1] = timesOf(ErrorCodec.decode(p.body).data);
    const json = `{"clientType":${type},"timePoints":["push-center-begin",${t0},"${end}",${t1}],"userId":"${user}"}`;
    assertPacket(p, { sessionId: sid, error: [code, reason, json] });
  }

  it('NO_ACK success: OK with {"clientType","timePoints":[push-center-begin, before-send, success-end],"userId"}', async () => {
    await start();
    rig.bound('alice');
    const sid = push({ userId: 'alice' });
    const p = await peer.next();
    const [t0, t1, t2] = timesOf(OkCodec.decode(p.body).data);
    assertPacket(p, {
      sessionId: sid,
      ok: `{"clientType":1,"timePoints":["push-center-begin",${t0},"before-send",${t1},"success-end",${t2}],"userId":"alice"}`,
    });
    assert.ok(t0! <= t1! && t1! <= t2!);
  });

  it('AUTO_ACK success: the time points add waiting-ack, and success-end is the ack', async () => {
    await start();
    const d = rig.bound('bob');
    const sid = push({ userId: 'bob' }, Flags.AUTO_ACK);
    await waitFor(() => d.transport.packets.length > 0, 3000, 'the push to reach the device');
    d.send(Command.ACK, Buffer.alloc(0), {
      sessionId: d.transport.take(Command.PUSH).sessionId,
      encrypt: false,
    });
    const p = await peer.next();
    const [t0, t1, t2, t3] = timesOf(OkCodec.decode(p.body).data);
    assertPacket(p, {
      sessionId: sid,
      ok: `{"clientType":1,"timePoints":["push-center-begin",${t0},"before-send",${t1},"waiting-ack",${t2},"success-end",${t3}],"userId":"bob"}`,
    });
  });

  it('offline: ERROR 1 "user offline" with the result JSON ending in offline-end', async () => {
    await start();
    const sid = push({ userId: 'nobody' });
    await expectMPushError(sid, 1, 'user offline', 'offline-end', 'nobody');
  });

  it('router change: ERROR 3 "router change" ending in redirect-end', async () => {
    await start({ isRouteLive: () => true });
    await rig.routes.register('moved', ClientType.MOBILE, {
      host: '10.0.0.2',
      port: 3001,
      deviceId: 'd',
      osName: 'android',
      clientVersion: '1',
      connId: 'node-b:7',
    });
    const sid = push({ userId: 'moved' });
    await expectMPushError(sid, 3, 'router change', 'redirect-end', 'moved');
  });

  it('failure: ERROR 2 "push to client failure" ending in failure-end', async () => {
    await start({ routes: new FailingRouteStore() });
    const sid = push({ userId: 'anyone', clientType: ClientType.PC });
    await expectMPushError(sid, 2, 'push to client failure', 'failure-end', 'anyone', 2);
  });

  it('ack timeout: no reply at all (MPush sends none); the next push is answered', async () => {
    await start();
    rig.bound('carol');
    rig.bound('dan');
    push({ userId: 'carol', timeout: 20 }, Flags.BIZ_ACK);
    await waitFor(() => gw.stats.silentTimeouts === 1, 3000, 'the ack timeout');
    const next = push({ userId: 'dan' });
    const p = await peer.next();
    assert.deepEqual([p.cmd, p.sessionId], [Command.OK, next], 'the only packet is the next push reply');
    assert.equal(peer.packets.length, 0);
  });

  it('a finished broadcast: OK with no data', async () => {
    await start();
    rig.bound('b1');
    const sid = push({ taskId: 't' });
    assertPacket(await peer.next(), { sessionId: sid, ok: '' });
  });

  it('after GATEWAY_HELLO the same connection gets mpush-ts replies: ERROR 4 on an ack timeout', async () => {
    await start();
    rig.bound('erin');
    await peer.hello();
    const sid = push({ userId: 'erin', timeout: 20 }, Flags.BIZ_ACK);
    const { error } = await peer.reply(sid);
    assert.deepEqual([error?.code, error?.reason], [ErrorCode.ACK_TIMEOUT, 'ack timeout']);
    assert.equal(gw.stats.silentTimeouts, 0);
  });
});

describe('GatewayServer with gateway.secret: the login', () => {
  let rig: PushRig;
  let gw: GatewayServer;
  let peer: GatewayPeer;
  let bytes: number;
  let port: number;
  const SECRET = 'gw-secret';
  beforeEach(async () => {
    rig = pushRig({ gateway: { host: '127.0.0.1', port: 0, secret: SECRET, authTimeoutMs: 200 } });
    gw = gatewayOn(rig);
    port = await gw.listen();
    peer = await GatewayPeer.open(port);
    bytes = 0;
    peer.socket.on('data', (c: Buffer) => {
      bytes += c.length;
    });
  });
  afterEach(async () => {
    peer.close();
    await gw.close();
    await rig.close();
  });
  const login = async (p = peer) => {
    const nonce = await p.hello();
    assert.ok(nonce, 'the hello reply carries the challenge');
    return p.send(ExtCommand.GATEWAY_AUTH, GatewayAuthCodec.encode(signGatewayAuth(SECRET, 'test', nonce)));
  };

  it('each connection gets its own nonce; a proof over another one is refused and closed', async () => {
    const other = await GatewayPeer.open(port);
    try {
      const mine = await peer.hello();
      const theirs = await other.hello();
      assert.ok(mine && theirs);
      assert.notDeepEqual(mine, theirs);
      assert.deepEqual(await peer.hello(), mine, 'a second hello before auth: the same challenge');
      // The proof made for `other`'s challenge, replayed here.
      const proof = GatewayAuthCodec.encode(signGatewayAuth(SECRET, 'test', theirs));
      const { error } = await peer.reply(peer.send(ExtCommand.GATEWAY_AUTH, proof));
      assert.deepEqual([error?.code, error?.reason], [ErrorCode.UNKNOWN, 'bad gateway secret']);
      await waitFor(() => peer.closed, 3000, 'the close');
      assert.ok((await other.reply(other.send(ExtCommand.GATEWAY_AUTH, proof))).ok, 'good where it was made');
      assert.equal(await other.hello(), undefined, 'authenticated: no challenge any more');
      assert.equal(gw.stats.authFailures, 1);
    } finally {
      other.close();
    }
  });

  it('a GATEWAY_AUTH sent before any challenge (a version-1 client) is refused and closed', async () => {
    const proof = GatewayAuthCodec.encode(signGatewayAuth(SECRET, 'test', Buffer.alloc(32)));
    const { error } = await peer.reply(peer.send(ExtCommand.GATEWAY_AUTH, proof));
    assert.deepEqual(
      [error?.code, error?.reason],
      [ErrorCode.UNKNOWN, 'gateway auth needs the challenge of GATEWAY_HELLO first'],
    );
    await waitFor(() => peer.closed, 3000, 'the close');
  });

  it('a challenge is spent by the auth that answers it: the same proof again is refused', async () => {
    const nonce = await peer.hello();
    const proof = GatewayAuthCodec.encode(signGatewayAuth(SECRET, 'test', nonce!));
    assert.ok((await peer.reply(peer.send(ExtCommand.GATEWAY_AUTH, proof))).ok);
    const { error } = await peer.reply(peer.send(ExtCommand.GATEWAY_AUTH, proof));
    assert.equal(error?.reason, 'gateway auth needs the challenge of GATEWAY_HELLO first');
  });

  it('gateway.authTimeoutMs: a connection that never authenticates is closed, counted; heartbeats get no answer', async () => {
    peer.socket.write(HEARTBEAT_FRAME);
    await waitFor(() => peer.closed, 3000, 'the close at the auth deadline');
    assert.equal(bytes, 0, 'nothing answered before auth, not even the heartbeat');
    assert.equal(gw.stats.authTimeouts, 1);
  });

  it('an authenticated connection outlives the auth deadline, and its heartbeats are answered', async () => {
    assert.ok((await peer.reply(await login())).ok);
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(peer.closed, false);
    const before = bytes;
    peer.socket.write(HEARTBEAT_FRAME);
    await waitFor(() => bytes > before, 3000, 'the heartbeat echo');
    assert.equal(gw.stats.authTimeouts, 0);
  });

  it('a malformed GATEWAY_AUTH is refused, counted and closed', async () => {
    await peer.hello();
    const { error } = await peer.reply(peer.send(ExtCommand.GATEWAY_AUTH, Buffer.from([0x00, 0x09, 0x61])));
    assert.deepEqual([error?.code, error?.reason], [ErrorCode.UNKNOWN, 'malformed gateway auth']);
    await waitFor(() => peer.closed, 3000, 'the close');
    assert.equal(gw.stats.authFailures, 1);
  });
});
