import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { PushSender } from '../../src/client/push/push-sender.js';
import type { RouteSource } from '../../src/client/push/route-source.js';
import type { RouteEntry } from '../../src/client/push/types.js';
import {
  Command,
  decodeHelloReply,
  ErrorCodec,
  ExtCommand,
  encodePacket,
  FrameDecoder,
  GATEWAY_EXT_VERSION,
  GatewayHelloCodec,
  OkCodec,
  type Packet,
} from '../../src/protocol/index.js';
import { closeAll, connectDevice, type TestDevice } from '../helpers/devices.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait.js';

const SECRET = 'replay-test-secret';

/** Packets out of a byte stream (heartbeats dropped). */
function packetsOf(bytes: Buffer): Packet[] {
  const out: Packet[] = [];
  new FrameDecoder({ onPacket: (p) => out.push(p), onHeartbeat: () => {} }, { maxBodyLength: 1 << 20 }).push(
    bytes,
  );
  return out;
}

/** A TCP relay in front of the gateway that records every byte the push client sends. */
class RecordingRelay {
  readonly sent: Buffer[] = [];
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly target: number) {
    this.server = createServer((client) => {
      const upstream = connect({ host: '127.0.0.1', port: this.target });
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => this.sockets.delete(s));
      }
      client.on('data', (d: Buffer) => {
        this.sent.push(Buffer.from(d));
        upstream.write(d);
      });
      upstream.pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as { port: number }).port;
    return this.port;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** A raw connection to the gateway: what an attacker holding captured bytes would open. */
class RawGatewayClient {
  readonly packets: Packet[] = [];
  closed = false;
  readonly socket: Socket;
  private readonly decoder = new FrameDecoder(
    { onPacket: (p) => this.packets.push(p), onHeartbeat: () => {} },
    { maxBodyLength: 1 << 20 },
  );

  constructor(port: number) {
    this.socket = connect({ host: '127.0.0.1', port });
    this.socket.on('data', (d: Buffer) => this.decoder.push(d));
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      this.closed = true;
    });
  }

  async reply(cmd: number): Promise<{ ok: boolean; data: string; reason: string }> {
    let p: Packet | undefined;
    await waitFor(
      () => {
        const i = this.packets.findIndex(
          (x) => (x.cmd === Command.OK || x.cmd === Command.ERROR) && x.body.length > 0 && x.body[0] === cmd,
        );
        if (i >= 0) p = this.packets.splice(i, 1)[0];
        return p !== undefined || this.closed;
      },
      5000,
      `a reply to command ${cmd}`,
    );
    assert.ok(p, `no reply to command ${cmd} before the close`);
    if (p.cmd === Command.OK) return { ok: true, data: OkCodec.decode(p.body).data, reason: '' };
    const e = ErrorCodec.decode(p.body);
    return { ok: false, data: e.data, reason: e.reason };
  }

  async closedByGateway(): Promise<void> {
    await waitFor(() => this.closed, 5000, 'the gateway to close the connection');
  }
}

describe('gateway login: a captured GATEWAY_AUTH cannot be replayed', () => {
  let t: TestNode;
  let relay: RecordingRelay;
  let device: TestDevice;
  let gatewayPort: number;
  let captured: Packet[];
  let stream: Buffer;

  before(async () => {
    t = await startTestNode({ gateway: { secret: SECRET } });
    gatewayPort = t.node.addresses.gatewayPort;
    device = await connectDevice(t.tcpPort, 'u1');
    relay = new RecordingRelay(gatewayPort);
    // A real PushSender, through the relay: its login and its push are recorded on the way. It
    // reads the routes itself (as from Redis) and reaches the node's gateway at the relay.
    const relayPort = await relay.listen();
    const viaRelay: RouteSource = {
      lookup: async (userIds) => {
        const out = new Map<string, RouteEntry[]>();
        for (const u of userIds) {
          const routes = await t.node.stores.routes.lookup(u);
          out.set(
            u,
            [...routes].map(([clientType, r]) => ({
              clientType,
              host: '127.0.0.1',
              port: relayPort,
              connId: r.connId,
            })),
          );
        }
        return out;
      },
    };
    const sender = PushSender.create({
      gateways: [{ host: '127.0.0.1', port: relayPort }],
      routeSource: viaRelay,
      gatewaySecret: SECRET,
      clientId: 'biz-server',
    });
    await sender.start();
    try {
      const results = await sender.send({ userId: 'u1', content: 'original', ackModel: 'NO_ACK' });
      assert.deepEqual(
        results.map((r) => r.result),
        ['success'],
      );
    } finally {
      await sender.stop();
    }
    await waitFor(() => device.pushes.length === 1, 3000, 'the original push');
    stream = Buffer.concat(relay.sent);
    captured = packetsOf(stream);
  });
  after(async () => {
    await closeAll([device]);
    await relay.close();
    await t.stop();
  });

  const find = (cmd: number) => {
    const p = captured.find((x) => x.cmd === cmd);
    assert.ok(p, `the capture holds command ${cmd}`);
    return encodePacket(p);
  };

  it('the capture is a whole login and push: HELLO, AUTH, GATEWAY_PUSH, re-encoded byte for byte', () => {
    const cmds = captured.map((p) => p.cmd);
    assert.deepEqual(cmds, [ExtCommand.GATEWAY_HELLO, ExtCommand.GATEWAY_AUTH, Command.GATEWAY_PUSH]);
    assert.ok(
      stream.includes(find(ExtCommand.GATEWAY_AUTH)),
      'the replayed AUTH is the bytes that were sent',
    );
  });

  it('replaying the whole capture on a new connection: a fresh challenge, the old proof refused, closed', async () => {
    const failures = t.node.gateway.stats.authFailures;
    const c = new RawGatewayClient(gatewayPort);
    c.socket.write(stream);
    const hello = await c.reply(ExtCommand.GATEWAY_HELLO);
    assert.ok(hello.ok);
    const { version, nonce } = decodeHelloReply(hello.data);
    assert.equal(version, GATEWAY_EXT_VERSION);
    assert.ok(nonce && nonce.length === 32, 'a challenge for this connection');
    const auth = await c.reply(ExtCommand.GATEWAY_AUTH);
    assert.deepEqual([auth.ok, auth.reason], [false, 'bad gateway secret']);
    await c.closedByGateway();
    assert.equal(
      c.packets.filter((p) => p.body[0] === Command.GATEWAY_PUSH).length,
      0,
      'the push behind it is not answered',
    );
    assert.equal(t.node.gateway.stats.authFailures, failures + 1);
  });

  it('replaying the AUTH after asking a challenge of its own, then the push: refused, closed', async () => {
    const c = new RawGatewayClient(gatewayPort);
    c.socket.write(
      encodePacket({
        cmd: ExtCommand.GATEWAY_HELLO,
        flags: 0,
        sessionId: 9,
        body: GatewayHelloCodec.encode({ version: 2 }),
      }),
    );
    assert.ok((await c.reply(ExtCommand.GATEWAY_HELLO)).ok);
    c.socket.write(Buffer.concat([find(ExtCommand.GATEWAY_AUTH), find(Command.GATEWAY_PUSH)]));
    const auth = await c.reply(ExtCommand.GATEWAY_AUTH);
    assert.deepEqual([auth.ok, auth.reason], [false, 'bad gateway secret']);
    await c.closedByGateway();
  });

  it('replaying the AUTH and the push with no hello: refused, closed', async () => {
    const c = new RawGatewayClient(gatewayPort);
    c.socket.write(Buffer.concat([find(ExtCommand.GATEWAY_AUTH), find(Command.GATEWAY_PUSH)]));
    const auth = await c.reply(ExtCommand.GATEWAY_AUTH);
    assert.deepEqual(
      [auth.ok, auth.reason],
      [false, 'gateway auth needs the challenge of GATEWAY_HELLO first'],
    );
    await c.closedByGateway();
  });

  it('no replayed push reached the device: the next push it gets is a new legitimate one', async () => {
    const sender = PushSender.create({
      gateways: [{ host: '127.0.0.1', port: gatewayPort }],
      gatewaySecret: SECRET,
      clientId: 'biz-server',
    });
    await sender.start();
    try {
      const results = await sender.send({ userId: 'u1', content: 'marker', ackModel: 'NO_ACK' });
      assert.equal(results[0]!.result, 'success');
    } finally {
      await sender.stop();
    }
    await waitFor(() => device.pushes.length >= 2, 3000, 'the marker push');
    assert.deepEqual(
      device.pushes.map((p) => p.content.toString()),
      ['original', 'marker'],
    );
  });
});

describe('gateway login: a push client with a secret, a gateway without one', () => {
  it('gets no challenge in the hello reply and pushes at once', async () => {
    const t = await startTestNode();
    const device = await connectDevice(t.tcpPort, 'u1');
    const sender = PushSender.create({
      gateways: [{ host: '127.0.0.1', port: t.node.addresses.gatewayPort }],
      gatewaySecret: 'unneeded',
    });
    try {
      await sender.start();
      const results = await sender.send({ userId: 'u1', content: 'hi', ackModel: 'NO_ACK' });
      assert.equal(results[0]!.result, 'success');
      assert.equal(t.node.gateway.stats.authFailures, 0);
    } finally {
      await sender.stop();
      await closeAll([device]);
      await t.stop();
    }
  });
});
