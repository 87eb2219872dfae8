import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { PushSender } from '../../src/client/push/push-sender.js';
import type { RouteEntry, RouteSource } from '../../src/client/push/route-source.js';
import type { PushResult } from '../../src/client/push/types.js';
import { ClientType } from '../../src/protocol/index.js';

/** A "gateway" that accepts connections and never reads a byte of what it is sent. */
async function deafGateway(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    s.pause();
    s.on('error', () => {});
    sockets.add(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  const port = typeof a === 'object' && a ? a.port : 0;
  return {
    port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Every user is routed to the one deaf gateway: no route query is needed. */
function routesTo(port: number): RouteSource {
  return {
    async lookup(userIds) {
      const entry: RouteEntry = { clientType: ClientType.MOBILE, host: '127.0.0.1', port, connId: 'c' };
      return new Map(userIds.map((u) => [u, [entry]]));
    },
  };
}

/**
 * Sends 64 KiB pushes to a gateway that does not read them, one every `pauseMs` (0: every turn of
 * the event loop), past what the loopback socket buffers hold, and stops as soon as the channel
 * is dropped: every request sent was then pending on it. Up to `rounds` pushes.
 */
async function flood(
  sender: PushSender,
  port: number,
  rounds: number,
  pauseMs: number,
): Promise<PushResult[]> {
  const channel = sender.channel('127.0.0.1', port);
  const content = randomBytes(64 * 1024);
  const results: Array<Promise<PushResult[]>> = [];
  for (let i = 0; i < rounds && channel.connected; i++) {
    results.push(sender.send({ userId: `u${i}`, content, timeout: 120_000 }));
    await new Promise((r) => (pauseMs > 0 ? setTimeout(r, pauseMs) : setImmediate(r)));
  }
  assert.equal(channel.connected, false, 'the channel was dropped');
  return (await Promise.all(results)).flat();
}

/**
 * A "gateway" that reads nothing for `holdMs`, then reads and answers every push with OK (and
 * GATEWAY_HELLO with OK), as a node behind a slow link or in a long GC pause would.
 */
async function slowGateway(
  holdMs: number,
): Promise<{ port: number; pushes: () => number; close(): Promise<void> }> {
  const { Command, encodePacket, FrameDecoder, OkCodec } = await import('../../src/protocol/index.js');
  const sockets = new Set<Socket>();
  let pushes = 0;
  const server: Server = createServer((s) => {
    s.pause();
    s.on('error', () => {});
    sockets.add(s);
    const dec = new FrameDecoder(
      {
        onPacket: (p) => {
          if (p.cmd === Command.GATEWAY_PUSH) pushes++;
          const body = OkCodec.encode({ cmd: p.cmd, code: 0, data: '' });
          s.write(encodePacket({ cmd: Command.OK, flags: 0, sessionId: p.sessionId, body }));
        },
        onHeartbeat() {},
      },
      { maxBodyLength: 1024 * 1024 },
    );
    s.on('data', (c) => dec.push(c));
    setTimeout(() => s.resume(), holdMs);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  return {
    port: typeof a === 'object' && a ? a.port : 0,
    pushes: () => pushes,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A sender with a 256 KiB bound (a 128 KiB window) and a drain deadline out of reach. */
function windowedSender(port: number): PushSender {
  return PushSender.create({
    gateways: [{ host: '127.0.0.1', port }],
    routeSource: routesTo(port),
    maxOutboundBytes: 256 * 1024,
    drainTimeoutMs: 3_600_000,
  });
}

describe('push client: maxOutboundBytes windows what is queued for a gateway', () => {
  it('a batch larger than the bound, to a gateway that stalls, waits and then all succeed: nothing dropped', async () => {
    const gw = await slowGateway(500);
    const sender = windowedSender(gw.port);
    try {
      await sender.start();
      // 160 × 64 KiB = 10 MiB: past the ~4 MiB the loopback buffers hold and 40 times the bound.
      // Without the window the queue passes the bound and the connection, with all it carries, is dropped.
      const content = randomBytes(64 * 1024);
      const users = Array.from({ length: 160 }, (_, i) => `u${i}`);
      const results = await Promise.all(
        users.map((u) => sender.send({ userId: u, content, timeout: 60_000 })),
      );
      assert.deepEqual(
        [...new Set(results.flat().map((r) => r.result))],
        ['success'],
        JSON.stringify(results.flat().find((r) => r.result !== 'success')),
      );
      assert.equal(gw.pushes(), 160, 'each push written once');
      assert.equal(sender.channel('127.0.0.1', gw.port).connected, true, 'the connection was kept');
    } finally {
      await sender.stop();
      await gw.close();
    }
  });

  it('to a gateway that never reads: requests past the window are held, not written; the connection is kept', async () => {
    const gw = await deafGateway();
    // The drain deadline is out of reach: only the window acts.
    const sender = windowedSender(gw.port);
    try {
      await sender.start();
      const content = randomBytes(64 * 1024);
      const results = await Promise.all(
        Array.from({ length: 160 }, (_, i) => sender.send({ userId: `u${i}`, content, timeout: 1500 })),
      );
      // Every request ends by its own deadline; none fails because the bound was passed.
      for (const r of results.flat()) assert.equal(r.result, 'timeout', JSON.stringify(r));
      assert.equal(sender.channel('127.0.0.1', gw.port).connected, true, 'never dropped for the byte bound');
    } finally {
      await sender.stop();
      await gw.close();
    }
  });
});

describe('push client: the drain deadline alone drops a gateway that does not read', () => {
  it('drainTimeoutMs: every pending request fails, naming the drain deadline', async () => {
    const gw = await deafGateway();
    // The byte bound is out of reach: only the drain deadline can drop the channel.
    const sender = PushSender.create({
      gateways: [{ host: '127.0.0.1', port: gw.port }],
      routeSource: routesTo(gw.port),
      maxOutboundBytes: 1024 * 1024 * 1024,
      drainTimeoutMs: 300,
    });
    try {
      await sender.start();
      // Paced, so the socket buffers fill and then stay full for the deadline while few bytes more
      // are queued.
      const results = await flood(sender, gw.port, 2000, 2);
      assert.ok(results.length > 1);
      for (const r of results) {
        assert.equal(r.result, 'failure');
        assert.match(r.reason ?? '', /not reading: not drained within drainTimeoutMs/);
      }
    } finally {
      await sender.stop();
      await gw.close();
    }
  });
});

describe('push client: a reply it cannot read', () => {
  it('fails the request it answers, and only that one: the channel keeps serving', async () => {
    // A "gateway" that answers its first GATEWAY_PUSH with an ERROR whose body is cut short, and
    // every later one with a proper broadcast OK.
    const { Command, ErrorCode, ErrorCodec, ExtCommand, encodePacket, FrameDecoder, OkCodec } = await import(
      '../../src/protocol/index.js'
    );
    let answered = 0;
    const server: Server = createServer((s) => {
      s.on('error', () => {});
      const dec = new FrameDecoder({
        onPacket: (p) => {
          // The sender's GATEWAY_HELLO: answered as MPush's gateway answers what it does not know.
          if (p.cmd === ExtCommand.GATEWAY_HELLO) {
            const body = ErrorCodec.encode({
              cmd: p.cmd,
              code: ErrorCode.UNSUPPORTED_CMD,
              reason: 'unsupported',
              data: '',
            });
            return void s.write(encodePacket({ cmd: Command.ERROR, flags: 0, sessionId: p.sessionId, body }));
          }
          const body =
            answered++ === 0
              ? Buffer.from([0x00]) // an ERROR body: one byte of a two-byte field
              : OkCodec.encode({
                  cmd: p.cmd,
                  code: 0,
                  data: JSON.stringify({ taskId: 't', status: 'done' }),
                });
          s.write(
            encodePacket({
              cmd: answered === 1 ? Command.ERROR : Command.OK,
              flags: 0,
              sessionId: p.sessionId,
              body,
            }),
          );
        },
        onHeartbeat: () => {},
      });
      s.on('data', (c: Buffer) => dec.push(c));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const a = server.address();
    const port = typeof a === 'object' && a ? a.port : 0;
    const sender = PushSender.create({ gateways: [{ host: '127.0.0.1', port }] });
    try {
      const first = await sender.broadcast({ content: 'x', timeout: 60_000 });
      assert.equal(first.result, 'failure');
      const second = await sender.broadcast({ content: 'x', timeout: 60_000 });
      assert.equal(second.result, 'success');
      assert.equal(sender.channel('127.0.0.1', port).connected, true, 'the same channel served both');
    } finally {
      await sender.stop();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
