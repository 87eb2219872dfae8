// The mpush-ts node under test, forked by bench/push/main.ts (IPC).
//
// One MpushNode as `mpush start` builds it, on 127.0.0.1 with free ports (device TCP, gateway,
// HTTP), MPush's default RSA key pair (test/fixtures/mpush-default-test-keys.json), the
// default heartbeat and push settings, log level warn, and the admission limits raised so the
// bench measures the push path rather than admission control (maxConnections 20,000, handshake
// token bucket 1,000,000/s).
//
// Sends `{event:'ready', tcpPort, gatewayPort, publicKey, maxOpenFiles}`, then answers:
//   stats         process.cpuUsage(), memoryUsage(), event-loop utilisation, connection / push counts
//   profileStart  starts a CPU profile (inspector, 100 µs sampling) of the window up to profileStop
//   profileStop   returns the profile
//   stop          stops the node and exits (a --cpu-prof profile is written on exit)

import { mkdtempSync, rmSync } from 'node:fs';
import { Session } from 'node:inspector';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadConfig } from '../../src/config/index.js';
import { MpushNode } from '../../src/node.js';
import { defaultKeys } from '../common/keys.js';
import { emit, maxOpenFiles, serveRequests, watchLoop } from './ipc.js';

/** What the server answers to `stats`. */
export interface ServerStats {
  /** Epoch ms when sampled. */
  at: number;
  /** process.cpuUsage(), µs since the process started. */
  cpu: { user: number; system: number };
  memory: { rss: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number };
  /** performance.eventLoopUtilization() since start (cumulative idle/active ms). */
  elu: { idle: number; active: number };
  connections: number;
  bound: number;
  acksPending: number;
  gateway: { pushes: number; broadcasts: number; oversized: number; authFailures: number };
  counters: { handshakes: number; binds: number; acks: number; protocolErrors: number; refused: number };
  closed: Record<string, number>;
}

function post(session: Session, method: string, params: Record<string, unknown> = {}): Promise<unknown> {
  return new Promise((res, rej) => {
    session.post(method, params, (err, result) => (err ? rej(err) : res(result)));
  });
}

const dataDir = mkdtempSync(join(tmpdir(), 'mpush-bench-push-'));
let profiler: Session | undefined;

async function main(): Promise<void> {
  const keys = defaultKeys();
  const config = loadConfig({
    overrides: {
      node: { dataDir },
      server: { host: '127.0.0.1', port: 0 },
      http: { host: '127.0.0.1', port: 0 },
      gateway: { host: '127.0.0.1', port: 0 },
      security: { privateKey: keys.privateKey, publicKey: keys.publicKey },
      limits: {
        maxConnections: Number(process.env.BENCH_PUSH_MAX_CONNECTIONS ?? 20_000),
        handshakesPerSecond: 1_000_000,
        handshakeBurst: 1_000_000,
        handshakeTimeoutMs: 60_000,
      },
      log: { level: 'warn' },
    },
  });
  const node = new MpushNode({ config });
  const { tcpPort, gatewayPort } = await node.start();
  const server = node.connections;

  const stats = (): ServerStats => {
    const m = process.memoryUsage();
    const elu = performance.eventLoopUtilization();
    const s = server.stats;
    return {
      at: Date.now(),
      cpu: process.cpuUsage(),
      memory: {
        rss: m.rss,
        heapTotal: m.heapTotal,
        heapUsed: m.heapUsed,
        external: m.external,
        arrayBuffers: m.arrayBuffers,
      },
      elu: { idle: elu.idle, active: elu.active },
      connections: server.connections.size,
      bound: server.router.boundConnections,
      acksPending: node.push.acks.pending,
      gateway: { ...node.gateway.stats },
      counters: {
        handshakes: s.handshakes,
        binds: s.binds,
        acks: s.acks,
        protocolErrors: s.protocolErrors,
        refused: s.refused,
      },
      closed: { ...s.closed },
    };
  };

  const loop = watchLoop();
  serveRequests({
    stats: () => stats(),
    loop: () => loop.take(),
    profileStart: async () => {
      profiler = new Session();
      profiler.connect();
      await post(profiler, 'Profiler.enable');
      await post(profiler, 'Profiler.setSamplingInterval', { interval: 100 });
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
    stop: async () => {
      await node.stop();
      rmSync(dataDir, { recursive: true, force: true });
      setTimeout(() => process.exit(0), 50);
      return true;
    },
  });
  emit('ready', {
    tcpPort,
    gatewayPort,
    publicKey: node.keys.publicKeyBase64,
    maxOpenFiles: maxOpenFiles() ?? null,
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench push server failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  rmSync(dataDir, { recursive: true, force: true });
  process.exit(1);
});
