import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import {
  DeviceClient,
  type DeviceClientEvents,
  type DeviceClientOptions,
  FileSessionStorage,
  ServerReplyError,
  WsDeviceClient,
  type WsDeviceClientEvents,
  type WsDeviceClientOptions,
} from '../../src/client/device/index.js';
import { type Connection, Disconnect } from '../../src/connection/index.js';
import { mintBindToken } from '../../src/crypto/bind-token.js';
import { randomKey } from '../../src/crypto/index.js';
import { ClientType, Command, ErrorCode, Flags, HandshakeCodec } from '../../src/protocol/index.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { mpushDefaultKeys } from '../helpers/shared.js';
import { waitFor } from '../helpers/wait.js';

/** Hang guard for awaited events; never a timing assertion. */
const WAIT = 5000;
const publicKey = mpushDefaultKeys().publicKey;

/**
 * The next `event` of a DeviceClient. Not `events.once`: that also listens for 'error', which the
 * client emits only when someone listens, and would turn an expected failure into a rejection.
 */
function next<K extends keyof DeviceClientEvents>(
  client: DeviceClient,
  event: K,
): Promise<DeviceClientEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${String(event)}`)), WAIT);
    client.once(event, ((...args: DeviceClientEvents[K]) => {
      clearTimeout(timer);
      resolve(args);
    }) as never);
  });
}

/** The next `event` of a WsDeviceClient (a TinyEmitter). */
function nextWs<K extends keyof WsDeviceClientEvents>(
  client: WsDeviceClient,
  event: K,
): Promise<WsDeviceClientEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ws ${String(event)}`)), WAIT);
    client.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

interface Ack {
  conn: Connection;
  sessionId: number;
}

describe('DeviceClient SDK against a real node', () => {
  let t: TestNode;
  let acks: Ack[] = [];
  const clients: Array<DeviceClient | WsDeviceClient> = [];
  let seq = 0;

  const tcpClient = (opts: Partial<DeviceClientOptions> = {}): DeviceClient => {
    const c = new DeviceClient({
      servers: [{ host: '127.0.0.1', port: t.tcpPort }],
      publicKey,
      deviceId: `sdk-device-${++seq}`,
      reconnect: { initialMs: 10, maxMs: 100, jitter: 0 },
      ...opts,
    });
    clients.push(c);
    return c;
  };
  const wsClient = (opts: Partial<WsDeviceClientOptions> = {}): WsDeviceClient => {
    const c = new WsDeviceClient({
      url: `ws://127.0.0.1:${t.httpPort}/`,
      deviceId: `ws-device-${++seq}`,
      WebSocket,
      reconnect: { initialMs: 10, maxMs: 100, jitter: 0 },
      ...opts,
    });
    clients.push(c);
    return c;
  };
  /** A connected client bound to `userId` (auto bind after the handshake). */
  const boundTcp = async (userId: string, opts: Partial<DeviceClientOptions> = {}) => {
    const c = tcpClient({ userId, ...opts });
    const bound = next(c, 'bind');
    await c.connect();
    await bound;
    return c;
  };
  const serverConn = (userId: string, type: number): Connection => {
    const conn = t.node.connections.router.get(userId, type);
    assert.ok(conn, `${userId} is bound for client type ${type}`);
    return conn;
  };
  const push = (conn: Connection, content: Buffer | string, flags = 0): number => {
    const sessionId = t.node.connections.context.nextPushSessionId();
    const sent = conn.send({
      cmd: Command.PUSH,
      sessionId,
      flags,
      content: typeof content === 'string' ? Buffer.from(content) : content,
    });
    assert.equal(sent, true);
    return sessionId;
  };

  before(async () => {
    t = await startTestNode();
    // Observe acks, and still hand them to whoever listened before (the node's push center).
    const previous = t.node.connections.context.ackListener;
    t.node.connections.context.ackListener = (conn, sessionId) => {
      acks.push({ conn, sessionId });
      previous?.(conn, sessionId);
    };
  });
  afterEach(async () => {
    acks = [];
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });
  after(async () => {
    await t.stop();
  });

  describe('TCP DeviceClient', () => {
    it('connects, handshakes and binds its user automatically', async () => {
      const c = tcpClient({ userId: 'sdk-alice', osName: 'android', tags: ['vip', 'beta'] });
      const handshake = next(c, 'handshake');
      const bound = next(c, 'bind');
      await c.connect();
      const [hs] = await handshake;
      assert.equal(hs.fast, false);
      assert.match(hs.sessionId, /^[0-9a-f]{32}$/);
      assert.equal(
        hs.heartbeat,
        t.config.heartbeat.maxMs,
        'negotiated: max(serverMin, min(240 s, serverMax))',
      );
      assert.equal(c.state, 'ready');
      assert.deepEqual(await bound, [{ userId: 'sdk-alice' }]);
      assert.equal(c.boundUserId, 'sdk-alice');

      const conn = serverConn('sdk-alice', ClientType.MOBILE);
      assert.equal(conn.deviceId, c.deviceId);
      assert.equal(conn.sessionId, hs.sessionId);
      assert.equal(conn.tags, 'vip,beta');
      assert.equal(conn.handshaked, true);
    });

    it('receives a server push, decrypted, and acks an AUTO_ACK push by itself', async () => {
      const c = await boundTcp('sdk-auto');
      const conn = serverConn('sdk-auto', ClientType.MOBILE);
      const got = next(c, 'push');
      const sessionId = push(conn, 'hello device', Flags.AUTO_ACK);
      const [p] = await got;
      assert.equal(p.content.toString(), 'hello device');
      assert.equal(p.sessionId, sessionId);
      assert.equal(p.ackModel, 'auto');
      assert.equal(p.flags, Flags.CRYPTO | Flags.AUTO_ACK, 'mpush-wire §12: CRYPTO|AUTO_ACK = 9');
      await waitFor(() => acks.length > 0, WAIT, 'the automatic ack');
      assert.deepEqual(acks, [{ conn, sessionId }]);
    });

    it('acks a BIZ_ACK push only when the application calls ack()', async () => {
      const c = await boundTcp('sdk-biz');
      const conn = serverConn('sdk-biz', ClientType.MOBILE);
      const got = next(c, 'push');
      const sessionId = push(conn, 'handle me', Flags.BIZ_ACK);
      const [p] = await got;
      assert.equal(p.ackModel, 'biz');
      assert.equal(p.flags, Flags.CRYPTO | Flags.BIZ_ACK);
      // A round trip on the same connection: an ack sent before it would have reached the server first.
      await c.pushToServer('ping', { ack: true });
      assert.deepEqual(acks, [], 'no ack before ack()');
      assert.equal(c.ack(p.sessionId), true);
      await waitFor(() => acks.length > 0, WAIT, 'the application ack');
      assert.deepEqual(acks, [{ conn, sessionId }]);
    });

    it('does not ack a push that asked for none', async () => {
      const c = await boundTcp('sdk-noack');
      const conn = serverConn('sdk-noack', ClientType.MOBILE);
      const got = next(c, 'push');
      push(conn, 'fire and forget');
      const [p] = await got;
      assert.equal(p.ackModel, 'none');
      assert.equal(p.flags, Flags.CRYPTO);
      await c.pushToServer('ping', { ack: true });
      assert.deepEqual(acks, []);
    });

    it('receives a push above the compression threshold intact (zlib, then AES)', async () => {
      const c = await boundTcp('sdk-big');
      const conn = serverConn('sdk-big', ClientType.MOBILE);
      // Compressible but not trivial: words drawn at random from a small vocabulary.
      const words = ['push', 'device', 'mpush', 'ack', 'session', 'cipher', 'route', 'kick'];
      const parts: string[] = [];
      let size = 0;
      while (size < 20 * 1024) {
        const w = `${words[randomBytes(1)[0]! % words.length]}-${randomBytes(1)[0]} `;
        parts.push(w);
        size += w.length;
      }
      const content = Buffer.from(parts.join(''));
      assert.ok(content.length > t.config.compress.thresholdBytes);
      const got = next(c, 'push');
      push(conn, content, Flags.AUTO_ACK);
      const [p] = await got;
      assert.ok(p.flags & Flags.COMPRESS, 'sent compressed');
      assert.ok(p.flags & Flags.CRYPTO, 'and encrypted');
      assert.ok(p.content.equals(content), 'inflated back to the same bytes');
      await waitFor(() => acks.length > 0, WAIT, 'the ack of the big push');
    });

    it('is kicked, stays connected and unbound, when a device of the same type binds its user', async () => {
      const first = await boundTcp('sdk-kicked', { osName: 'android' });
      const firstConn = serverConn('sdk-kicked', ClientType.MOBILE);
      const kicked = next(first, 'kick');
      const second = await boundTcp('sdk-kicked', { osName: 'android' });
      const [kick] = await kicked;
      assert.deepEqual(kick, { deviceId: first.deviceId, userId: 'sdk-kicked' });

      assert.equal(first.state, 'ready', 'the kicked device stays connected (mpush-wire §12)');
      assert.equal(first.boundUserId, undefined);
      assert.equal(firstConn.closed, false);
      assert.equal(firstConn.userId, '', 'unbound on the server');
      assert.equal(serverConn('sdk-kicked', ClientType.MOBILE).deviceId, second.deviceId);
      assert.equal(t.node.connections.router.connectionsOf('sdk-kicked').length, 1);
      // Still alive: a round trip works on the kicked connection.
      await first.pushToServer('still here', { ack: true });
    });

    it('lets a PC and a phone of the same user coexist', async () => {
      const phone = await boundTcp('sdk-multi', { osName: 'android' });
      const pc = await boundTcp('sdk-multi', { osName: 'Windows 11' });
      await pc.pushToServer('sync', { ack: true });
      await phone.pushToServer('sync', { ack: true });
      assert.equal(phone.boundUserId, 'sdk-multi');
      assert.equal(pc.boundUserId, 'sdk-multi');
      assert.deepEqual(
        t.node.connections.router
          .connectionsOf('sdk-multi')
          .map((c) => c.clientType)
          .sort(),
        [ClientType.MOBILE, ClientType.PC],
      );
    });

    it('reconnects after the server closes its connection, fast-connects and binds again', async () => {
      const c = await boundTcp('sdk-reconnect');
      const before = serverConn('sdk-reconnect', ClientType.MOBILE);
      const firstSession = c.sessionId;
      assert.ok(firstSession);

      const disconnected = next(c, 'disconnected');
      const handshake = next(c, 'handshake');
      const rebound = next(c, 'bind');
      before.close(Disconnect.SHUTDOWN);
      await disconnected;
      const [hs] = await handshake;
      assert.equal(hs.fast, true, 'resumed with FAST_CONNECT');
      assert.equal(hs.sessionId, firstSession);
      await rebound;

      const after = serverConn('sdk-reconnect', ClientType.MOBILE);
      assert.notEqual(after, before);
      assert.equal(after.deviceId, c.deviceId);
      assert.equal(after.sessionId, firstSession);
      assert.equal(t.node.connections.router.connectionsOf('sdk-reconnect').length, 1);

      // The restored cipher works both ways.
      const got = next(c, 'push');
      const sessionId = push(after, 'after the reconnect', Flags.AUTO_ACK);
      const [p] = await got;
      assert.equal(p.content.toString(), 'after the reconnect');
      await waitFor(() => acks.some((a) => a.sessionId === sessionId), WAIT, 'the ack after reconnect');
      await c.pushToServer('and back', { ack: true });
    });

    it('does not reconnect after close()', async () => {
      const c = await boundTcp('sdk-close');
      const conn = serverConn('sdk-close', ClientType.MOBILE);
      await c.close();
      assert.equal(c.state, 'closed');
      await waitFor(() => conn.closed, WAIT, 'the server to see the close');
      assert.equal(t.node.connections.router.get('sdk-close', ClientType.MOBILE), undefined);
    });

    describe('fast connect across process restarts (FileSessionStorage)', () => {
      let dir: string;
      before(() => {
        dir = mkdtempSync(join(tmpdir(), 'mpush-sdk-'));
      });
      after(() => rmSync(dir, { recursive: true, force: true }));

      it('fast-connects a new client with the stored session of an earlier one', async () => {
        const path = join(dir, 'session.json');
        const deviceId = 'restarting-device';
        const first = tcpClient({ deviceId, sessionStorage: new FileSessionStorage(path) });
        const hs1 = next(first, 'handshake');
        await first.connect();
        const [full] = await hs1;
        assert.equal(full.fast, false);
        await waitFor(() => existsSync(path), WAIT, 'the session file');
        await first.close();

        const second = tcpClient({
          deviceId,
          userId: 'sdk-restart',
          sessionStorage: new FileSessionStorage(path),
        });
        const hs2 = next(second, 'handshake');
        const bound = next(second, 'bind');
        await second.connect();
        const [fast] = await hs2;
        assert.equal(fast.fast, true);
        assert.equal(fast.sessionId, full.sessionId);
        await bound;
        const conn = serverConn('sdk-restart', ClientType.MOBILE);
        assert.equal(conn.deviceId, deviceId);
        assert.equal(conn.sessionId, full.sessionId);

        const got = next(second, 'push');
        push(conn, 'resumed', Flags.AUTO_ACK);
        assert.equal((await got)[0].content.toString(), 'resumed');
      });

      it('falls back to a full handshake when the server no longer knows the session', async () => {
        const path = join(dir, 'stale.json');
        const deviceId = 'stale-device';
        const first = tcpClient({ deviceId, sessionStorage: new FileSessionStorage(path) });
        await first.connect();
        const oldSession = first.sessionId;
        await waitFor(() => existsSync(path), WAIT, 'the session file');
        await first.close();
        await t.node.connections.sessions.delete(oldSession!);

        const second = tcpClient({ deviceId, sessionStorage: new FileSessionStorage(path) });
        const refused = next(second, 'serverError');
        const hs = next(second, 'handshake');
        await second.connect();
        const [err] = await refused;
        assert.equal(err.cmd, Command.FAST_CONNECT);
        assert.equal(err.code, ErrorCode.SESSION_EXPIRED);
        const [info] = await hs;
        assert.equal(info.fast, false);
        assert.notEqual(info.sessionId, oldSession);
        await second.pushToServer('works', { ack: true });
      });

      it('never fast-connects the stored session of another device', async () => {
        const path = join(dir, 'other.json');
        const first = tcpClient({ deviceId: 'owner', sessionStorage: new FileSessionStorage(path) });
        await first.connect();
        await waitFor(() => existsSync(path), WAIT, 'the session file');
        await first.close();
        const second = tcpClient({ deviceId: 'not-owner', sessionStorage: new FileSessionStorage(path) });
        const hs = next(second, 'handshake');
        await second.connect();
        assert.equal((await hs)[0].fast, false);
      });
    });

    it('sends a device-originated push that the server acks and emits as devicePush', async () => {
      const c = await boundTcp('sdk-upstream');
      const events = t.node.connections.events;
      const got = once(events, 'devicePush', { signal: AbortSignal.timeout(WAIT) });
      await c.pushToServer('from the device', { ack: true });
      const [conn, content] = (await got) as [Connection, Buffer, number];
      assert.equal(content.toString(), 'from the device');
      assert.equal(conn.deviceId, c.deviceId);
      assert.equal(conn.userId, 'sdk-upstream');

      // Above the SDK's 1 KiB threshold it is compressed; the server inflates it.
      const big = 'upstream '.repeat(2000);
      const gotBig = once(events, 'devicePush', { signal: AbortSignal.timeout(WAIT) });
      await c.pushToServer(big, { ack: true });
      assert.equal(((await gotBig)[1] as Buffer).toString(), big);
    });
  });

  // Regression: a second handshake on a bound connection changed its client type while the router
  // still held it under the old one, so closing it never removed the route (a dead connection stayed
  // "online" for that user and type for ever).
  describe('a new identity on a bound connection drops the old binding', () => {
    it('over TCP: a re-handshake as another device type unbinds, and the close leaves no route', async () => {
      const c = await boundTcp('rehandshake-tcp', { osName: 'android', autoReconnect: false });
      const conn = serverConn('rehandshake-tcp', ClientType.MOBILE);
      const counts = [t.node.connections.router.onlineUsers, t.node.connections.router.boundConnections];
      const offline = once(t.node.connections.events, 'offline', { signal: AbortSignal.timeout(WAIT) });
      // The SDK never does this itself: send a second handshake, encrypted with the session cipher.
      const body = HandshakeCodec.encode({
        deviceId: 'another-device',
        osName: 'Windows 11',
        osVersion: '',
        clientVersion: '',
        iv: randomKey(),
        clientKey: randomKey(),
        minHeartbeat: 0,
        maxHeartbeat: 0,
        timestamp: 0,
      });
      const disconnected = next(c, 'disconnected');
      assert.ok(
        c.sendPacket({ cmd: Command.HANDSHAKE, flags: 0, sessionId: c.nextId(), body }, { encrypt: true }),
      );
      const [offConn, offUser] = (await offline) as [Connection, string];
      assert.equal(offConn, conn);
      assert.equal(offUser, 'rehandshake-tcp');
      assert.equal(conn.userId, '');
      assert.equal(conn.clientType, ClientType.PC);
      assert.equal(t.node.connections.router.get('rehandshake-tcp', ClientType.MOBILE), undefined);
      assert.equal(t.node.connections.router.get('rehandshake-tcp', ClientType.PC), undefined);
      // The SDK refuses the unexpected HandshakeOk and drops the connection.
      await disconnected;
      await waitFor(() => conn.closed, WAIT, 'the server to close the connection');
      assert.deepEqual(
        [t.node.connections.router.onlineUsers, t.node.connections.router.boundConnections],
        [counts[0]! - 1, counts[1]! - 1],
      );
    });

    it('over WebSocket: a re-handshake as another device type unbinds, and the close leaves no route', async () => {
      const c = wsClient({ userId: 'rehandshake-ws', autoReconnect: false });
      const bound = nextWs(c, 'bind');
      await c.connect();
      await bound;
      const conn = serverConn('rehandshake-ws', ClientType.WEB);
      assert.ok(c.sendPacket(Command.HANDSHAKE, 9999, { deviceId: 'another-device', osName: 'android' }));
      await waitFor(() => conn.deviceId === 'another-device', WAIT, 'the second handshake');
      assert.equal(conn.userId, '');
      assert.equal(t.node.connections.router.get('rehandshake-ws', ClientType.WEB), undefined);
      await c.close();
      await waitFor(() => conn.closed, WAIT, 'the server to see the close');
      assert.equal(t.node.connections.router.get('rehandshake-ws', ClientType.WEB), undefined);
      assert.equal(t.node.connections.router.get('rehandshake-ws', ClientType.MOBILE), undefined);
      assert.deepEqual(t.node.connections.router.connectionsOf('rehandshake-ws'), []);
    });

    it('a device that binds again after its re-handshake is routed under its new type', async () => {
      const c = wsClient({ userId: 'rehandshake-rebind', autoReconnect: false });
      const bound = nextWs(c, 'bind');
      await c.connect();
      await bound;
      const conn = serverConn('rehandshake-rebind', ClientType.WEB);
      assert.ok(c.sendPacket(Command.HANDSHAKE, 9998, { deviceId: 'now-a-phone', osName: 'ios' }));
      await waitFor(() => conn.clientType === ClientType.MOBILE, WAIT, 'the second handshake');
      await c.bindUser('rehandshake-rebind');
      assert.equal(serverConn('rehandshake-rebind', ClientType.MOBILE), conn);
      assert.deepEqual(t.node.connections.router.connectionsOf('rehandshake-rebind'), [conn]);
      await c.close();
      await waitFor(() => conn.closed, WAIT, 'the server to see the close');
      assert.deepEqual(t.node.connections.router.connectionsOf('rehandshake-rebind'), []);
    });
  });

  describe('bind tokens (auth.bindSecret)', () => {
    const secret = 'sdk-bind-secret';
    let auth: TestNode;
    const authClients: DeviceClient[] = [];
    const authClient = (opts: Partial<DeviceClientOptions> = {}) => {
      const c = new DeviceClient({
        servers: [{ host: '127.0.0.1', port: auth.tcpPort }],
        publicKey,
        deviceId: `auth-device-${++seq}`,
        autoReconnect: false,
        ...opts,
      });
      authClients.push(c);
      return c;
    };
    before(async () => {
      auth = await startTestNode({ auth: { bindSecret: secret } });
    });
    after(async () => {
      await Promise.all(authClients.map((c) => c.close()));
      await auth.stop();
    });

    it('binds with a valid token in bindData', async () => {
      const c = authClient({ userId: 'tok-user', bindData: mintBindToken(secret, 'tok-user', 60) });
      const bound = next(c, 'bind');
      await c.connect();
      await bound;
      assert.equal(auth.node.connections.router.get('tok-user', ClientType.MOBILE)?.deviceId, c.deviceId);
    });

    it('rejects bindUser with the server’s reason for a bad token, and keeps the connection', async () => {
      const c = authClient();
      await c.connect();
      const cases: Array<[string, string]> = [
        [mintBindToken('wrong-secret', 'tok-bad', 60), 'bind token bad-signature'],
        [mintBindToken(secret, 'someone-else', 60), 'bind token bad-signature'],
        [mintBindToken(secret, 'tok-bad', 60, Math.floor(Date.now() / 1000) - 120), 'bind token expired'],
        ['not-a-token', 'bind token malformed'],
        ['', 'bind token malformed'],
      ];
      for (const [token, reason] of cases) {
        await assert.rejects(c.bindUser('tok-bad', undefined, token), (err: unknown) => {
          assert.ok(err instanceof ServerReplyError, String(err));
          assert.equal(err.cmd, Command.BIND);
          assert.equal(err.reason, reason);
          return true;
        });
      }
      assert.equal(auth.node.connections.router.get('tok-bad', ClientType.MOBILE), undefined);
      assert.equal(c.state, 'ready');
      await c.bindUser('tok-bad', undefined, mintBindToken(secret, 'tok-bad', 60));
      assert.equal(c.boundUserId, 'tok-bad');
      assert.ok(auth.node.connections.router.get('tok-bad', ClientType.MOBILE));
    });
  });

  describe('WsDeviceClient (WebSocket JSON protocol)', () => {
    const boundWs = async (userId: string, opts: Partial<WsDeviceClientOptions> = {}) => {
      const c = wsClient({ userId, ...opts });
      const bound = nextWs(c, 'bind');
      await c.connect();
      await bound;
      return c;
    };

    it('handshakes and binds as a WEB device', async () => {
      const c = wsClient({ userId: 'ws-alice' });
      const handshake = nextWs(c, 'handshake');
      const bound = nextWs(c, 'bind');
      await c.connect();
      const [hs] = await handshake;
      assert.match(hs.sessionId, /^[0-9a-f]{32}$/);
      assert.equal(hs.heartbeat, t.config.heartbeat.maxMs);
      assert.deepEqual(await bound, [{ userId: 'ws-alice' }]);
      assert.equal(c.boundUserId, 'ws-alice');
      const conn = serverConn('ws-alice', ClientType.WEB);
      assert.equal(conn.deviceId, c.deviceId);
      assert.equal(conn.protocol, 'json');
    });

    it('receives pushes: AUTO_ACK acked by itself, BIZ_ACK only on ack()', async () => {
      const c = await boundWs('ws-push');
      const conn = serverConn('ws-push', ClientType.WEB);

      const gotAuto = nextWs(c, 'push');
      const autoId = push(conn, 'hello web', Flags.AUTO_ACK);
      const [auto] = await gotAuto;
      assert.deepEqual(auto, {
        content: 'hello web',
        sessionId: autoId,
        flags: Flags.JSON_BODY | Flags.AUTO_ACK,
        ackModel: 'auto',
      });
      await waitFor(() => acks.length > 0, WAIT, 'the automatic ack');
      assert.deepEqual(acks, [{ conn, sessionId: autoId }]);

      acks = [];
      const gotBiz = nextWs(c, 'push');
      const bizId = push(conn, 'handle me', Flags.BIZ_ACK);
      const [biz] = await gotBiz;
      assert.equal(biz.ackModel, 'biz');
      await c.bindUser('ws-push'); // a round trip: an earlier ack would have arrived first
      assert.deepEqual(acks, [], 'no ack before ack()');
      assert.equal(c.ack(biz.sessionId), true);
      await waitFor(() => acks.length > 0, WAIT, 'the application ack');
      assert.deepEqual(acks, [{ conn, sessionId: bizId }]);
    });

    it('is kicked by a second web device of the same user, and stays connected', async () => {
      const first = await boundWs('ws-kicked');
      const firstConn = serverConn('ws-kicked', ClientType.WEB);
      const kicked = nextWs(first, 'kick');
      const second = await boundWs('ws-kicked');
      const [kick] = await kicked;
      assert.deepEqual(kick, { deviceId: first.deviceId, userId: 'ws-kicked' });
      assert.equal(first.state, 'ready');
      assert.equal(first.boundUserId, undefined);
      assert.equal(firstConn.closed, false);
      assert.equal(firstConn.userId, '');
      assert.equal(serverConn('ws-kicked', ClientType.WEB).deviceId, second.deviceId);
    });

    it('coexists with a TCP phone of the same user', async () => {
      const phone = await boundTcp('mixed-user');
      const web = await boundWs('mixed-user');
      await phone.pushToServer('sync', { ack: true });
      assert.equal(phone.boundUserId, 'mixed-user');
      assert.equal(web.boundUserId, 'mixed-user');
      assert.equal(t.node.connections.router.connectionsOf('mixed-user').length, 2);
    });

    it('reconnects and binds again after the server closes its connection', async () => {
      const c = await boundWs('ws-reconnect');
      const before = serverConn('ws-reconnect', ClientType.WEB);
      const disconnected = nextWs(c, 'disconnected');
      const rebound = nextWs(c, 'bind');
      before.close(Disconnect.SHUTDOWN);
      const [d] = await disconnected;
      assert.equal(d.code, Disconnect.SHUTDOWN.wsCode);
      await rebound;
      const after = serverConn('ws-reconnect', ClientType.WEB);
      assert.notEqual(after, before);
      assert.equal(after.deviceId, c.deviceId);
    });
  });
});
