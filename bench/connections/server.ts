// The mpush-ts node under test, run as a child of bench/connections/main.ts (fork, IPC).
//
// Builds an MpushNode the way `mpush start` does but on 127.0.0.1 and free ports, with limits
// raised so the bench measures the server rather than its admission control, and the default
// heartbeat (180 s) so idle connections really are idle. Sends `{event:'ready', tcpPort,
// publicKey}` and then answers requests: `stats` (memory after gc when `gc: true`, cpu, counts),
// `snapshot` (v8 heap snapshot after gc), `rsaBench` (µs per handshake RSA block decrypt in this
// process), `profileStart` / `profileStop` (a CPU profile of the window between them), `stop`.
//
// Start with --expose-gc so `stats {gc:true}` measures after a full collection.
//
// BENCH_BACKLOG=n: the node starts as usual (its TCP port listens with Node's default backlog of
// 511), and the bench also listens here with backlog n, handing each socket to
// ConnectionServer.acceptSocket (the path ConnectionServer.listen uses); the clients connect there.
// Everything else is identical: it shows what the backlog costs under a connection storm.

import { mkdtempSync, rmSync } from 'node:fs';
import { Session } from 'node:inspector';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { writeHeapSnapshot } from 'node:v8';
import { loadConfig } from '../../src/config/index.js';
import { loadPublicKey, RsaDecryptor, rsaEncrypt } from '../../src/crypto/index.js';
import { MpushNode } from '../../src/node.js';
import { Command, HandshakeCodec } from '../../src/protocol/index.js';
import { defaultKeys } from '../common/keys.js';
import { emit, measureMemory, memoryNow, type ServerStats, serveRequests } from './ipc.js';

let profiler: Session | undefined;

function post(session: Session, method: string, params: Record<string, unknown> = {}): Promise<unknown> {
  return new Promise((resolve, reject) => {
    session.post(method, params, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

const dataDir = mkdtempSync(join(tmpdir(), 'mpush-bench-'));

async function main(): Promise<void> {
  const maxConnections = Number(process.env.BENCH_MAX_CONNECTIONS ?? 25_000);
  const keys = defaultKeys();
  const config = loadConfig({
    overrides: {
      node: { dataDir },
      server: { host: '127.0.0.1', port: 0 },
      http: { host: '127.0.0.1', port: 0 },
      gateway: { host: '127.0.0.1', port: 0 },
      ...(keys ? { security: { privateKey: keys.privateKey, publicKey: keys.publicKey } } : {}),
      limits: {
        maxConnections,
        // The token bucket would cap the ramp at its default 10k/s; the bench wants the CPU bound.
        handshakesPerSecond: 1_000_000,
        handshakeBurst: 1_000_000,
        handshakeTimeoutMs: 60_000,
      },
      heartbeat: { minMs: 180_000, maxMs: 180_000 },
      log: { level: 'warn' },
    },
  });
  const node = new MpushNode({ config });
  const server = node.connections;
  // The whole node starts as `mpush start` starts it (HTTP port and the rest included).
  let tcpPort = (await node.start()).tcpPort;
  const backlog = Number(process.env.BENCH_BACKLOG ?? 0);
  let listener: Server | undefined;
  if (backlog > 0) {
    // The bench clients use this listener instead; the node's own stays idle.
    const l = createServer({ noDelay: true }, (socket) => server.acceptSocket(socket));
    listener = l;
    tcpPort = await new Promise<number>((res, rej) => {
      l.once('error', rej);
      l.listen({ port: 0, host: '127.0.0.1', backlog }, () => {
        const a = l.address();
        res(typeof a === 'object' && a ? a.port : 0);
      });
    });
  }

  const stats = async (gc: boolean): Promise<ServerStats> => {
    const memory = gc ? await measureMemory() : memoryNow();
    const elu = performance.eventLoopUtilization();
    const s = server.stats;
    return {
      at: performance.timeOrigin + performance.now(),
      memory,
      cpu: process.cpuUsage(),
      elu: { idle: elu.idle, active: elu.active, utilization: elu.utilization },
      connections: server.connections.size,
      bound: server.router.boundConnections,
      counters: {
        accepted: s.accepted,
        refused: s.refused,
        handshakes: s.handshakes,
        handshakesThrottled: s.handshakesThrottled,
        binds: s.binds,
        kicks: s.kicks,
        protocolErrors: s.protocolErrors,
        closed: { ...s.closed },
        sessions: (server.sessions as { size?: number }).size ?? -1,
      },
    };
  };

  serveRequests({
    stats: (req) => stats(req.gc === true),
    snapshot: async (req) => {
      await measureMemory();
      return writeHeapSnapshot(String(req.path));
    },
    // CPU profile of one bench phase only (the ramp), through the inspector: the profile holds no
    // start-up, no rsaBench and no idle time.
    profileStart: async () => {
      profiler ??= new Session();
      profiler.connect();
      await post(profiler, 'Profiler.enable');
      await post(profiler, 'Profiler.setSamplingInterval', { interval: 200 });
      await post(profiler, 'Profiler.start');
      return true;
    },
    profileStop: async () => {
      if (!profiler) throw new Error('no profile running');
      const r = (await post(profiler, 'Profiler.stop')) as { profile: unknown };
      profiler.disconnect();
      profiler = undefined;
      return r.profile;
    },
    rsaBench: () => {
      // One Handshake body as the bench clients send it: one 128-byte RSA block.
      const publicKey = loadPublicKey(node.keys.publicKeyBase64);
      const body = HandshakeCodec.encode({
        deviceId: 'bench-0-000000',
        osName: 'android',
        osVersion: '10',
        clientVersion: '1.0.0',
        iv: Buffer.alloc(16, 1),
        clientKey: Buffer.alloc(16, 2),
        minHeartbeat: 0,
        maxHeartbeat: 180_000,
        timestamp: 0,
      });
      const block = rsaEncrypt(publicKey, body);
      const decryptor = new RsaDecryptor(node.keys.privateKey);
      for (let i = 0; i < 200; i++) decryptor.decrypt(block);
      const n = 2000;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) decryptor.decrypt(block);
      const ns = Number(process.hrtime.bigint() - t0) / n;
      return { handshakeBodyBytes: body.length, cmd: Command.HANDSHAKE, rsaDecryptMicros: ns / 1000 };
    },
    stop: async () => {
      listener?.close();
      await node.stop();
      rmSync(dataDir, { recursive: true, force: true });
      // Reply first, then exit (a --cpu-prof profile is written on exit).
      setTimeout(() => process.exit(0), 50);
      return true;
    },
  });
  emit('ready', {
    tcpPort,
    publicKey: node.keys.publicKeyBase64,
    keySource: keys ? 'mpush-default' : 'generated',
    backlog: backlog > 0 ? backlog : 'node default (511)',
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench server failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  rmSync(dataDir, { recursive: true, force: true });
  process.exit(1);
});
