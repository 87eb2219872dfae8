// What each part of an idle mpush-ts connection costs in memory, measured in isolation: N instances
// of one part are built in a fresh process and RSS/heap are compared before and after (both after
// gc). The heap snapshot shows JS objects; this also shows what lives outside the V8 heap (OpenSSL
// cipher contexts, backing stores, malloc overhead), which only RSS sees.
//
//   node dist/bench/connections/memory-probe.js            every part, one process each, JSON out
//   node --expose-gc dist/bench/connections/memory-probe.js <part> [n]     one part
//
// Each part runs with --max-semi-space-size=1: otherwise V8's young generation grows by up to 32 MiB
// while the items are built, a fixed cost that would show up as ~1.6 KiB "per item" at n = 20,000.
// The parts (what the server keeps per bound TCP connection) are listed in README.md, "Benchmarks".

import { execFileSync } from 'node:child_process';
import { createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { MemorySessionStore } from '../../src/cluster/index.js';
import {
  Connection,
  type ConnectionContext,
  type ConnectionHandler,
  type Transport,
} from '../../src/connection/index.js';
import { AesCipher, mixKey, randomKey } from '../../src/crypto/index.js';
import { FrameDecoder, type FrameHandler } from '../../src/protocol/index.js';
import { LocalRouter } from '../../src/server/local-router.js';
import { TimerWheel } from '../../src/util/timer-wheel.js';
import { type MemorySample, memory } from '../lib/procstat.js';

export const PARTS = [
  'aesDecryptOnly',
  'aesBoth',
  'nodeDecipher',
  'frameDecoder',
  'sessionEntry',
  'routerEntry',
  'connection',
  'allButSocket',
] as const;
export type Part = (typeof PARTS)[number];

const noopHandler: FrameHandler = { onPacket() {}, onHeartbeat() {} };

class NullTransport implements Transport {
  readonly kind = 'tcp' as const;
  readonly remoteAddress = '127.0.0.1:1';
  readonly writable = true;
  readonly bufferedBytes = 0;
  write(): boolean {
    return true;
  }
  cork(): void {}
  uncork(): void {}
  close(): void {}
  destroy(): void {}
}

const nullHandler: ConnectionHandler = {
  onPacket() {},
  onJsonPacket() {},
  onHeartbeat() {},
  onProtocolError() {},
  onClose() {},
};

function context(): ConnectionContext {
  return {
    handler: nullHandler,
    wheel: new TimerWheel<Connection>(1000, () => {}),
    maxPacketSize: 10 * 1024,
    maxInflatedSize: 1024 * 1024,
    maxOutboundBytes: 1024 * 1024,
    drainTimeoutMs: 30_000,
    handshakeTimeoutMs: 10_000,
    heartbeatGraceMs: 1000,
    maxHeartbeatTimeouts: 2,
    compressThreshold: 10 * 1024,
  };
}

/** A BIND body as a device would send it, encrypted with `aes` (so the server-side decrypt works). */
function sealedBind(key: Buffer, iv: Buffer): Buffer {
  return new AesCipher(key, iv).encrypt(Buffer.alloc(24, 0x41));
}

type Identity = Pick<Connection, 'deviceId' | 'osName' | 'osVersion' | 'clientVersion'>;

/**
 * A MemorySessionStore entry as the handshake writes it: the identity's strings, hex key and iv, in
 * one object literal (a spread would build a bigger object than the server's).
 */
function store(sessions: MemorySessionStore, id: string, who: Identity, key: Buffer, iv: Buffer) {
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

/** Sets what the handshake handler sets on a connection (fresh strings, as decoded from a body). */
function identify(conn: Connection, i: number): void {
  conn.deviceId = `bench-0-${i}`;
  conn.osName = `android${''}`.slice(0);
  conn.osVersion = String(10);
  conn.clientVersion = ['1', '0', '0'].join('.');
  conn.clientType = 1;
  conn.sessionId = createHash('md5').update(`${conn.deviceId}${Date.now()}`).digest('hex');
  conn.startHeartbeat(180_000);
}

async function buildPart(part: Part, n: number): Promise<unknown[]> {
  const keep: unknown[] = [];
  const ctx = context();
  const router = new LocalRouter();
  const sessions = new MemorySessionStore();
  keep.push(ctx, router, sessions);
  for (let i = 0; i < n; i++) {
    switch (part) {
      case 'aesDecryptOnly':
      case 'aesBoth': {
        const key = randomKey();
        const iv = randomKey();
        const aes = new AesCipher(key, iv);
        aes.decrypt(sealedBind(key, iv));
        if (part === 'aesBoth') aes.encrypt(Buffer.alloc(40));
        keep.push(aes);
        break;
      }
      case 'nodeDecipher': {
        const d = createDecipheriv('aes-128-cbc', randomBytes(16), randomBytes(16));
        d.setAutoPadding(false);
        d.update(Buffer.alloc(32));
        keep.push(d);
        break;
      }
      case 'frameDecoder':
        keep.push(new FrameDecoder(noopHandler, { maxBodyLength: 10 * 1024 }));
        break;
      case 'sessionEntry': {
        const id = createHash('md5').update(`bench-0-${i}${Date.now()}`).digest('hex');
        // Fresh strings, as decoded from a handshake body.
        const who = {
          deviceId: `bench-0-${i}`,
          osName: `android${''}`.slice(0),
          osVersion: String(10),
          clientVersion: ['1', '0', '0'].join('.'),
        };
        await store(sessions, id, who, randomKey(), randomKey());
        break;
      }
      case 'routerEntry': {
        // Only what the router adds: a stand-in connection carrying a fresh userId string.
        const conn = { userId: `user-0-${i}`, clientType: 1 } as unknown as Connection;
        router.bind(conn);
        break;
      }
      case 'connection': {
        const conn = new Connection(i, new NullTransport(), 'binary', ctx);
        identify(conn, i);
        keep.push(conn);
        break;
      }
      case 'allButSocket': {
        const conn = new Connection(i, new NullTransport(), 'binary', ctx);
        conn.receive(Buffer.alloc(0)); // creates the FrameDecoder, as the first read does
        const clientKey = randomKey();
        const iv = randomKey();
        const serverKey = randomKey();
        const first = new AesCipher(clientKey, iv);
        first.encrypt(Buffer.alloc(60)); // the HandshakeOk, then dropped
        const sessionKey = mixKey(clientKey, serverKey);
        conn.cipher = new AesCipher(sessionKey, iv);
        identify(conn, i);
        conn.cipher.decrypt(sealedBind(sessionKey, iv)); // the BIND
        conn.userId = `user-0-${i}`;
        router.bind(conn);
        await store(sessions, conn.sessionId, conn, sessionKey, iv);
        keep.push(conn);
        break;
      }
    }
  }
  return keep;
}

async function probe(part: Part, n: number) {
  // Warm up the code paths (and the allocators) with a small batch first, then measure.
  await buildPart(part, 200);
  const before: MemorySample = await memory();
  const kept = await buildPart(part, n);
  const after: MemorySample = await memory();
  if (kept.length < 0) throw new Error('unreachable'); // keeps `kept` alive until here
  const per = (k: keyof MemorySample) => Math.round((after[k] - before[k]) / n);
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

export type PartCost = Awaited<ReturnType<typeof probe>>;

/** Runs every part in its own process; returns their costs. */
export function probeAll(n = 20_000): PartCost[] {
  const self = fileURLToPath(import.meta.url);
  return PARTS.map((part) => {
    const out = execFileSync(
      process.execPath,
      ['--expose-gc', '--max-semi-space-size=1', self, part, String(n)],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    return JSON.parse(out) as PartCost;
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const part = process.argv[2] as Part | undefined;
  const n = Number(process.argv[3] ?? 20_000);
  if (part === undefined) {
    process.stdout.write(`${JSON.stringify(probeAll(n), null, 2)}\n`);
  } else {
    if (!PARTS.includes(part)) {
      process.stderr.write(`unknown part ${part}; one of ${PARTS.join(', ')}\n`);
      process.exit(2);
    }
    if (!(globalThis as { gc?: unknown }).gc) process.stderr.write('warning: run with --expose-gc\n');
    probe(part, n).then((r) => process.stdout.write(`${JSON.stringify(r)}\n`));
  }
}
