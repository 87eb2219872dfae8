import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Connection } from '../../src/connection/index.js';
import { TcpTransport } from '../../src/connection/tcp-transport.js';
import { ClientType, Command, HEARTBEAT_FRAME } from '../../src/protocol/index.js';
import { type MemoryServer, memoryServer } from '../helpers/memory-server.js';
import { RawDevice } from '../helpers/raw-device.js';

/**
 * A plain TCP device socket reads into the process's one lent buffer (Node's `onread`, set on an
 * accepted socket), or, where Node does not allow it, through 'data' events. Both paths, on real
 * sockets: devices whose reads interleave in the one buffer each get their own packets, whole.
 */
for (const lend of [true, false]) {
  describe(`TCP device reads ${lend ? 'into the lent buffer' : "through 'data' events"}`, () => {
    let s: MemoryServer;
    let tcp: Server;
    let port = 0;
    const transports: TcpTransport[] = [];
    const devices: RawDevice[] = [];

    before(async () => {
      s = memoryServer();
      tcp = createServer({ noDelay: true }, (socket) => {
        const t = new TcpTransport(socket, 'tcp', lend);
        const conn = s.server.accept(t, 'binary');
        if (!conn) return socket.destroy();
        t.attach(conn);
        transports.push(t);
      });
      await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
      port = (tcp.address() as { port: number }).port;
    });
    after(async () => {
      for (const d of devices) d.close();
      await new Promise((r) => tcp.close(r));
      await s.close();
    });

    it(
      lend ? 'lends on this Node (a silent fallback would fail here)' : 'reads through data events',
      async () => {
        const d = await RawDevice.connect(port);
        devices.push(d);
        d.raw(HEARTBEAT_FRAME);
        await d.until(() => d.heartbeats === 1, 5000, 'the heartbeat echo');
        assert.equal(transports.at(-1)!.lendsReads, lend);
      },
    );

    it('handshakes and binds many devices at once, frames cut anywhere, each getting its own answers', async () => {
      const many = await Promise.all(Array.from({ length: 20 }, () => RawDevice.connect(port)));
      devices.push(...many);
      await Promise.all(many.map((d) => d.handshake(s.publicKey, { osName: 'android' })));
      // Each BIND frame written in pieces, so its header and body straddle reads (copied by the
      // decoder), while other sockets' reads fill the same buffer in between.
      const replies = many.map((d, i) => d.bindInPieces(`user-${i}`, 3));
      const results = await Promise.all(replies);
      for (const [i, r] of results.entries()) {
        assert.deepEqual(r.ok, { cmd: Command.BIND, code: 0, data: `user-${i},${ClientType.MOBILE}` });
      }
      for (let i = 0; i < many.length; i++) {
        const conn: Connection | undefined = s.server.router.get(`user-${i}`, ClientType.MOBILE);
        assert.equal(conn?.userId, `user-${i}`);
      }
    });
  });
}
