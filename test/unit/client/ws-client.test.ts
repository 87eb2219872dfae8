import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { WebSocket, WebSocketServer, type WebSocket as WsSocket } from 'ws';
import {
  DeviceClientError,
  ServerReplyError,
  WsDeviceClient,
  type WsDeviceClientEvents,
  type WsDeviceClientOptions,
} from '../../../src/client/device/index.js';
import { Disconnect } from '../../../src/protocol/disconnect.js';
import { Command, ErrorCode, Flags, type JsonPacket } from '../../../src/protocol/index.js';

const WAIT = 5000;

function nextEvent<K extends keyof WsDeviceClientEvents>(
  client: WsDeviceClient,
  event: K,
  timeoutMs = WAIT,
): Promise<WsDeviceClientEvents[K]> {
  return new Promise((resolve, reject) => {
    const listener = (...args: WsDeviceClientEvents[K]): void => {
      clearTimeout(timer);
      resolve(args);
    };
    const timer = setTimeout(() => {
      client.off(event, listener);
      reject(new Error(`timed out waiting for the ${String(event)} event`));
    }, timeoutMs);
    client.once(event, listener);
  });
}

/** The server side of one WebSocket, scripted by the test. */
class WsPeer {
  private readonly packets: JsonPacket[] = [];
  private readonly waiters: Array<() => void> = [];
  closed = false;

  constructor(readonly socket: WsSocket) {
    socket.on('message', (data, isBinary) => {
      assert.equal(isBinary, false, 'the JSON protocol uses text frames');
      this.packets.push(JSON.parse(data.toString()) as JsonPacket);
      this.wakeAll();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wakeAll();
    });
  }

  private wakeAll(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** The next frame the client sent, or a failure after a generous hang guard. */
  async next(): Promise<JsonPacket> {
    const deadline = Date.now() + WAIT;
    while (this.packets.length === 0) {
      if (this.closed || Date.now() > deadline) throw new Error('no frame from the client');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - Date.now() + 1);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.packets.shift()!;
  }

  send(cmd: number, sessionId: number, body: Record<string, unknown>, flags: number = Flags.JSON_BODY): void {
    this.socket.send(JSON.stringify({ cmd, flags, sessionId, body }));
  }

  /** Reads the HANDSHAKE and answers it. */
  async handshake(sessionId = 'ws-sess'): Promise<JsonPacket> {
    const hs = await this.next();
    assert.equal(hs.cmd, Command.HANDSHAKE);
    this.send(Command.HANDSHAKE, hs.sessionId, {
      sessionId,
      heartbeat: 180_000,
      expireTime: 1_900_000_000_000,
    });
    return hs;
  }
}

async function setup(t: TestContext) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  const peers: WsPeer[] = [];
  const waiting: Array<(p: WsPeer) => void> = [];
  wss.on('connection', (socket) => {
    const peer = new WsPeer(socket);
    const w = waiting.shift();
    if (w) w(peer);
    else peers.push(peer);
  });
  const clients: WsDeviceClient[] = [];
  t.after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    for (const s of wss.clients) s.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  });
  const port = (wss.address() as AddressInfo).port;
  return {
    nextPeer(): Promise<WsPeer> {
      const p = peers.shift();
      if (p) return Promise.resolve(p);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('timed out waiting for a connection')), WAIT);
        waiting.push((peer) => {
          clearTimeout(timer);
          resolve(peer);
        });
      });
    },
    client(options: Partial<WsDeviceClientOptions> = {}): WsDeviceClient {
      const client = new WsDeviceClient({
        url: `ws://127.0.0.1:${port}/`,
        deviceId: 'web-1',
        osVersion: 'Chrome 120',
        clientVersion: '1.0',
        WebSocket,
        reconnect: { initialMs: 10, maxMs: 50, jitter: 0 },
        ...options,
      });
      clients.push(client);
      return client;
    },
  };
}

describe('WsDeviceClient', () => {
  it('handshakes with the device fields and binds the configured user', async (t) => {
    const env = await setup(t);
    const client = env.client({ userId: 'user-1', tags: ['a', 'b'], bindData: 'tok' });
    const handshake = nextEvent(client, 'handshake');
    const bound = nextEvent(client, 'bind');
    const connected = client.connect();
    const peer = await env.nextPeer();
    const hs = await peer.handshake('ws-sess-1');
    assert.equal(hs.flags, Flags.JSON_BODY);
    assert.deepEqual(hs.body, {
      deviceId: 'web-1',
      osName: 'web',
      osVersion: 'Chrome 120',
      clientVersion: '1.0',
    });
    await connected;
    assert.deepEqual((await handshake)[0], {
      sessionId: 'ws-sess-1',
      heartbeat: 180_000,
      expireTime: 1_900_000_000_000,
    });
    const bind = await peer.next();
    assert.equal(bind.cmd, Command.BIND);
    assert.deepEqual(bind.body, { userId: 'user-1', tags: 'a,b', data: 'tok' });
    peer.send(Command.OK, bind.sessionId, { cmd: Command.BIND, code: 0, data: '' });
    assert.deepEqual((await bound)[0], { userId: 'user-1' });
    assert.equal(client.boundUserId, 'user-1');
    assert.equal(client.state, 'ready');
  });

  it('binds and unbinds on request; a bind ERROR rejects with its code', async (t) => {
    const env = await setup(t);
    const client = env.client();
    const connected = client.connect();
    const peer = await env.nextPeer();
    await peer.handshake();
    await connected;

    const refused = client.bindUser('user-x', undefined, 'bad-token');
    const bad = await peer.next();
    peer.send(Command.ERROR, bad.sessionId, {
      cmd: Command.BIND,
      code: ErrorCode.UNKNOWN,
      reason: 'invalid token',
    });
    await assert.rejects(refused, (err: unknown) => {
      assert.ok(err instanceof ServerReplyError);
      assert.equal(err.code, ErrorCode.UNKNOWN);
      assert.equal(err.reason, 'invalid token');
      return true;
    });

    const bound = client.bindUser('user-2');
    const bind = await peer.next();
    assert.equal(bind.body.userId, 'user-2');
    peer.send(Command.OK, bind.sessionId, { cmd: Command.BIND, code: 0, data: '' });
    await bound;

    const unbound = client.unbindUser();
    const unbind = await peer.next();
    assert.equal(unbind.cmd, Command.UNBIND);
    assert.equal(unbind.body.userId, 'user-2');
    peer.send(Command.OK, unbind.sessionId, { cmd: Command.UNBIND, code: 0, data: '' });
    await unbound;
    assert.equal(client.boundUserId, undefined);
  });

  it('delivers pushes: AUTO_ACK acked by the client, BIZ_ACK acked by ack()', async (t) => {
    const env = await setup(t);
    const client = env.client();
    const connected = client.connect();
    const peer = await env.nextPeer();
    await peer.handshake();
    await connected;

    const auto = nextEvent(client, 'push');
    peer.send(Command.PUSH, 31, { content: 'héllo' }, Flags.JSON_BODY | Flags.AUTO_ACK);
    assert.deepEqual((await auto)[0], {
      content: 'héllo',
      sessionId: 31,
      flags: Flags.JSON_BODY | Flags.AUTO_ACK,
      ackModel: 'auto',
    });
    const ack = await peer.next();
    assert.deepEqual(ack, { cmd: Command.ACK, flags: Flags.JSON_BODY, sessionId: 31, body: {} });

    client.once('push', (p) => {
      assert.equal(p.ackModel, 'biz');
      // Anything the client sent on its own would arrive before this marker.
      client.sendPacket(Command.HEARTBEAT, 0, { marker: true });
      assert.equal(client.ack(p.sessionId), true);
    });
    peer.send(Command.PUSH, 32, { content: 'biz' }, Flags.JSON_BODY | Flags.BIZ_ACK);
    assert.deepEqual((await peer.next()).body, { marker: true });
    const bizAck = await peer.next();
    assert.equal(bizAck.cmd, Command.ACK);
    assert.equal(bizAck.sessionId, 32);
  });

  it('emits kick, stays connected and forgets the user', async (t) => {
    const env = await setup(t);
    const client = env.client({ userId: 'user-k' });
    const bound = nextEvent(client, 'bind');
    void client.connect();
    const peer = await env.nextPeer();
    await peer.handshake();
    const bind = await peer.next();
    peer.send(Command.OK, bind.sessionId, { cmd: Command.BIND, code: 0, data: '' });
    await bound;
    const kick = nextEvent(client, 'kick');
    peer.send(Command.KICK, 0, { deviceId: 'web-1', userId: 'user-k' });
    assert.deepEqual((await kick)[0], { deviceId: 'web-1', userId: 'user-k' });
    assert.equal(client.state, 'ready');
    assert.equal(client.boundUserId, undefined);
    const push = nextEvent(client, 'push');
    peer.send(Command.PUSH, 40, { content: 'after kick' });
    assert.equal((await push)[0].content, 'after kick');
  });

  it('reconnects after the server closes, handshakes and binds again', async (t) => {
    const env = await setup(t);
    const client = env.client({ userId: 'user-r' });
    void client.connect();
    const first = await env.nextPeer();
    await first.handshake();
    const bind1 = await first.next();
    first.send(Command.OK, bind1.sessionId, { cmd: Command.BIND, code: 0, data: '' });
    const disconnected = nextEvent(client, 'disconnected');
    const reconnecting = nextEvent(client, 'reconnecting');
    first.socket.close(1001, 'going away');
    assert.deepEqual((await disconnected)[0], {
      reason: 'going away',
      code: 1001,
      disconnect: Disconnect.SHUTDOWN,
      willReconnect: true,
    });
    assert.equal((await reconnecting)[0].attempt, 1);
    const second = await env.nextPeer();
    await second.handshake();
    const bind2 = await second.next();
    assert.equal(bind2.cmd, Command.BIND);
    assert.equal(bind2.body.userId, 'user-r');
  });

  it('does not reconnect after a close code the catalogue marks final', async (t) => {
    const env = await setup(t);
    for (const reason of [Disconnect.PROTOCOL_ERROR, Disconnect.BAD_HANDSHAKE, Disconnect.KICKED]) {
      const client = env.client();
      let reconnects = 0;
      client.on('reconnecting', () => reconnects++);
      const connected = client.connect();
      const peer = await env.nextPeer();
      await peer.handshake();
      await connected;
      const disconnected = nextEvent(client, 'disconnected');
      peer.socket.close(reason.wsCode, reason.name);
      const [event] = await disconnected;
      assert.equal(event.code, reason.wsCode);
      assert.equal(event.disconnect, reason);
      assert.equal(event.willReconnect, false, reason.name);
      assert.equal(client.state, 'idle');
      assert.equal(reconnects, 0);
    }
  });

  it('reconnects after the network goes (1006, no close frame)', async (t) => {
    const env = await setup(t);
    const client = env.client();
    const connected = client.connect();
    const first = await env.nextPeer();
    await first.handshake();
    await connected;
    const disconnected = nextEvent(client, 'disconnected');
    first.socket.terminate();
    const [event] = await disconnected;
    assert.equal(event.code, 1006);
    assert.equal(event.disconnect, Disconnect.TRANSPORT_ERROR);
    assert.equal(event.willReconnect, true);
    await (await env.nextPeer()).handshake();
  });

  it('after a kick, does not reconnect when the connection goes', async (t) => {
    const env = await setup(t);
    const client = env.client();
    const connected = client.connect();
    const peer = await env.nextPeer();
    await peer.handshake();
    await connected;
    const kicked = nextEvent(client, 'kick');
    peer.send(Command.KICK, 0, { deviceId: 'web-1', userId: 'u' });
    await kicked;
    const disconnected = nextEvent(client, 'disconnected');
    peer.socket.close(Disconnect.SHUTDOWN.wsCode, 'shutdown');
    const [event] = await disconnected;
    assert.equal(event.disconnect, Disconnect.KICKED);
    assert.equal(event.willReconnect, false);
    assert.equal(client.state, 'idle');
  });

  it('settles a request only with an OK for its own command', async (t) => {
    const env = await setup(t);
    const client = env.client();
    const connected = client.connect();
    const peer = await env.nextPeer();
    await peer.handshake();
    await connected;
    let settled = false;
    const bound = client.bindUser('user-o').finally(() => {
      settled = true;
    });
    const bind = await peer.next();
    peer.send(Command.OK, bind.sessionId, { cmd: Command.UNBIND, code: 0, data: '' });
    const marker = nextEvent(client, 'push');
    peer.send(Command.PUSH, 50, { content: 'marker' });
    await marker;
    assert.equal(settled, false, 'an OK for UNBIND does not answer a BIND');
    assert.equal(client.boundUserId, undefined);
    peer.send(Command.OK, bind.sessionId, { cmd: Command.BIND, code: 0, data: '' });
    await bound;
    assert.equal(client.boundUserId, 'user-o');
  });

  it('rejects connect() with MPUSH_ERR_CONNECT_TIMEOUT when the handshake is not answered', async (t) => {
    const env = await setup(t);
    // The default (10 s) is past the hang guard: only the option can end this attempt in time.
    const client = env.client({ connectTimeoutMs: 200, autoReconnect: false });
    const disconnected = nextEvent(client, 'disconnected');
    const connected = client.connect();
    const peer = await env.nextPeer();
    assert.equal((await peer.next()).cmd, Command.HANDSHAKE); // and never answer it
    await assert.rejects(
      connected,
      (err: unknown) => err instanceof DeviceClientError && err.code === 'MPUSH_ERR_CONNECT_TIMEOUT',
    );
    const [event] = await disconnected;
    assert.equal(event.disconnect, Disconnect.HANDSHAKE_TIMEOUT);
    assert.equal(client.state, 'idle');
  });

  it('drops a redelivered PushMsg after a reconnect, and acks it when it asks for an ack', async (t) => {
    const env = await setup(t);
    const client = env.client();
    const seen: number[] = [];
    const duplicates: number[] = [];
    client.on('push', (p) => seen.push(p.sessionId));
    client.on('duplicate', (d) => duplicates.push(d.sessionId));
    const connected = client.connect();
    const first = await env.nextPeer();
    await first.handshake();
    await connected;
    const content = JSON.stringify({ msgType: 1, msgId: 'inbox-7', content: 'hello' });
    const delivered = nextEvent(client, 'push');
    first.send(Command.PUSH, 60, { content }, Flags.JSON_BODY | Flags.BIZ_ACK);
    await delivered;
    // The app never acked: the server keeps it and redelivers on the next connection.
    first.socket.close(Disconnect.SHUTDOWN.wsCode, 'shutdown');
    const second = await env.nextPeer();
    await second.handshake();
    const duplicate = nextEvent(client, 'duplicate');
    second.send(Command.PUSH, 61, { content }, Flags.JSON_BODY | Flags.BIZ_ACK);
    assert.deepEqual((await duplicate)[0], { msgId: 'inbox-7', sessionId: 61 });
    const ack = await second.next();
    assert.deepEqual([ack.cmd, ack.sessionId], [Command.ACK, 61]);
    assert.deepEqual(seen, [60]);
    assert.deepEqual(duplicates, [61]);
  });

  it('close() closes the socket and does not reconnect', async (t) => {
    const env = await setup(t);
    const client = env.client();
    const connected = client.connect();
    const peer = await env.nextPeer();
    await peer.handshake();
    await connected;
    let reconnects = 0;
    client.on('reconnecting', () => reconnects++);
    const pending = assert.rejects(
      client.bindUser('user-c'),
      (err: unknown) => err instanceof DeviceClientError && err.code === 'MPUSH_ERR_CLOSED',
    );
    await peer.next();
    await client.close();
    await pending;
    assert.equal(client.state, 'closed');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(reconnects, 0);
    assert.equal(peer.closed, true);
  });

  it('refuses to start without a WebSocket implementation', (t) => {
    const g = globalThis as { WebSocket?: unknown };
    const saved = g.WebSocket;
    g.WebSocket = undefined;
    t.after(() => {
      g.WebSocket = saved;
    });
    assert.throws(() => new WsDeviceClient({ url: 'ws://127.0.0.1:1/', deviceId: 'd' }), TypeError);
  });
});
