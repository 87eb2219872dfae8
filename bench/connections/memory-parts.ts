// Where an idle connection's memory goes: each part the server keeps per bound TCP connection
// (README.md, "Benchmarks") built n times in a fresh process, RSS and heap compared before and after
// (both after gc): this also sees what lives outside the V8 heap (OpenSSL contexts, malloc), which
// only RSS shows.
//
// A part runs in its own process (`node --expose-gc memory-parts.js <part> <n>`) with
// --max-semi-space-size=1: otherwise V8's young generation grows by up to 32 MiB while the items are
// built, a fixed cost that would show as ~1.6 KiB "per item" at n = 20,000.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { MemorySessionStore } from '../../src/cluster/index.js';
import { Connection, type ConnectionHandler, type Transport } from '../../src/connection/index.js';
import { AesCipher, mixKey, randomKey } from '../../src/crypto/index.js';
import { FrameDecoder } from '../../src/protocol/index.js';
import { LocalRouter } from '../../src/server/local-router.js';
import { TimerWheel } from '../../src/util/timer-wheel.js';
import { memory } from '../lib/procstat.js';

const noop = () => {};
const nullTransport: Transport = {
  kind: 'tcp',
  remoteAddress: '127.0.0.1:1',
  writable: true,
  bufferedBytes: 0,
  write: () => true,
  cork: noop,
  uncork: noop,
  close: noop,
  destroy: noop,
};
const nullHandler: ConnectionHandler = {
  onPacket: noop,
  onJsonPacket: noop,
  onHeartbeat: noop,
  onProtocolError: noop,
  onClose: noop,
};
const context = {
  handler: nullHandler,
  wheel: new TimerWheel<Connection>(1000, noop),
  maxPacketSize: 10 * 1024,
  maxInflatedSize: 1024 * 1024,
  outbound: { maxBytes: 1024 * 1024, drainTimeoutMs: 30_000 },
  handshakeTimeoutMs: 10_000,
  heartbeatGraceMs: 1000,
  maxHeartbeatTimeouts: 2,
  compressThreshold: 10 * 1024,
};
const router = new LocalRouter();
const sessions = new MemorySessionStore();

/** A BIND body as a device sends it, under `key`/`iv`, so the server-side decrypt works. */
const sealedBind = (key: Buffer, iv: Buffer) => new AesCipher(key, iv).encrypt(Buffer.alloc(24, 0x41));

/** The identity a handshake sets, as fresh strings (decoded from a body, not interned literals). */
const who = (i: number) => ({
  deviceId: `bench-0-${i}`,
  osName: `android${''}`.slice(0),
  osVersion: String(10),
  clientVersion: ['1', '0', '0'].join('.'),
});

function identify(conn: Connection, i: number): Connection {
  Object.assign(conn, who(i), { clientType: 1 });
  conn.sessionId = createHash('md5').update(`${conn.deviceId}${Date.now()}`).digest('hex');
  conn.startHeartbeat(180_000);
  return conn;
}

type Identity = Pick<Connection, 'deviceId' | 'osName' | 'osVersion' | 'clientVersion'>;

/** The session entry as the handshake stores it: one object literal, as the server's. */
function store(id: string, who: Identity, key: Buffer, iv: Buffer) {
  const session = {
    deviceId: who.deviceId,
    osName: who.osName,
    osVersion: who.osVersion,
    clientVersion: who.clientVersion,
    sessionKey: key.toString('hex'),
    iv: iv.toString('hex'),
    expireTime: Date.now() + 86_400_000,
  };
  return sessions.set(id, session, 86_400_000);
}

/** Each part: one item built (what is returned is kept alive until measured). */
const PARTS: Record<string, (i: number) => unknown> = {
  /** A connection's cipher once it has decrypted a BIND and encrypted a push. */
  aes(): unknown {
    const [key, iv] = [randomKey(), randomKey()];
    const aes = new AesCipher(key, iv);
    aes.decrypt(sealedBind(key, iv));
    aes.encrypt(Buffer.alloc(40));
    return aes;
  },
  frameDecoder: () => new FrameDecoder({ onPacket: noop, onHeartbeat: noop }, { maxBodyLength: 10 * 1024 }),
  sessionEntry: (i) =>
    store(createHash('md5').update(`${i}${Date.now()}`).digest('hex'), who(i), randomKey(), randomKey()),
  /** Only what the router adds: a stand-in connection carrying a fresh userId string. */
  routerEntry(i): unknown {
    router.bind({ userId: `user-0-${i}`, clientType: 1 } as unknown as Connection);
    return undefined;
  },
  connection: (i) => identify(new Connection(i, nullTransport, 'binary', context), i),
  async allButSocket(i): Promise<unknown> {
    const conn = new Connection(i, nullTransport, 'binary', context);
    conn.receive(Buffer.alloc(0)); // creates the FrameDecoder, as the first read does
    const [clientKey, iv, serverKey] = [randomKey(), randomKey(), randomKey()];
    new AesCipher(clientKey, iv).encrypt(Buffer.alloc(60)); // the HandshakeOk, then dropped
    const sessionKey = mixKey(clientKey, serverKey);
    conn.cipher = new AesCipher(sessionKey, iv);
    identify(conn, i);
    conn.cipher.decrypt(sealedBind(sessionKey, iv)); // the BIND
    conn.userId = `user-0-${i}`;
    router.bind(conn);
    await store(conn.sessionId, conn, sessionKey, iv);
    return conn;
  },
};

async function build(part: string, n: number): Promise<unknown[]> {
  const keep: unknown[] = [];
  for (let i = 0; i < n; i++) keep.push(await PARTS[part]!(i));
  return keep;
}

async function probe(part: string, n: number) {
  await build(part, 200); // warms up the code paths and the allocators
  const before = await memory();
  const kept = await build(part, n);
  const after = await memory();
  if (kept.length < 0) throw new Error('unreachable'); // keeps `kept` alive until here
  const per = (k: keyof typeof after) => Math.round((after[k] - before[k]) / n);
  return {
    part,
    n,
    rssPerItemBytes: per('rss'),
    /** (ΔRSS − ΔheapTotal) / n: what lives outside the V8 heap (native objects, backing stores). */
    nonHeapRssPerItemBytes: Math.round((after.rss - before.rss - (after.heapTotal - before.heapTotal)) / n),
    heapUsedPerItemBytes: per('heapUsed'),
    externalPerItemBytes: per('external'),
    arrayBuffersPerItemBytes: per('arrayBuffers'),
  };
}

/** Every part, each in its own process. */
export function probeAll(n = 20_000): Array<Awaited<ReturnType<typeof probe>>> {
  const args = ['--expose-gc', '--max-semi-space-size=1', fileURLToPath(import.meta.url)];
  return Object.keys(PARTS).map((part) => {
    const out = execFileSync(process.execPath, [...args, part, String(n)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    return JSON.parse(out);
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [part, n] = process.argv.slice(2);
  if (!part || !PARTS[part]) throw new Error(`usage: memory-parts <${Object.keys(PARTS).join('|')}> [n]`);
  probe(part, Number(n ?? 20_000)).then((r) => process.stdout.write(`${JSON.stringify(r)}\n`));
}
