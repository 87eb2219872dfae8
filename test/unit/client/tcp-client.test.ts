import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import {
  DeviceClient,
  DeviceClientError,
  type DeviceClientEvents,
  type DeviceClientOptions,
  MemorySessionStorage,
  ServerReplyError,
} from '../../../src/client/device/index.js';
import { randomKey } from '../../../src/crypto/index.js';
import { Disconnect } from '../../../src/protocol/disconnect.js';
import {
  BindUserCodec,
  Command,
  ErrorCode,
  Flags,
  HEADER_LENGTH,
  HttpRequestCodec,
  HttpResponseCodec,
  KickCodec,
} from '../../../src/protocol/index.js';
import { readFixture } from '../../helpers/shared.js';
import { waitFor } from '../../helpers/wait.js';
import { deadPort, FakeServer, type Peer, TEST_PUBLIC_KEY } from './fake-server.js';

const WAIT = 5000;

/** The next `event` of the client, or a failure after a generous hang guard. */
function nextEvent<K extends keyof DeviceClientEvents>(
  client: DeviceClient,
  event: K,
  timeoutMs = WAIT,
): Promise<DeviceClientEvents[K]> {
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      client.off(event, listener as never);
      reject(new Error(`timed out waiting for the ${String(event)} event`));
    }, timeoutMs);
    const listener = (...args: DeviceClientEvents[K]): void => {
      clearTimeout(timer);
      resolvePromise(args);
    };
    client.once(event, listener as never);
  });
}

let server: FakeServer;
const clients: DeviceClient[] = [];

/** A fresh scripted server per test, so connections left by one test never reach another. */
async function setup(t: TestContext): Promise<void> {
  server = await FakeServer.start();
  const mine = server;
  t.after(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await mine.close();
  });
}

function makeClient(options: Partial<DeviceClientOptions> = {}): DeviceClient {
  const client = new DeviceClient({
    servers: [server.address],
    publicKey: TEST_PUBLIC_KEY,
    deviceId: 'dev-1',
    osVersion: '10',
    clientVersion: '1.0.0',
    reconnect: { initialMs: 10, maxMs: 50, jitter: 0 },
    ...options,
  });
  clients.push(client);
  return client;
}

/** Connects a client through a full handshake (and its automatic bind, when it has a userId). */
async function handshaken(
  options: Partial<DeviceClientOptions> = {},
): Promise<{ client: DeviceClient; peer: Peer }> {
  const client = makeClient(options);
  const connected = client.connect();
  const bound = options.userId === undefined ? undefined : nextEvent(client, 'bind');
  const peer = await server.nextPeer();
  const hs = await peer.expectHandshake();
  peer.acceptHandshake(hs, { sessionId: `sess-${peer.socket.remotePort}` });
  if (bound !== undefined) {
    const bind = await peer.next();
    assert.equal(bind.cmd, Command.BIND);
    peer.ok(bind);
    await bound;
  }
  await connected;
  return { client, peer };
}

describe('DeviceClient', () => {
  it('does a full handshake, saves the session and binds the configured user', async (t) => {
    await setup(t);
    const storage = new MemorySessionStorage();
    const client = makeClient({
      userId: 'user-1',
      tags: ['vip', 'beta'],
      bindData: 'token-1',
      sessionStorage: storage,
    });
    const handshake = nextEvent(client, 'handshake');
    const bound = nextEvent(client, 'bind');
    const connected = client.connect();

    const peer = await server.nextPeer();
    const hs = await peer.expectHandshake();
    assert.equal(hs.packet.flags, Flags.CRYPTO);
    assert.equal(hs.message.deviceId, 'dev-1');
    assert.equal(hs.message.osName, 'android');
    assert.equal(hs.message.osVersion, '10');
    assert.equal(hs.message.clientVersion, '1.0.0');
    assert.equal(hs.message.maxHeartbeat, 240_000);
    assert.equal(hs.message.iv.length, 16);
    assert.equal(hs.message.clientKey.length, 16);
    const expireTime = Date.now() + 3_600_000;
    peer.acceptHandshake(hs, { sessionId: 'sess-full', heartbeat: 180_000, expireTime });

    const bind = await peer.next();
    assert.equal(bind.cmd, Command.BIND);
    assert.equal(bind.flags & Flags.CRYPTO, Flags.CRYPTO);
    assert.notEqual(bind.sessionId, hs.packet.sessionId);
    assert.deepEqual(BindUserCodec.decode(peer.open(bind)), {
      userId: 'user-1',
      data: 'token-1',
      tags: 'vip,beta',
    });
    peer.ok(bind);

    await connected;
    const [info] = await handshake;
    assert.deepEqual(info, { sessionId: 'sess-full', heartbeat: 180_000, expireTime, fast: false });
    assert.deepEqual((await bound)[0], { userId: 'user-1' });
    assert.equal(client.state, 'ready');
    assert.equal(client.sessionId, 'sess-full');
    assert.equal(client.negotiatedHeartbeat, 180_000);
    assert.equal(client.boundUserId, 'user-1');

    const stored = await storage.load();
    assert.equal(stored?.sessionId, 'sess-full');
    assert.equal(stored?.deviceId, 'dev-1');
    assert.equal(stored?.sessionKey, peer.sessionKey!.toString('hex'));
    assert.equal(stored?.iv, peer.iv!.toString('hex'));
    assert.equal(stored?.expireTime, expireTime);
    assert.equal(stored?.heartbeat, 180_000);
  });

  it('binds and unbinds on request, resolving on OK', async (t) => {
    await setup(t);
    const { client, peer } = await handshaken();
    const bound = client.bindUser('user-2', 'a,b', 'tok');
    const bind = await peer.next();
    assert.equal(bind.cmd, Command.BIND);
    assert.deepEqual(BindUserCodec.decode(peer.open(bind)), { userId: 'user-2', data: 'tok', tags: 'a,b' });
    peer.ok(bind);
    await bound;
    assert.equal(client.boundUserId, 'user-2');

    const unbindEvent = nextEvent(client, 'unbind');
    const unbound = client.unbindUser();
    const unbind = await peer.next();
    assert.equal(unbind.cmd, Command.UNBIND);
    assert.equal(BindUserCodec.decode(peer.open(unbind)).userId, 'user-2');
    peer.ok(unbind);
    await unbound;
    assert.deepEqual((await unbindEvent)[0], { userId: 'user-2' });
    assert.equal(client.boundUserId, undefined);
  });

  it('rejects a bind answered by ERROR with the server code and reason', async (t) => {
    await setup(t);
    const { client, peer } = await handshaken();
    const serverError = nextEvent(client, 'serverError');
    const bound = client.bindUser('user-bad', undefined, 'forged-token');
    const bind = await peer.next();
    peer.error(bind, ErrorCode.UNKNOWN, 'invalid bind token');
    await assert.rejects(bound, (err: unknown) => {
      assert.ok(err instanceof ServerReplyError);
      assert.equal(err.code, ErrorCode.UNKNOWN);
      assert.equal(err.reason, 'invalid bind token');
      assert.equal(err.cmd, Command.BIND);
      return true;
    });
    const [event] = await serverError;
    assert.deepEqual(event, {
      cmd: Command.BIND,
      code: ErrorCode.UNKNOWN,
      reason: 'invalid bind token',
      data: '',
      sessionId: bind.sessionId,
    });
    assert.equal(client.boundUserId, undefined);
    assert.equal(client.state, 'ready');
  });

  it('rejects a bind with no reply after the request timeout', async (t) => {
    await setup(t);
    const { client, peer } = await handshaken({ requestTimeoutMs: 50 });
    const bound = client.bindUser('user-silent');
    assert.equal((await peer.next()).cmd, Command.BIND);
    await assert.rejects(
      bound,
      (err: unknown) => err instanceof DeviceClientError && err.code === 'MPUSH_ERR_TIMEOUT',
    );
  });

  it('acks an AUTO_ACK push by itself, with the push sessionId', async (t) => {
    await setup(t);
    const { client, peer } = await handshaken();
    const push = nextEvent(client, 'push');
    peer.sendEncrypted(Command.PUSH, 4242, Buffer.from('hello'), Flags.AUTO_ACK);
    const [event] = await push;
    assert.equal(event.content.toString(), 'hello');
    assert.equal(event.sessionId, 4242);
    assert.equal(event.ackModel, 'auto');
    assert.equal(event.flags, Flags.AUTO_ACK | Flags.CRYPTO);
    const ack = await peer.next();
    assert.deepEqual(
      { cmd: ack.cmd, flags: ack.flags, sessionId: ack.sessionId, length: ack.body.length },
      { cmd: Command.ACK, flags: 0, sessionId: 4242, length: 0 },
    );
  });

  it('does not ack a BIZ_ACK push until the app calls ack()', async (t) => {
    await setup(t);
    const { client, peer } = await handshaken();
    client.on('push', (p) => {
      if (p.ackModel !== 'biz') return;
      // Anything the client wrote on its own would reach the server before this marker.
      void client.pushToServer('marker');
      assert.equal(client.ack(p.sessionId), true);
    });
    peer.sendEncrypted(Command.PUSH, 77, Buffer.from('biz'), Flags.BIZ_ACK);
    const marker = await peer.next();
    assert.equal(marker.cmd, Command.PUSH);
    assert.equal(peer.open(marker).toString(), 'marker');
    const ack = await peer.next();
    assert.equal(ack.cmd, Command.ACK);
    assert.equal(ack.sessionId, 77);
  });

  it('delivers a push with no ack flag without acking', async (t) => {
    await setup(t);
    const { client, peer } = await handshaken();
    client.on('push', (p) => {
      assert.equal(p.ackModel, 'none');
      void client.pushToServer('after');
    });
    peer.sendEncrypted(Command.PUSH, 5, Buffer.from('plain'));
    const next = await peer.next();
    assert.equal(next.cmd, Command.PUSH);
    assert.equal(peer.open(next).toString(), 'after');
  });

  it('inflates a compressed push', async (t) => {
    await setup(t);
    const { client, peer } = await handshaken();
    const content = Buffer.from('0123456789abcdef'.repeat(1000));
    const push = nextEvent(client, 'push');
    peer.sendEncrypted(Command.PUSH, 9, content, Flags.BIZ_ACK, true);
    const [event] = await push;
    assert.equal(event.flags, Flags.CRYPTO | Flags.COMPRESS | Flags.BIZ_ACK);
    assert.ok(event.content.equals(content));
  });

  it('drops the connection on a push that inflates past the bound, and does not reconnect', async (t) => {
    await setup(t);
    const { client, peer } = await handshaken({ maxInflateBytes: 1000 });
    let reconnects = 0;
    client.on('reconnecting', () => reconnects++);
    const disconnected = nextEvent(client, 'disconnected');
    peer.sendEncrypted(Command.PUSH, 10, Buffer.alloc(100_000), 0, true);
    const [event] = await disconnected;
    assert.ok(event.error instanceof DeviceClientError);
    assert.equal(event.error.code, 'MPUSH_ERR_PROTOCOL');
    // A server whose bytes cannot be read would be read the same way again (the catalogue says so).
    assert.equal(event.disconnect, Disconnect.PROTOCOL_ERROR);
    assert.equal(event.willReconnect, false);
    assert.equal(client.state, 'idle');
    assert.equal(reconnects, 0);
    await peer.waitClosed();
    // connect() starts over.
    const again = client.connect();
    const next = await server.nextPeer();
    next.acceptFastConnect((await next.expectFastConnect()).packet, peer.sessionKey!, peer.iv!);
    await again;
  });

  it('compresses a device push over the threshold and waits for its ACK', async (t) => {
    await setup(t);
    const { client, peer } = await handshaken();
    const content = Buffer.from('x'.repeat(5000));
    const pushed = client.pushToServer(content, { ack: true });
    const p = await peer.next();
    assert.equal(p.cmd, Command.PUSH);
    assert.equal(p.flags, Flags.CRYPTO | Flags.COMPRESS | Flags.AUTO_ACK);
    assert.ok(peer.open(p).equals(content));
    peer.sendPacket({ cmd: Command.ACK, flags: 0, sessionId: p.sessionId, body: Buffer.alloc(0) });
    await pushed;
  });

  it('emits kick and stays connected but unbound, forgetting the user', async (t) => {
    await setup(t);
    const { client, peer } = await handshaken({ userId: 'user-k' });
    assert.equal(client.boundUserId, 'user-k');
    const kick = nextEvent(client, 'kick');
    peer.sendEncrypted(Command.KICK, 0, KickCodec.encode({ deviceId: 'dev-1', userId: 'user-k' }));
    assert.deepEqual((await kick)[0], { deviceId: 'dev-1', userId: 'user-k' });
    assert.equal(client.state, 'ready');
    assert.equal(client.boundUserId, undefined);
    // Still usable: pushes arrive after the kick.
    const push = nextEvent(client, 'push');
    peer.sendEncrypted(Command.PUSH, 11, Buffer.from('still here'));
    assert.equal((await push)[0].content.toString(), 'still here');
    // And the session ends with the connection: no reconnect, so no bind that would kick back.
    let reconnects = 0;
    client.on('reconnecting', () => reconnects++);
    const disconnected = nextEvent(client, 'disconnected');
    peer.destroy();
    const [event] = await disconnected;
    assert.equal(event.disconnect, Disconnect.KICKED);
    assert.equal(event.willReconnect, false);
    assert.equal(client.state, 'idle');
    assert.equal(reconnects, 0);
    await assert.rejects(
      client.bindUser('user-k'),
      (err: unknown) => err instanceof DeviceClientError && err.code === 'MPUSH_ERR_NOT_CONNECTED',
    );
  });

  it('fast-connects with a stored session and restores its cipher', async (t) => {
    await setup(t);
    const sessionKey = randomKey();
    const iv = randomKey();
    const storage = new MemorySessionStorage();
    const expireTime = Date.now() + 60_000;
    await storage.save({
      sessionId: 'sess-stored',
      deviceId: 'dev-1',
      sessionKey: sessionKey.toString('hex'),
      iv: iv.toString('hex'),
      heartbeat: 180_000,
      expireTime,
    });
    const client = makeClient({ sessionStorage: storage, userId: 'user-f', heartbeatMs: 200_000 });
    const handshake = nextEvent(client, 'handshake');
    const connected = client.connect();
    const peer = await server.nextPeer();
    const fc = await peer.expectFastConnect();
    assert.deepEqual(fc.message, {
      sessionId: 'sess-stored',
      deviceId: 'dev-1',
      minHeartbeat: 200_000,
      maxHeartbeat: 200_000,
    });
    peer.acceptFastConnect(fc.packet, sessionKey, iv, 150_000);
    // The Java SDK re-binds after a fast connect as after a handshake.
    const bind = await peer.next();
    assert.equal(bind.cmd, Command.BIND);
    assert.equal(BindUserCodec.decode(peer.open(bind)).userId, 'user-f');
    peer.ok(bind);
    await connected;
    assert.deepEqual((await handshake)[0], {
      sessionId: 'sess-stored',
      heartbeat: 150_000,
      expireTime,
      fast: true,
    });
    const push = nextEvent(client, 'push');
    peer.sendEncrypted(Command.PUSH, 3, Buffer.from('resumed'));
    assert.equal((await push)[0].content.toString(), 'resumed');
  });

  it('falls back to a full handshake when the fast connect is refused with 103', async (t) => {
    await setup(t);
    const storage = new MemorySessionStorage();
    await storage.save({
      sessionId: 'sess-gone',
      deviceId: 'dev-1',
      sessionKey: randomKey().toString('hex'),
      iv: randomKey().toString('hex'),
      heartbeat: 180_000,
      expireTime: Date.now() + 60_000,
    });
    const client = makeClient({ sessionStorage: storage });
    const serverError = nextEvent(client, 'serverError');
    const handshake = nextEvent(client, 'handshake');
    const connected = client.connect();
    const peer = await server.nextPeer();
    const fc = await peer.expectFastConnect();
    peer.error(fc.packet, ErrorCode.SESSION_EXPIRED, 'session expired');
    assert.equal((await serverError)[0].code, ErrorCode.SESSION_EXPIRED);
    const hs = await peer.expectHandshake();
    peer.acceptHandshake(hs, { sessionId: 'sess-new' });
    await connected;
    assert.equal((await handshake)[0].fast, false);
    assert.equal((await storage.load())?.sessionId, 'sess-new');
  });

  it('does not fast-connect with an expired or foreign session', async (t) => {
    await setup(t);
    const storage = new MemorySessionStorage();
    await storage.save({
      sessionId: 'sess-old',
      deviceId: 'dev-1',
      sessionKey: randomKey().toString('hex'),
      iv: randomKey().toString('hex'),
      heartbeat: 180_000,
      expireTime: Date.now() - 1,
    });
    const client = makeClient({ sessionStorage: storage });
    void client.connect();
    const peer = await server.nextPeer();
    await peer.expectHandshake();

    const foreign = new MemorySessionStorage();
    await foreign.save({
      sessionId: 'sess-other',
      deviceId: 'dev-other',
      sessionKey: randomKey().toString('hex'),
      iv: randomKey().toString('hex'),
      heartbeat: 180_000,
      expireTime: Date.now() + 60_000,
    });
    const client2 = makeClient({ sessionStorage: foreign });
    void client2.connect();
    await (await server.nextPeer()).expectHandshake();
  });

  it('reconnects after the server closes the socket and fast-connects the saved session', async (t) => {
    await setup(t);
    const { client, peer } = await handshaken({ userId: 'user-r' });
    const disconnected = nextEvent(client, 'disconnected');
    const reconnecting = nextEvent(client, 'reconnecting');
    const handshake = nextEvent(client, 'handshake');
    const epoch = client.connectionEpoch;
    peer.destroy();
    assert.equal((await disconnected)[0].reason, 'connection closed by the server');
    assert.equal((await reconnecting)[0].attempt, 1);

    const again = await server.nextPeer();
    const fc = await again.expectFastConnect();
    assert.equal(fc.message.sessionId, `sess-${peer.socket.remotePort}`);
    again.acceptFastConnect(fc.packet, peer.sessionKey!, peer.iv!);
    const bind = await again.next();
    assert.equal(bind.cmd, Command.BIND);
    assert.equal(BindUserCodec.decode(again.open(bind)).userId, 'user-r');
    again.ok(bind);
    assert.equal((await handshake)[0].fast, true);
    assert.equal(client.connectionEpoch, epoch + 1);
    await nextEvent(client, 'bind');
  });

  it('tries the next server when one refuses the connection', async (t) => {
    await setup(t);
    const client = makeClient({ servers: [{ host: '127.0.0.1', port: await deadPort() }, server.address] });
    const errors: Error[] = [];
    client.on('error', (e) => errors.push(e));
    const connected = client.connect();
    const peer = await server.nextPeer();
    peer.acceptHandshake(await peer.expectHandshake(), { sessionId: 'sess-second' });
    await connected;
    assert.deepEqual(client.server, server.address);
    assert.equal((errors[0] as NodeJS.ErrnoException | undefined)?.code, 'ECONNREFUSED');
  });

  it('rejects connect() when the attempt fails and auto-reconnect is off', async (t) => {
    await setup(t);
    const client = makeClient({
      servers: [{ host: '127.0.0.1', port: await deadPort() }],
      autoReconnect: false,
    });
    await assert.rejects(client.connect(), (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED');
    assert.equal(client.state, 'idle');
  });

  it('fails the connection when the server refuses the handshake', async (t) => {
    await setup(t);
    const client = makeClient({ autoReconnect: false, sessionStorage: null });
    const serverError = nextEvent(client, 'serverError');
    const connected = client.connect();
    const peer = await server.nextPeer();
    const hs = await peer.expectHandshake();
    peer.error(hs.packet, ErrorCode.DISPATCH_ERROR, 'bad handshake');
    await assert.rejects(
      connected,
      (err: unknown) => err instanceof DeviceClientError && err.code === 'MPUSH_ERR_HANDSHAKE',
    );
    assert.equal((await serverError)[0].reason, 'bad handshake');
    await peer.waitClosed();
  });

  it('sends heartbeats when idle and drops a connection that reads nothing for two heartbeats', async (t) => {
    await setup(t);
    const client = makeClient({ heartbeatMs: 500 });
    const connected = client.connect();
    const peer = await server.nextPeer();
    const hs = await peer.expectHandshake();
    assert.equal(hs.message.maxHeartbeat, 500);
    peer.acceptHandshake(hs, { sessionId: 'sess-hb', heartbeat: 500 });
    await connected;
    await peer.waitHeartbeats(2);
    // Stop echoing: the client must give up on its own.
    peer.echoHeartbeats = false;
    const [event] = await nextEvent(client, 'disconnected');
    assert.ok(event.error instanceof DeviceClientError);
    assert.equal(event.error.code, 'MPUSH_ERR_HEARTBEAT_TIMEOUT');
    assert.equal(event.disconnect, Disconnect.HEARTBEAT_TIMEOUT);
    assert.equal(event.willReconnect, true, 'a dead connection is not a reason to give up');
    await peer.waitClosed();
    await server.nextPeer();
  });

  it('drops a connection whose server declares an oversized packet', async (t) => {
    await setup(t);
    const { client, peer } = await handshaken({ maxPacketSize: 100 });
    const disconnected = nextEvent(client, 'disconnected');
    const header = Buffer.alloc(HEADER_LENGTH);
    header.writeInt32BE(1_000_000, 0);
    header[4] = Command.PUSH;
    peer.socket.write(header);
    const [event] = await disconnected;
    assert.equal((event.error as DeviceClientError).code, 'MPUSH_ERR_PROTOCOL');
  });

  it('does not reconnect after a refused handshake, even with auto-reconnect on', async (t) => {
    await setup(t);
    const client = makeClient({ sessionStorage: null });
    let reconnects = 0;
    client.on('reconnecting', () => reconnects++);
    const disconnected = nextEvent(client, 'disconnected');
    const connected = client.connect();
    const peer = await server.nextPeer();
    peer.error((await peer.expectHandshake()).packet, ErrorCode.DISPATCH_ERROR, 'bad handshake');
    const [event] = await disconnected;
    assert.equal(event.disconnect, Disconnect.BAD_HANDSHAKE);
    assert.equal(event.willReconnect, false);
    await assert.rejects(
      connected,
      (err: unknown) => err instanceof DeviceClientError && err.code === 'MPUSH_ERR_HANDSHAKE',
    );
    assert.equal(client.state, 'idle');
    assert.equal(reconnects, 0);
  });

  it('a refused bind forgets the user and ends the session with the connection', async (t) => {
    await setup(t);
    const { client, peer } = await handshaken();
    const refused = client.bindUser('user-x', undefined, 'expired-token');
    const bind = await peer.next();
    peer.error(bind, ErrorCode.UNKNOWN, 'bind token expired');
    await assert.rejects(refused, ServerReplyError);
    assert.equal(client.state, 'ready', 'the server keeps the connection, and so does the client');
    let reconnects = 0;
    client.on('reconnecting', () => reconnects++);
    const disconnected = nextEvent(client, 'disconnected');
    peer.destroy();
    const [event] = await disconnected;
    assert.equal(event.disconnect, Disconnect.AUTH_REFUSED);
    assert.equal(event.willReconnect, false);
    assert.equal(client.state, 'idle');
    assert.equal(reconnects, 0);
  });

  it('gives up a connection with no handshake within connectTimeoutMs, and tries again', async (t) => {
    await setup(t);
    // The default (10 s) is past the hang guard: only the option can end this attempt in time.
    const client = makeClient({ connectTimeoutMs: 200, sessionStorage: null });
    const errors: Error[] = [];
    client.on('error', (e) => errors.push(e));
    const disconnected = nextEvent(client, 'disconnected');
    const connected = client.connect();
    const silent = await server.nextPeer();
    await silent.expectHandshake(); // and never answer it
    const [event] = await disconnected;
    assert.ok(event.error instanceof DeviceClientError);
    assert.equal(event.error.code, 'MPUSH_ERR_CONNECT_TIMEOUT');
    assert.equal(event.disconnect, Disconnect.HANDSHAKE_TIMEOUT);
    assert.equal(event.willReconnect, true);
    assert.ok(errors.includes(event.error), 'reported as an error too');
    await silent.waitClosed();
    const again = await server.nextPeer();
    again.acceptHandshake(await again.expectHandshake(), { sessionId: 'sess-late' });
    await connected;
  });

  it('rejects connect() with MPUSH_ERR_CONNECT_TIMEOUT when auto-reconnect is off', async (t) => {
    await setup(t);
    const client = makeClient({ connectTimeoutMs: 200, autoReconnect: false, sessionStorage: null });
    const connected = client.connect();
    await (await server.nextPeer()).expectHandshake();
    await assert.rejects(
      connected,
      (err: unknown) => err instanceof DeviceClientError && err.code === 'MPUSH_ERR_CONNECT_TIMEOUT',
    );
    assert.equal(client.state, 'idle');
  });

  it('drops a push whose PushMsg msgId was delivered, acks a biz duplicate, in a bounded window', async (t) => {
    await setup(t);
    const { client, peer } = await handshaken({ dedupWindow: 2 });
    const seen: string[] = [];
    const duplicates: Array<[string, number]> = [];
    client.on('push', (p) => seen.push(p.content.toString()));
    client.on('duplicate', (d) => duplicates.push([d.msgId, d.sessionId]));
    const msg = (id: string): Buffer => Buffer.from(JSON.stringify({ msgType: 1, msgId: id, content: id }));
    peer.sendEncrypted(Command.PUSH, 20, msg('m1'), Flags.BIZ_ACK);
    peer.sendEncrypted(Command.PUSH, 21, msg('m2'));
    peer.sendEncrypted(Command.PUSH, 22, msg('m1'), Flags.BIZ_ACK); // dropped, acked by the client
    peer.sendEncrypted(Command.PUSH, 23, Buffer.from('not json'));
    peer.sendEncrypted(Command.PUSH, 24, Buffer.from('not json')); // no msgId: delivered
    peer.sendEncrypted(Command.PUSH, 25, msg('m3')); // the window holds m2, m3: m1 is forgotten
    peer.sendEncrypted(Command.PUSH, 26, msg('m1'));
    const ack = await peer.next();
    assert.deepEqual([ack.cmd, ack.sessionId], [Command.ACK, 22]);
    await waitFor(() => seen.length === 6, WAIT, 'six pushes delivered');
    const ids = seen.map((c) => (c.startsWith('{') ? (JSON.parse(c) as { msgId: string }).msgId : c));
    assert.deepEqual(ids, ['m1', 'm2', 'not json', 'not json', 'm3', 'm1']);
    assert.deepEqual(duplicates, [['m1', 22]]);
  });

  it('delivers every push with dedupWindow 0', async (t) => {
    await setup(t);
    const { client, peer } = await handshaken({ dedupWindow: 0 });
    const seen: number[] = [];
    client.on('push', (p) => seen.push(p.sessionId));
    const body = Buffer.from(JSON.stringify({ msgId: 'same', content: 'x' }));
    peer.sendEncrypted(Command.PUSH, 30, body);
    peer.sendEncrypted(Command.PUSH, 31, body);
    await waitFor(() => seen.length === 2, WAIT, 'both pushes delivered');
    assert.deepEqual(seen, [30, 31]);
    assert.throws(() => makeClient({ dedupWindow: -1 }), TypeError);
  });

  it('sendRaw and sendPacket write the given bytes', async (t) => {
    await setup(t);
    const { client, peer } = await handshaken();
    assert.equal(client.sendPacket({ cmd: 99, flags: 0, sessionId: 12, body: Buffer.from('raw') }), true);
    const p = await peer.next();
    assert.deepEqual([p.cmd, p.sessionId, p.body.toString()], [99, 12, 'raw']);
    client.sendPacket(
      { cmd: Command.HTTP_PROXY, flags: 0, sessionId: 13, body: Buffer.from('enc') },
      { encrypt: true },
    );
    const q = await peer.next();
    assert.equal(q.flags, Flags.CRYPTO);
    assert.equal(peer.open(q).toString(), 'enc');
    client.sendRaw(Buffer.from([0xdf, 0xdf]));
    await peer.waitHeartbeats(2);
  });

  it('close() closes the socket, rejects pending requests and does not reconnect', async (t) => {
    await setup(t);
    const client = makeClient();
    const connected = client.connect();
    const peer = await server.nextPeer();
    peer.acceptHandshake(await peer.expectHandshake(), { sessionId: 'sess-close' });
    await connected;
    let reconnects = 0;
    client.on('reconnecting', () => reconnects++);
    const bound = assert.rejects(
      client.bindUser('user-c'),
      (err: unknown) => err instanceof DeviceClientError && err.code === 'MPUSH_ERR_CLOSED',
    );
    await peer.next();
    const disconnected = nextEvent(client, 'disconnected');
    await client.close();
    await bound;
    assert.equal((await disconnected)[0].reason, 'closed by the client');
    assert.equal(client.state, 'closed');
    await peer.waitClosed();
    const peersBefore = server.peers.length;
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(reconnects, 0);
    assert.equal(server.peers.length, peersBefore);
    assert.equal(client.ack(1), false);
  });

  it('close() during the backoff cancels the pending reconnect', async (t) => {
    await setup(t);
    const client = makeClient({
      servers: [{ host: '127.0.0.1', port: await deadPort() }],
      reconnect: { initialMs: 60_000 },
    });
    const connected = client.connect();
    await nextEvent(client, 'reconnecting');
    await client.close();
    await assert.rejects(
      connected,
      (err: unknown) => err instanceof DeviceClientError && err.code === 'MPUSH_ERR_CLOSED',
    );
    assert.equal(client.state, 'closed');
  });
  it('httpRequest: HTTP_PROXY with readTimeout, the reply matched by sessionId; ERROR and no reply reject', async (t) => {
    await setup(t);
    const { client, peer } = await handshaken();
    const pending = client.httpRequest({
      url: 'http://api/x?y=1',
      method: 'POST',
      headers: { 'x-a': '1' },
      body: 'hi',
      timeoutMs: 2000,
    });
    const req = await peer.next();
    assert.equal(req.cmd, Command.HTTP_PROXY);
    assert.equal(req.flags & Flags.CRYPTO, Flags.CRYPTO);
    const m = HttpRequestCodec.decode(peer.open(req));
    // The server is told a little less than the client waits, so its 408 comes first.
    assert.deepEqual(
      { ...m, body: m.body.toString() },
      { method: 1, uri: 'http://api/x?y=1', headers: 'x-a:1\nreadTimeout:1800\n', body: 'hi' },
    );
    const other = HttpResponseCodec.encode({
      statusCode: 500,
      reasonPhrase: '',
      headers: '',
      body: Buffer.alloc(0),
    });
    peer.sendEncrypted(Command.HTTP_PROXY, req.sessionId + 100, other);
    const body = Buffer.from('z'.repeat(5000));
    const reply = {
      statusCode: 201,
      reasonPhrase: 'Created',
      headers: 'Set-Cookie:a=1\nset-cookie:b=2\nX-Y: z\n',
      body,
    };
    peer.sendEncrypted(Command.HTTP_PROXY, req.sessionId, HttpResponseCodec.encode(reply), 0, true);
    const res = await pending;
    assert.deepEqual(
      { ...res, body: res.body.equals(body) },
      { status: 201, reason: 'Created', headers: { 'set-cookie': 'a=1, b=2', 'x-y': 'z' }, body: true },
    );

    // An MPush server with its proxy off answers ERROR 101.
    const refused = client.httpRequest({ url: 'http://api/x' });
    peer.error(await peer.next(), ErrorCode.UNSUPPORTED_CMD, 'unsupported');
    await assert.rejects(
      refused,
      (e: unknown) => e instanceof ServerReplyError && e.code === ErrorCode.UNSUPPORTED_CMD,
    );
    await assert.rejects(
      client.httpRequest({ url: 'http://api/x', timeoutMs: 50 }),
      (e: unknown) => e instanceof DeviceClientError && e.code === 'MPUSH_ERR_TIMEOUT',
    );
    // What cannot travel is refused before anything is sent.
    await assert.rejects(client.httpRequest({ url: 'http://api/x', headers: { 'a:b': 'c' } }), TypeError);
    await assert.rejects(client.httpRequest({ url: 'http://api/x', headers: { a: 'b\nc: d' } }), TypeError);
    await assert.rejects(client.httpRequest({ url: 'http://api/x', method: 'PATCH' as never }), TypeError);
  });
});

/**
 * The exact bytes of MPush's Java SDK (vectors.json, generated with mpush-client-java 0.8.1):
 * a fast-connected client must produce and accept them byte for byte.
 */
describe('DeviceClient against the Java SDK vectors', () => {
  const vectors = new Map<string, { hex: string }>(
    readFixture<{ vectors: Array<{ id: string; hex: string }> }>('vectors.json').vectors.map((v) => [
      v.id,
      v,
    ]),
  );
  const hex = (id: string): Buffer => {
    const v = vectors.get(id);
    if (v === undefined) throw new Error(`no vector ${id}`);
    return Buffer.from(v.hex, 'hex');
  };

  it('speaks fast connect, bind, ack, compressed push and kick like the SDK', async (t) => {
    await setup(t);
    const storage = new MemorySessionStorage();
    await storage.save({
      sessionId: 'sess-1',
      deviceId: 'dev-1',
      sessionKey: '10101010101010101010101010101010',
      iv: '000102030405060708090a0b0c0d0e0f',
      heartbeat: 180_000,
      expireTime: Date.now() + 60_000,
    });
    const client = makeClient({ sessionStorage: storage, userId: 'user-0', tags: 'vip,beta' });
    const connected = client.connect();
    const bound = nextEvent(client, 'bind');
    const peer = await server.nextPeer();

    const fc = await peer.next();
    assert.equal(fc.cmd, Command.FAST_CONNECT);
    assert.deepEqual(peer.takeReceived(), hex('fastConnect.packet'));
    peer.socket.write(hex('fastConnectOk.packet'));
    await peer.next(); // the automatic bind, sessionId 2 as in the SDK
    assert.deepEqual(peer.takeReceived(), hex('bind.packet.aes'));
    peer.socket.write(hex('ok.bind.packet'));
    await connected;
    await bound;

    const autoPush = nextEvent(client, 'push');
    peer.socket.write(hex('push.aes.autoAck'));
    assert.equal((await autoPush)[0].content.toString(), 'hello mpush');
    await peer.next();
    assert.deepEqual(peer.takeReceived(), hex('ack.packet'));

    const compressed = nextEvent(client, 'push');
    peer.socket.write(hex('push.aes.compressed.bizAck'));
    const [event] = await compressed;
    assert.equal(event.content.toString(), 'a'.repeat(2000));
    assert.equal(event.ackModel, 'biz');

    const kick = nextEvent(client, 'kick');
    peer.socket.write(hex('kick.packet.aes'));
    assert.deepEqual((await kick)[0], { deviceId: 'dev-1', userId: 'user-0' });
  });

  it('falls back to a handshake on the SDK ERROR 103 packet', async (t) => {
    await setup(t);
    const storage = new MemorySessionStorage();
    await storage.save({
      sessionId: 'sess-1',
      deviceId: 'dev-1',
      sessionKey: '10101010101010101010101010101010',
      iv: '000102030405060708090a0b0c0d0e0f',
      heartbeat: 180_000,
      expireTime: Date.now() + 60_000,
    });
    const client = makeClient({ sessionStorage: storage });
    void client.connect();
    const peer = await server.nextPeer();
    await peer.expectFastConnect();
    peer.socket.write(hex('error.fastConnect.sessionExpired'));
    const hs = await peer.expectHandshake();
    assert.equal(hs.message.deviceId, 'dev-1');
    assert.equal(hs.message.timestamp, 0);
  });
});
