// The mpush-ts node under test in a child process: `start` builds an MpushNode as `mpush start` does
// (127.0.0.1, free ports, MPush's default keys, admission limits raised so a benchmark measures the
// server, not its admission control); `stats`, `rsaBench`, `profileStart` / `profileStop`, `stop`.
// On Redis, `stats` counts the requests the node sent (ioredis's diagnostics channel; MULTI … EXEC once).

import { subscribe } from 'node:diagnostics_channel';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadConfig } from '../../src/config/index.js';
import { loadPublicKey, RsaDecryptor, rsaEncrypt } from '../../src/crypto/index.js';
import { MpushNode } from '../../src/node.js';
import { HandshakeCodec } from '../../src/protocol/index.js';
import { defaultKeys } from './keys.js';
import { processStats } from './procstat.js';
import { serveRequests } from './rpc.js';

export interface NodeOptions {
  maxConnections: number;
  /** Server heartbeat bounds (ms); unset: the node's defaults. */
  heartbeatMs?: number;
  /** Redis URL and key prefix of the node's stores; unset: in memory. */
  redis?: { url: string; prefix: string };
}

const dataDir = mkdtempSync(join(tmpdir(), 'mpush-bench-'));
let node: MpushNode | undefined;
let profiler: Session | undefined;
const redis = { requests: 0, inMulti: false };

async function start(o: NodeOptions) {
  const keys = defaultKeys();
  const config = loadConfig({
    overrides: {
      node: { dataDir },
      server: { host: '127.0.0.1', port: 0 },
      http: { host: '127.0.0.1', port: 0 },
      gateway: { host: '127.0.0.1', port: 0 },
      admin: { port: 0 },
      security: { privateKey: keys.privateKey, publicKey: keys.publicKey },
      limits: {
        maxConnections: o.maxConnections,
        // The token bucket would cap a ramp at its default 10k/s; the bench wants the CPU bound.
        handshakesPerSecond: 1_000_000,
        handshakeBurst: 1_000_000,
        handshakeTimeoutMs: 60_000,
      },
      ...(o.heartbeatMs ? { heartbeat: { minMs: o.heartbeatMs, maxMs: o.heartbeatMs } } : {}),
      log: { level: 'warn' },
      ...(o.redis ? { cluster: { redis: o.redis.url, prefix: o.redis.prefix } } : {}),
    },
  });
  if (o.redis) {
    subscribe('tracing:ioredis:command:start', (m) => {
      const { command } = m as { command: string };
      if (!redis.inMulti) redis.requests++;
      if (command === 'multi' || command === 'exec') redis.inMulti = command === 'multi';
    });
  }
  const n = new MpushNode({ config });
  node = n;
  const { tcpPort, gatewayPort, httpPort } = await n.start();
  return { tcpPort, gatewayPort, httpPort, publicKey: n.keys.publicKeyBase64 };
}

export type NodeReady = Awaited<ReturnType<typeof start>>;

async function stats(gc: boolean) {
  const { connections: server, push } = node!;
  return {
    ...(await processStats(gc)),
    connections: server.connections.size,
    bound: server.router.boundConnections,
    acksPending: push.acks.pending,
    counters: { ...server.stats, closed: { ...server.stats.closed } },
    inbox: { ...node!.inbox.stats },
    redisRequests: redis.requests,
  };
}
export type ServerStats = Awaited<ReturnType<typeof stats>>;

/** µs per decrypt of one handshake RSA block, as the fleet's devices send it. */
function rsaBench() {
  const n = node!;
  const keys = { iv: Buffer.alloc(16, 1), clientKey: Buffer.alloc(16, 2), timestamp: 0 };
  const who = { deviceId: 'dev-user-0-00000', osName: 'android', osVersion: '10', clientVersion: '1.0.0' };
  const body = HandshakeCodec.encode({ ...who, ...keys, minHeartbeat: 0, maxHeartbeat: 180_000 });
  const block = rsaEncrypt(loadPublicKey(n.keys.publicKeyBase64), body);
  const decryptor = new RsaDecryptor(n.keys.privateKey);
  for (let i = 0; i < 200; i++) decryptor.decrypt(block);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < 2000; i++) decryptor.decrypt(block);
  return { rsaDecryptMicros: Number(process.hrtime.bigint() - t0) / 2000 / 1000 };
}

serveRequests({
  start: (req) => start(req.options as NodeOptions),
  stats: (req) => stats(req.gc === true),
  rsaBench,
  // A profile of one bench phase only, through the inspector: no start-up, no idle time.
  profileStart: async (req) => {
    profiler = new Session();
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.setSamplingInterval', { interval: Number(req.intervalUs ?? 100) });
    await profiler.post('Profiler.start');
    return true;
  },
  profileStop: async (req) => {
    const { profile } = await profiler!.post('Profiler.stop');
    profiler!.disconnect();
    mkdirSync(dirname(String(req.path)), { recursive: true });
    writeFileSync(String(req.path), JSON.stringify(profile));
    return req.path;
  },
  stop: async () => {
    await node?.stop();
    rmSync(dataDir, { recursive: true, force: true });
    // Reply first, then exit (a --cpu-prof profile is written on exit).
    setTimeout(() => process.exit(0), 50);
    return true;
  },
});
