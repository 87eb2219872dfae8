import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it, mock } from 'node:test';
import { GatewayPool } from '../../../src/client/push/gateway-pool.js';
import { PushRequest, type RequestHost } from '../../../src/client/push/push-request.js';
import { PushSender } from '../../../src/client/push/push-sender.js';
import type { RouteEntry, RouteSource } from '../../../src/client/push/route-source.js';
import type { PushResult } from '../../../src/client/push/types.js';
import {
  Command,
  ErrorCode,
  ErrorCodec,
  encodePacket,
  FrameDecoder,
  GatewayPushCodec,
  OkCodec,
  type Packet,
} from '../../../src/protocol/index.js';
import { DeadlineQueue } from '../../../src/util/deadline-queue.js';
import { waitFor } from '../../helpers/wait.js';

/**
 * A gateway on port 0 that records every packet it reads and answers only when the test says:
 * the test decides which completion comes first.
 */
class CapturingGateway {
  readonly packets: Packet[] = [];
  private readonly sockets: Socket[] = [];
  private server: Server | undefined;
  /** Answers a GATEWAY_PUSH as it arrives; none by default. */
  autoReply: ((p: Packet) => Buffer) | undefined;
  port = 0;

  async listen(): Promise<void> {
    const server = createServer((socket) => {
      this.sockets.push(socket);
      socket.on('error', () => {});
      const decoder = new FrameDecoder({
        onPacket: (p) => {
          this.packets.push(p);
          if (this.autoReply) socket.write(this.autoReply(p));
        },
        onHeartbeat: () => {},
      });
      socket.on('data', (chunk) => decoder.push(chunk));
    });
    this.server = server;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    this.port = (server.address() as { port: number }).port;
  }

  async nextPush(): Promise<Packet> {
    const seen = this.packets.length;
    await waitFor(() => this.packets.length > seen, 5000, 'a GATEWAY_PUSH at the gateway');
    const p = this.packets[this.packets.length - 1]!;
    assert.equal(p.cmd, Command.GATEWAY_PUSH);
    return p;
  }

  /** Writes a reply on every open connection (there is one per test). */
  write(frame: Buffer): void {
    for (const s of this.sockets) s.write(frame);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

function ok(sessionId: number): Packet {
  return {
    cmd: Command.OK,
    flags: 0,
    sessionId,
    body: OkCodec.encode({ cmd: Command.GATEWAY_PUSH, code: 0, data: '' }),
  };
}

function error(sessionId: number, code: number): Packet {
  return {
    cmd: Command.ERROR,
    flags: 0,
    sessionId,
    body: ErrorCodec.encode({ cmd: Command.GATEWAY_PUSH, code, reason: `code ${code}`, data: '' }),
  };
}

/** The sender side of a request, recording each completion it is handed. */
class RecordingHost implements RequestHost {
  readonly maxRedirects = 3;
  readonly completions: PushResult[] = [];
  readonly deadlines: DeadlineQueue;
  constructor(private readonly gateway: GatewayPool) {
    this.deadlines = gateway.deadlines;
  }
  pool(): GatewayPool {
    return this.gateway;
  }
  async relookup(): Promise<RouteEntry | undefined> {
    return undefined;
  }
  dropRoute(): void {}
  complete(_request: PushRequest, result: PushResult): void {
    this.completions.push(result);
  }
}

/** Lets queued I/O and timers of the current moment run, so a second completion would land. */
function settle(): Promise<void> {
  return new Promise((r) => setTimeout(r, 20));
}

describe('PushRequest ends in exactly one result, the first', () => {
  const gw = new CapturingGateway();
  let channel: GatewayPool;
  let route: RouteEntry;

  before(async () => {
    await gw.listen();
    channel = new GatewayPool(
      '127.0.0.1',
      gw.port,
      {
        connectTimeoutMs: 3000,
        maxPacketSize: 1 << 20,
        maxOutboundBytes: 1 << 24,
        drainTimeoutMs: 10_000,
        heartbeatMs: 0,
        heartbeatTimeoutMs: 0,
        connectionsPerGateway: 1,
        reconnectMinMs: 100,
        reconnectMaxMs: 1000,
      },
      { deadlines: new DeadlineQueue(10), log: { error() {}, warn() {} } },
      false,
    );
    route = { clientType: 1, host: '127.0.0.1', port: gw.port, connId: 'n:1' };
  });
  after(async () => {
    channel.close();
    await gw.close();
  });

  function request(host: RequestHost, timeoutMs: number): PushRequest {
    return new PushRequest(host, 'u', 1, route, Buffer.from('x'), 0, timeoutMs, 'm-1', null);
  }

  it('an OK after the timeout is dropped: one result, timeout', async () => {
    const host = new RecordingHost(channel);
    const req = request(host, 50);
    req.start();
    const push = await gw.nextPush(); // never answered: the timer ends the request
    await waitFor(() => host.completions.length > 0, 5000, 'the timeout');
    // The channel forgets a timed-out request; an OK racing that is what the request must drop.
    req.onReply(ok(push.sessionId));
    await settle();
    assert.deepEqual(
      host.completions.map((r) => r.result),
      ['timeout'],
    );
  });

  it('an ERROR after an OK is dropped: one result, success', async () => {
    const host = new RecordingHost(channel);
    const req = request(host, 10_000);
    req.start();
    const push = await gw.nextPush();
    gw.write(encodePacket(ok(push.sessionId)));
    await waitFor(() => host.completions.length > 0, 5000, 'the OK');
    req.onReply(error(push.sessionId, ErrorCode.PUSH_CLIENT_FAILURE));
    await settle();
    assert.deepEqual(
      host.completions.map((r) => r.result),
      ['success'],
    );
  });

  it('a channel close after a reply is dropped: one result, success', async () => {
    const host = new RecordingHost(channel);
    const req = request(host, 10_000);
    req.start();
    const push = await gw.nextPush();
    gw.write(encodePacket(ok(push.sessionId)));
    await waitFor(() => host.completions.length > 0, 5000, 'the OK');
    req.onChannelClosed('gateway connection lost');
    await settle();
    assert.deepEqual(
      host.completions.map((r) => r.result),
      ['success'],
    );
    assert.equal(host.completions[0]!.reason, undefined);
  });

  it('a reply after a channel close is dropped: one result, failure', async () => {
    const host = new RecordingHost(channel);
    const req = request(host, 10_000);
    req.start();
    const push = await gw.nextPush();
    req.onChannelClosed('gateway connection lost');
    req.onReply(ok(push.sessionId));
    await settle();
    assert.deepEqual(
      host.completions.map((r) => [r.result, r.reason]),
      [['failure', 'gateway connection lost']],
    );
  });
});

describe('the gateway margin (DESIGN.md "The push path")', () => {
  const gw = new CapturingGateway();
  let sender: PushSender;

  before(async () => {
    await gw.listen();
    gw.autoReply = (p) => encodePacket(ok(p.sessionId));
    const routes: RouteSource = {
      lookup: async (userIds) =>
        new Map(
          userIds.map((u) => [u, [{ clientType: 1, host: '127.0.0.1', port: gw.port, connId: 'n:1' }]]),
        ),
    };
    sender = PushSender.create({ gateways: [{ host: '127.0.0.1', port: gw.port }], routeSource: routes });
    await sender.start();
  });
  after(async () => {
    await sender.stop();
    await gw.close();
  });

  it('GATEWAY_PUSH carries the caller timeout minus 500 ms, so the node answers first', async () => {
    // Only the clock is frozen (timers and sockets are real): no time passes between the request's
    // start and its write, so the field must be exactly the timeout less the margin.
    mock.timers.enable({ apis: ['Date'], now: 1_700_000_000_000 });
    try {
      const [r] = await sender.send({ userId: 'u', content: 'x', ackModel: 'BIZ_ACK', timeout: 3000 });
      assert.equal(r!.result, 'success');
      assert.equal(GatewayPushCodec.decode(gw.packets.at(-1)!.body).timeout, 2500);

      // A timeout within the margin still asks the node for something (1 ms), never 0 = its default.
      await sender.send({ userId: 'u', content: 'x', timeout: 300 });
      assert.equal(GatewayPushCodec.decode(gw.packets.at(-1)!.body).timeout, 1);
    } finally {
      mock.timers.reset();
    }
  });
});
