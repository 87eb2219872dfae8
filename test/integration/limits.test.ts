import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { deflate, loadPublicKey } from '../../src/crypto/index.js';
import {
  ClientType,
  Command,
  ErrorCode,
  encodePacket,
  Flags,
  HEARTBEAT_FRAME,
} from '../../src/protocol/index.js';
import { startTestNode } from '../helpers/node.js';
import { RawDevice } from '../helpers/raw-device.js';
import { mpushDefaultKeys } from '../helpers/shared.js';
import { waitFor } from '../helpers/wait.js';

const publicKey = loadPublicKey(mpushDefaultKeys().publicKey);

describe('limits: each closes only the offending connection', () => {
  it('heartbeat.*: a silent device is closed after maxTimeouts misses; a talking one stays', async () => {
    const t = await startTestNode({
      heartbeat: { minMs: 200, maxMs: 200, graceMs: 50, tickMs: 20, maxTimeouts: 2 },
    });
    try {
      const silent = await RawDevice.connect(t.tcpPort);
      const talker = await RawDevice.connect(t.tcpPort);
      await silent.handshake(publicKey);
      await talker.handshake(publicKey);
      const beat = setInterval(() => talker.raw(HEARTBEAT_FRAME), 100);
      const started = Date.now();
      await silent.waitClosed(5000);
      clearInterval(beat);
      // Three read timeouts of 250 ms each: not before the third.
      assert.ok(Date.now() - started >= 700, 'closed only after the third miss');
      assert.equal(talker.closed, false);
      assert.ok(talker.heartbeats > 0, 'heartbeats are echoed');
      assert.equal(t.node.connections.stats.closed['heartbeat-timeout'], 1);
      talker.close();
    } finally {
      await t.stop();
    }
  });

  it('limits.handshakeTimeoutMs: no handshake in time closes', async () => {
    const t = await startTestNode({ limits: { handshakeTimeoutMs: 150 }, heartbeat: { tickMs: 20 } });
    try {
      const d = await RawDevice.connect(t.tcpPort);
      await d.waitClosed(3000);
      assert.equal(t.node.connections.stats.closed['handshake-timeout'], 1);
    } finally {
      await t.stop();
    }
  });

  it('limits.maxPacketSize: an oversized header closes that connection before its body is sent', async () => {
    const t = await startTestNode({ limits: { maxPacketSize: 1024 } });
    try {
      const bystander = await RawDevice.connect(t.tcpPort);
      await bystander.handshake(publicKey);
      const d = await RawDevice.connect(t.tcpPort);
      // Only the header, declaring 1 MiB: the server must not wait for the body.
      d.raw(
        encodePacket({ cmd: Command.BIND, flags: 0, sessionId: 1, body: Buffer.alloc(1024 * 1024) }).subarray(
          0,
          13,
        ),
      );
      const err = d.error(await d.next(Command.ERROR));
      assert.match(err.reason, /exceeds the limit of 1024 bytes/);
      await d.waitClosed();
      assert.ok((await bystander.bind('still-here')).ok);
    } finally {
      await t.stop();
    }
  });

  it('limits.maxInflatedSize: a decompression bomb closes the connection', async () => {
    const t = await startTestNode({ limits: { maxInflatedSize: 64 * 1024 } });
    try {
      const d = await RawDevice.connect(t.tcpPort);
      await d.handshake(publicKey);
      const bomb = deflate(Buffer.alloc(8 * 1024 * 1024)); // ~8 KiB on the wire
      d.send(Command.PUSH, bomb, { flags: Flags.COMPRESS });
      await d.next(Command.ERROR);
      await d.waitClosed();
    } finally {
      await t.stop();
    }
  });

  it('limits.maxConnections: the next connection is refused', async () => {
    const t = await startTestNode({ limits: { maxConnections: 3 } });
    try {
      const ds = await Promise.all([1, 2, 3].map(() => RawDevice.connect(t.tcpPort)));
      await waitFor(() => t.node.connections.connections.size === 3);
      const extra = await RawDevice.connect(t.tcpPort);
      await extra.waitClosed();
      assert.equal(t.node.connections.stats.refused, 1);
      await ds[0]!.handshake(publicKey);
      for (const d of ds) d.close();
    } finally {
      await t.stop();
    }
  });

  it('gateway.maxConnections: the next push-client connection is closed at accept, before any login', async () => {
    const t = await startTestNode({ gateway: { maxConnections: 2 } });
    const open: Socket[] = [];
    try {
      const port = t.node.addresses.gatewayPort;
      const dial = () =>
        new Promise<Socket>((resolve, reject) => {
          const s = connect(port, '127.0.0.1', () => resolve(s));
          s.on('error', reject);
          open.push(s);
        });
      const first = await Promise.all([dial(), dial()]);
      await waitFor(() => t.node.gateway.clients === 2);
      const extra = await dial();
      let closed = false;
      extra.on('close', () => {
        closed = true;
      });
      await waitFor(() => closed, 3000, 'the third connection to be closed');
      assert.equal(t.node.gateway.stats.refused, 1);
      assert.ok(
        first.every((s) => !s.destroyed && s.readyState === 'open'),
        'the first two stay',
      );
    } finally {
      for (const s of open) s.destroy();
      await t.stop();
    }
  });

  it('limits.handshakesPerSecond: handshakes past the bucket are refused', async () => {
    const t = await startTestNode({ limits: { handshakesPerSecond: 1, handshakeBurst: 2 } });
    try {
      const ds = await Promise.all([1, 2, 3].map(() => RawDevice.connect(t.tcpPort)));
      await ds[0]!.handshake(publicKey);
      await ds[1]!.handshake(publicKey);
      await assert.rejects(ds[2]!.handshake(publicKey));
      const err = ds[2]!.error(
        ds[2]!.packets.find((p) => p.cmd === Command.ERROR) ?? (await ds[2]!.next(Command.ERROR)),
      );
      assert.equal(err.reason, 'handshake rate exceeded');
      await ds[2]!.waitClosed();
      assert.equal(t.node.connections.stats.handshakesThrottled, 1);
      for (const d of ds) d.close();
    } finally {
      await t.stop();
    }
  });

  it('limits.maxOutboundBytes: a device that stops reading is dropped while 100 others keep receiving', async () => {
    const t = await startTestNode({ limits: { maxOutboundBytes: 256 * 1024, drainTimeoutMs: 2000 } });
    try {
      const frozen = await RawDevice.connect(t.tcpPort);
      await frozen.handshake(publicKey);
      await frozen.bind('frozen');
      frozen.pauseReading();
      const others: RawDevice[] = [];
      for (let i = 0; i < 100; i++) {
        const d = await RawDevice.connect(t.tcpPort);
        await d.handshake(publicKey);
        await d.bind(`user-${i}`);
        others.push(d);
      }
      const server = t.node.connections;
      const frozenConn = server.router.get('frozen', ClientType.MOBILE)!;
      // Loopback socket buffers absorb several MiB: the frozen device is sent far more than that.
      const big = randomBytes(64 * 1024); // incompressible: the server deflates bodies over 10 KiB
      const content = Buffer.alloc(1024, 0x61);
      const rounds = 256;
      for (let r = 0; r < rounds; r++) {
        frozenConn.send({
          cmd: Command.PUSH,
          sessionId: server.context.nextPushSessionId(),
          flags: 0,
          content: big,
        });
        for (const c of server.router.all()) {
          if (c === frozenConn) continue;
          c.send({ cmd: Command.PUSH, sessionId: server.context.nextPushSessionId(), flags: 0, content });
        }
        await new Promise((res) => setImmediate(res));
      }
      await waitFor(
        () => server.router.get('frozen', ClientType.MOBILE) === undefined,
        5000,
        'frozen device dropped',
      );
      assert.equal(server.stats.closed['slow-reader'], 1);
      for (const d of others) {
        await d.until(
          () => d.packets.filter((p) => p.cmd === Command.PUSH).length === rounds || undefined,
          10000,
          'all pushes',
        );
        assert.equal(d.closed, false);
      }
      for (const d of others) d.close();
      frozen.close();
    } finally {
      await t.stop();
    }
  });

  it('limits.maxOutboundBytes alone: a device that stops reading is closed for slow-reader', async () => {
    // The drain deadline is out of reach: only the byte bound can close this device.
    const t = await startTestNode({ limits: { maxOutboundBytes: 256 * 1024, drainTimeoutMs: 3_600_000 } });
    try {
      const frozen = await RawDevice.connect(t.tcpPort);
      await frozen.handshake(publicKey);
      await frozen.bind('frozen');
      frozen.pauseReading();
      const server = t.node.connections;
      const conn = server.router.get('frozen', ClientType.MOBILE)!;
      const reasons: string[] = [];
      server.events.on('close', (c, reason) => {
        if (c === conn) reasons.push(reason.name);
      });
      const big = randomBytes(64 * 1024); // incompressible: the server deflates bodies over 10 KiB
      // Far more than the loopback socket buffers and the bound together.
      for (let r = 0; r < 512 && !conn.closed; r++) {
        conn.send({
          cmd: Command.PUSH,
          sessionId: server.context.nextPushSessionId(),
          flags: 0,
          content: big,
        });
        await new Promise((res) => setImmediate(res));
      }
      await waitFor(() => conn.closed, 5000, 'frozen device closed');
      assert.deepEqual(reasons, ['slow-reader']);
      assert.equal(server.stats.closed['slow-reader'], 1);
      assert.equal(server.stats.closed['drain-timeout'], undefined);
      frozen.close();
    } finally {
      await t.stop();
    }
  });

  it('limits.drainTimeoutMs alone: a device that stops reading is closed for drain-timeout', async () => {
    // The byte bound is out of reach: only the drain deadline can close this device.
    const t = await startTestNode({
      limits: { maxOutboundBytes: 1024 * 1024 * 1024, drainTimeoutMs: 300 },
      heartbeat: { tickMs: 20 },
    });
    try {
      const frozen = await RawDevice.connect(t.tcpPort);
      await frozen.handshake(publicKey);
      await frozen.bind('frozen');
      frozen.pauseReading();
      const server = t.node.connections;
      const conn = server.router.get('frozen', ClientType.MOBILE)!;
      const reasons: string[] = [];
      server.events.on('close', (c, reason) => {
        if (c === conn) reasons.push(reason.name);
      });
      const big = randomBytes(64 * 1024);
      // Until the kernel's buffers are full and the connection holds 1 MiB itself: its writes now
      // return false and nothing drains. Then write nothing more and wait.
      for (let r = 0; r < 1024 && !conn.closed && conn.transport.bufferedBytes < 1024 * 1024; r++) {
        conn.send({
          cmd: Command.PUSH,
          sessionId: server.context.nextPushSessionId(),
          flags: 0,
          content: big,
        });
        await new Promise((res) => setImmediate(res));
      }
      await waitFor(() => conn.closed, 5000, 'frozen device closed');
      assert.deepEqual(reasons, ['drain-timeout']);
      assert.equal(server.stats.closed['drain-timeout'], 1);
      assert.equal(server.stats.closed['slow-reader'], undefined);
      frozen.close();
    } finally {
      await t.stop();
    }
  });

  it('limits.fastConnectQueue: more packets than it during a fast connect close the connection', async () => {
    const t = await startTestNode({ limits: { fastConnectQueue: 4 } });
    try {
      const first = await RawDevice.connect(t.tcpPort);
      const ok = await first.handshake(publicKey, { deviceId: 'dev-queue' });
      first.close();
      const { FastConnectCodec } = await import('../../src/protocol/index.js');
      const fc = encodePacket({
        cmd: Command.FAST_CONNECT,
        flags: 0,
        sessionId: 1,
        body: FastConnectCodec.encode({
          sessionId: ok.sessionId,
          deviceId: 'dev-queue',
          minHeartbeat: 0,
          maxHeartbeat: 0,
        }),
      });
      const beat = encodePacket({ cmd: Command.HEARTBEAT, flags: 0, sessionId: 2, body: Buffer.alloc(0) });
      const within = await RawDevice.connect(t.tcpPort);
      within.raw(Buffer.concat([fc, beat, beat, beat, beat])); // 4 held: replayed after the lookup
      await within.next(Command.FAST_CONNECT);
      await within.until(() => within.heartbeats === 4 || undefined, 3000, 'held heartbeats answered');
      const flood = await RawDevice.connect(t.tcpPort);
      flood.raw(Buffer.concat([fc, beat, beat, beat, beat, beat])); // 5 held: one too many
      const err = flood.error(await flood.next(Command.ERROR));
      assert.match(err.reason, /too many packets during fast connect/);
      await flood.waitClosed();
      within.close();
    } finally {
      await t.stop();
    }
  });

  it('a garbage stream closes only its connection', async () => {
    const t = await startTestNode();
    try {
      const ok = await RawDevice.connect(t.tcpPort);
      await ok.handshake(publicKey);
      const bad = await RawDevice.connect(t.tcpPort);
      let x = 12345;
      const junk = Buffer.alloc(64 * 1024);
      for (let i = 0; i < junk.length; i++) {
        x = (x * 1103515245 + 12345) & 0x7fffffff;
        junk[i] = x & 0xff;
      }
      bad.raw(junk);
      await bad.waitClosed();
      assert.ok((await ok.bind('survivor')).ok);
      assert.equal(ErrorCode.UNKNOWN, -1);
    } finally {
      await t.stop();
    }
  });
});
