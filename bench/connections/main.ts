// Connection benchmark: how many idle, bound device connections one mpush-ts server process holds,
// what each costs in memory and CPU, and how fast devices get through the full handshake.
// Prints one JSON object on stdout; progress goes to stderr. Numbers only: tests never assert on them.
//
//   npx tsc -p tsconfig.json && node dist/bench/connections/main.js [--flag value ...]
//
// Parameters (flag, or environment variable BENCH_<FLAG> with - as _, e.g. BENCH_N=2000):
//   --n 19000            connections to hold (one server process may open at most 20,000 files)
//   --clients 4          client processes; each opens n/clients connections from its own source
//                        address (127.0.0.1, 127.0.0.2, ...), so no address runs out of ports
//   --concurrency 200    connections per client process between "connect started" and "bound"
//   --settle-seconds 5   wait after the ramp before measuring memory
//   --idle-seconds 10    window for the idle CPU figures
//   --churn-seconds 5    pure-handshake phase length (0 skips it)
//   --max-attempts 3     tries per connection before it counts as failed
//   --bare               run only the bare Node reference (bare-server.ts)
//   --no-bare            skip the bare Node reference (by default it runs first, same N)
//   --no-components      skip the isolated per-part memory probe (memory-probe.ts)
//   --heap-diff          heap snapshots of the server before and after the ramp, diffed by object
//                        kind per connection (use a small --n, e.g. 2000: snapshots are large).
//                        Writing a snapshot grows RSS, so in this mode only the heap figures hold
//   --profile            CPU-profile the server during the ramp (inspector, 200 µs sampling); the
//                        report lists the top self-time functions, in µs per bound connection
//   --server-node-options="--max-semi-space-size=1"   extra node options for both servers (V8
//                        tuning); use the = form, the value starts with --
//   --backlog 0          0: the server listens as `mpush start` does (node.start(), Node's default
//                        listen backlog of 511). n > 0: the bench server listens itself with backlog
//                        n (the kernel caps it at net.core.somaxconn) and hands sockets to
//                        ConnectionServer.acceptSocket: shows what the backlog costs under a storm
//
// Phases (mpush): start server.ts (a separate process, --expose-gc) → measure RSA decrypt cost in it
// → baseline memory (after gc) → ramp: every client connects, handshakes and binds its share →
// settle → memory after gc → idle window → clients reset all connections → churn phase → stop.
//
// Figures (mpush.*; bare.* has the same memory/idle ones for the reference server):
//   connections                 connections the server held when memory was measured
//   boundConnections            of which bound to a user (router count)
//   connectSecondsForAll        first connect started → last BIND OK received
//   handshakesPerSec            full handshake + bind completions / connectSecondsForAll
//   handshakesPerSecSteady      the same between the 10th and 90th percentile completion (no ramp
//                               up/down tails)
//   handshakesPerSecPeak1s      most completions in any 1 s window
//   pureHandshakesPerSec        churn phase: connect + full handshake + reset, no bind, nothing held
//   rsaDecryptMicros            one handshake RSA block decrypt, timed inside the server process;
//                               rsaCeilingPerSec = 1e6 / that: the most one server core can do
//   serverCpuPercentDuringRamp  server process CPU (user+sys) / wall, 100 = one core
//   serverEventLoopUtilizationDuringRamp  share of the ramp the server's event loop was busy
//   rssBaselineBytes, rssAfterBytes       server RSS after gc, before connections / all held idle
//   rssPerConnectionBytes       (rssAfter − rssBaseline) / connections
//   heapPerConnectionBytes      (heapUsed after − before) / connections; also external, arrayBuffers
//   nonHeapRssPerConnectionBytes (ΔRSS − ΔheapTotal) / connections: sockets' native side, OpenSSL
//                               contexts, malloc overhead
//     Caveat: with Node's default flags V8's young generation grows to its 16 MiB semi-space limit
//     during a 19k ramp and stays grown: ~32 MiB that is fixed, not per connection, yet appears as
//     heapTotal − heapUsed slack (~1.7 KiB "per connection" at n = 19,000) in both mpush and bare.
//     --server-node-options=--max-semi-space-size=1 measures without it.
//   serverIdleCpuPercent        server CPU / wall while holding them all idle for --idle-seconds
//   clientsCpuPercent*          the client processes' total, same windows, so the client cost is known
//   machineCpuDuringRamp        all CPUs during the ramp (/proc/stat), percent of the machine: shows
//                               whether server, clients and the kernel's loopback TCP saturate it
//   otherProcessesCpuPercentOfMachineDuringRamp  machine busy time not charged to the bench's
//                               processes: when large, something else was running (noisy figures)
//   tcpDuringRamp               kernel TCP counters that moved (/proc/net/netstat): ListenOverflows /
//                               SyncookiesSent mean the listen queue overflowed and devices waited
//                               for SYN / data retransmits (seconds) although "connected"
//   clients[]                   per client process: connected, handshaked, bound, failed, errors,
//                               latency percentiles (ms) of connect, handshake (sent → HandshakeOk),
//                               bind (sent → OK) and total (connect started → bound)
// Exit status 1 when fewer than n connections were bound (or held at the end of the idle window).

import { type ChildProcess, fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClientMode, ClientResult, ClientRunParams, Percentiles } from './client.js';
import { census, diffCensus } from './heap-census.js';
import { epochMs, RpcClient, type ServerStats, sleep } from './ipc.js';
import { probeAll } from './memory-probe.js';
import { counterDelta, cpuShare, cpuTimes, tcpCounters } from './sysstat.js';

// ---- parameters -----------------------------------------------------------------------------------

function flag(name: string): string | undefined {
  const argv = process.argv.slice(2);
  const i = argv.indexOf(`--${name}`);
  if (i >= 0) {
    const v = argv[i + 1];
    return v === undefined || v.startsWith('--') ? 'true' : v;
  }
  const eq = argv.find((a) => a.startsWith(`--${name}=`));
  if (eq) return eq.slice(name.length + 3);
  return process.env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`];
}
function num(name: string, def: number): number {
  const v = flag(name);
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got ${v}`);
  return n;
}
function bool(name: string): boolean {
  const v = flag(name);
  return v !== undefined && v !== 'false' && v !== '0';
}

const params = {
  n: num('n', 19_000),
  clients: Math.max(1, num('clients', 4)),
  concurrency: Math.max(1, num('concurrency', 200)),
  settleSeconds: num('settle-seconds', 5),
  idleSeconds: num('idle-seconds', 10),
  churnSeconds: num('churn-seconds', 5),
  maxAttempts: Math.max(1, num('max-attempts', 3)),
  bareOnly: bool('bare'),
  bare: !bool('no-bare'),
  components: !bool('no-components'),
  heapDiff: bool('heap-diff'),
  profile: bool('profile'),
  backlog: num('backlog', 0),
  serverNodeOptions: (flag('server-node-options') ?? '').split(/\s+/).filter((o) => o !== ''),
};

const here = fileURLToPath(new URL('.', import.meta.url));
const log = (msg: string) => process.stderr.write(`[bench/connections] ${msg}\n`);

// ---- processes ------------------------------------------------------------------------------------

const children = new Set<ChildProcess>();

function spawnChild(script: string, name: string, execArgv: string[] = []): RpcClient {
  const child = fork(join(here, script), [], {
    execArgv,
    stdio: ['ignore', 2, 2, 'ipc'],
    env: { ...process.env, BENCH_BACKLOG: String(params.backlog) },
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return new RpcClient(child, name);
}

async function stopChild(rpc: RpcClient, cmd: string): Promise<void> {
  const exited = new Promise<void>((r) => {
    if (rpc.child.exitCode !== null) r();
    else rpc.child.once('exit', () => r());
  });
  await rpc.call(cmd, {}, 30_000).catch(() => rpc.child.kill());
  await Promise.race([exited, sleep(10_000).then(() => rpc.child.kill('SIGKILL'))]);
}

interface ServerHandle {
  rpc: RpcClient;
  tcpPort: number;
  publicKey: string;
}

async function startServer(script: string, name: string, execArgv: string[]): Promise<ServerHandle> {
  const rpc = spawnChild(script, name, execArgv);
  const ready = await rpc.once('ready', 30_000);
  return { rpc, tcpPort: Number(ready.tcpPort), publicKey: String(ready.publicKey ?? '') };
}

async function startClients(k: number): Promise<RpcClient[]> {
  const clients = Array.from({ length: k }, (_, i) => spawnChild('client.js', `client ${i}`));
  await Promise.all(clients.map((c) => c.once('ready', 30_000)));
  return clients;
}

type Cpu = { user: number; system: number };

function clientsCpu(clients: RpcClient[]): Promise<Cpu[]> {
  return Promise.all(clients.map((c) => c.call<Cpu>('cpu')));
}

function cpuPercent(a: Cpu, b: Cpu, wallMs: number): number {
  return round((100 * (b.user - a.user + b.system - a.system)) / (wallMs * 1000), 1);
}

function sumCpuPercent(a: Cpu[], b: Cpu[], wallMs: number): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += cpuPercent(a[i]!, b[i]!, wallMs);
  return round(s, 1);
}

/**
 * Machine time (percent of all CPUs) not spent by the server and clients: the kernel's share of
 * loopback TCP outside process accounting, plus anything else running on the box (noise).
 */
function otherCpu(machine: Record<string, number>, oursPercentOfOneCore: number): number {
  const busy = 100 - (machine.idle ?? 100);
  return round(busy - oursPercentOfOneCore / os.cpus().length, 1);
}

function eluBetween(a: ServerStats, b: ServerStats): number {
  const active = b.elu.active - a.elu.active;
  const idle = b.elu.idle - a.elu.idle;
  return round(active / (active + idle || 1), 3);
}

const round = (x: number, digits = 0) => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

function share(total: number, k: number, i: number): number {
  return Math.floor(total / k) + (i < total % k ? 1 : 0);
}

/** Runs one client mode on every client process; prints progress while it runs. */
async function runClients(
  clients: RpcClient[],
  server: ServerHandle,
  mode: ClientMode,
  total: number,
  durationMs = 0,
): Promise<ClientResult[]> {
  const results = clients.map((c, i) =>
    c.call<ClientResult>(
      'run',
      {
        params: {
          mode,
          host: '127.0.0.1',
          port: server.tcpPort,
          count: share(total, clients.length, i),
          concurrency: params.concurrency,
          publicKey: server.publicKey,
          localAddress: `127.0.0.${i + 1}`,
          proc: i,
          durationMs,
          maxAttempts: params.maxAttempts,
          // About what a device sends to get bound: a Handshake (13 + 128) and a Bind (13 + 32).
          barePayloadBytes: 186,
        } satisfies ClientRunParams,
      },
      600_000,
    ),
  );
  let done = false;
  const all = Promise.all(results).finally(() => {
    done = true;
  });
  const progress = (async () => {
    while (!done) {
      await Promise.race([sleep(2000), all.catch(() => {})]);
      if (done) break;
      const s = await server.rpc.call<ServerStats>('stats').catch(() => undefined);
      if (s) log(`${mode}: server holds ${s.connections} connections, ${s.bound} bound`);
    }
  })();
  const out = await all;
  await progress;
  return out;
}

// ---- figures ---------------------------------------------------------------------------------------

interface RateFigures {
  completed: number;
  seconds: number;
  perSec: number;
  perSecSteady: number;
  perSecPeak1s: number;
}

function rates(results: ClientResult[]): RateFigures {
  const t = Float64Array.from(results.flatMap((r) => r.completions)).sort();
  const start = Math.min(...results.map((r) => r.startedAt));
  const n = t.length;
  if (n === 0) return { completed: 0, seconds: 0, perSec: 0, perSecSteady: 0, perSecPeak1s: 0 };
  const seconds = (t[n - 1]! - start) / 1000;
  const lo = Math.floor(n * 0.1);
  const hi = Math.max(lo + 1, Math.floor(n * 0.9) - 1);
  const steadySpan = (t[hi]! - t[lo]!) / 1000;
  let peak = 0;
  for (let i = 0, j = 0; i < n; i++) {
    while (t[i]! - t[j]! > 1000) j++;
    peak = Math.max(peak, i - j + 1);
  }
  return {
    completed: n,
    seconds: round(seconds, 2),
    perSec: round(n / seconds),
    perSecSteady: steadySpan > 0 ? round((hi - lo) / steadySpan) : 0,
    perSecPeak1s: peak,
  };
}

/** Latency percentiles over all processes: the worst process's figure (an upper bound). */
function worst(results: ClientResult[], key: keyof ClientResult['latencyMs']): Percentiles {
  const ps = results.map((r) => r.latencyMs[key]);
  return {
    n: ps.reduce((a, p) => a + p.n, 0),
    p50: Math.max(...ps.map((p) => p.p50)),
    p90: Math.max(...ps.map((p) => p.p90)),
    p99: Math.max(...ps.map((p) => p.p99)),
    max: Math.max(...ps.map((p) => p.max)),
  };
}

function clientSummary(results: ClientResult[]) {
  return results.map((r) => ({
    proc: r.proc,
    localAddress: r.localAddress,
    target: r.target,
    connected: r.connected,
    handshaked: r.handshaked,
    bound: r.bound,
    failed: r.failed,
    attempts: r.attempts,
    errors: r.errors,
    latencyMs: r.latencyMs,
  }));
}

function mergeErrors(results: ClientResult[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.errors)) out[k] = (out[k] ?? 0) + v;
  return out;
}

function memoryFigures(base: ServerStats, after: ServerStats) {
  const n = Math.max(1, after.connections);
  const per = (k: keyof ServerStats['memory']) => round((after.memory[k] - base.memory[k]) / n);
  return {
    rssBaselineBytes: base.memory.rss,
    rssAfterBytes: after.memory.rss,
    heapUsedBaselineBytes: base.memory.heapUsed,
    heapUsedAfterBytes: after.memory.heapUsed,
    rssPerConnectionBytes: per('rss'),
    heapPerConnectionBytes: per('heapUsed'),
    heapTotalPerConnectionBytes: per('heapTotal'),
    externalPerConnectionBytes: per('external'),
    arrayBuffersPerConnectionBytes: per('arrayBuffers'),
    nonHeapRssPerConnectionBytes: round(
      (after.memory.rss - base.memory.rss - (after.memory.heapTotal - base.memory.heapTotal)) / n,
    ),
  };
}

/** Holds the connections idle for `seconds`; server and client CPU over that window. */
async function idleWindow(server: ServerHandle, clients: RpcClient[], seconds: number) {
  const s0 = await server.rpc.call<ServerStats>('stats');
  const c0 = await clientsCpu(clients);
  const w0 = epochMs();
  await sleep(seconds * 1000);
  const s1 = await server.rpc.call<ServerStats>('stats');
  const c1 = await clientsCpu(clients);
  const wall = epochMs() - w0;
  return {
    idleSeconds: round(wall / 1000, 1),
    serverIdleCpuPercent: cpuPercent(s0.cpu, s1.cpu, s1.at - s0.at),
    clientsIdleCpuPercent: sumCpuPercent(c0, c1, wall),
    end: s1,
  };
}

async function heldByClients(
  clients: RpcClient[],
): Promise<{ held: number; lost: number; heartbeats: number }> {
  const hs = await Promise.all(
    clients.map((c) => c.call<{ held: number; lost: number; heartbeats: number }>('held')),
  );
  return {
    held: hs.reduce((a, h) => a + h.held, 0),
    lost: hs.reduce((a, h) => a + h.lost, 0),
    heartbeats: hs.reduce((a, h) => a + h.heartbeats, 0),
  };
}

async function waitServerEmpty(server: ServerHandle, timeoutMs = 20_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await server.rpc.call<ServerStats>('stats');
    if (s.connections === 0 || Date.now() > deadline) return s.connections;
    await sleep(200);
  }
}

// ---- the bare Node reference --------------------------------------------------------------------------

async function runBare(n: number) {
  log(`bare: starting the bare Node TCP server, ${n} connections`);
  const server = await startServer('bare-server.js', 'bare server', [
    '--expose-gc',
    ...params.serverNodeOptions,
  ]);
  const base = await server.rpc.call<ServerStats>('stats', { gc: true });
  const clients = await startClients(params.clients);
  const k0 = tcpCounters();
  const results = await runClients(clients, server, 'bare', n);
  const k1 = tcpCounters();
  await sleep(params.settleSeconds * 1000);
  const after = await server.rpc.call<ServerStats>('stats', { gc: true });
  const idle = await idleWindow(server, clients, Math.min(params.idleSeconds, 5));
  await Promise.all(clients.map((c) => c.call('drop')));
  await Promise.all(clients.map((c) => stopChild(c, 'exit')));
  await stopChild(server.rpc, 'stop');
  const r = rates(results);
  const mem = memoryFigures(base, after);
  log(`bare: ${after.connections} held, ${mem.rssPerConnectionBytes} B RSS per connection`);
  return {
    connections: after.connections,
    connectSecondsForAll: r.seconds,
    connectsPerSec: r.perSec,
    connectLatencyMsWorstProcess: worst(results, 'connect'),
    tcpDuringConnect: counterDelta(k0, k1),
    ...mem,
    serverIdleCpuPercent: idle.serverIdleCpuPercent,
    errors: mergeErrors(results),
  };
}

// ---- mpush-ts -------------------------------------------------------------------------------------------

async function runMpush(n: number) {
  const execArgv = ['--expose-gc', ...params.serverNodeOptions];
  log(`mpush: starting the server (${execArgv.join(' ')}), ${n} connections`);
  const server = await startServer('server.js', 'mpush server', execArgv);
  const rsa = await server.rpc.call<{ rsaDecryptMicros: number; handshakeBodyBytes: number }>('rsaBench');
  const base = await server.rpc.call<ServerStats>('stats', { gc: true });
  log(
    `mpush: baseline RSS ${(base.memory.rss / 2 ** 20).toFixed(1)} MiB; RSA decrypt ${rsa.rsaDecryptMicros.toFixed(1)} µs`,
  );

  const snapDir = params.heapDiff ? mkdtempSync(join(os.tmpdir(), 'mpush-bench-heap-')) : undefined;
  const snapBefore = snapDir
    ? await server.rpc.call<string>('snapshot', { path: join(snapDir, 'before.heapsnapshot') }, 300_000)
    : undefined;

  const clients = await startClients(params.clients);
  const r0 = await server.rpc.call<ServerStats>('stats');
  const rc0 = await clientsCpu(clients);
  const m0 = cpuTimes();
  const k0 = tcpCounters();
  if (params.profile) await server.rpc.call('profileStart');
  const w0 = epochMs();
  const results = await runClients(clients, server, 'mpush', n);
  const prof = params.profile ? await server.rpc.call<CpuProfile>('profileStop', {}, 120_000) : undefined;
  const m1 = cpuTimes();
  const k1 = tcpCounters();
  const r1 = await server.rpc.call<ServerStats>('stats');
  const rc1 = await clientsCpu(clients);
  const rampWall = epochMs() - w0;
  const ramp = rates(results);
  log(`mpush: ramp done: ${ramp.completed} bound in ${ramp.seconds} s (${ramp.perSec}/s)`);

  await sleep(params.settleSeconds * 1000);
  const after = await server.rpc.call<ServerStats>('stats', { gc: true });
  const snapAfter = snapDir
    ? await server.rpc.call<string>('snapshot', { path: join(snapDir, 'after.heapsnapshot') }, 300_000)
    : undefined;
  const mem = memoryFigures(base, after);
  log(
    `mpush: ${after.connections} held, ${mem.rssPerConnectionBytes} B RSS, ${mem.heapPerConnectionBytes} B heap per connection`,
  );

  const idle = await idleWindow(server, clients, params.idleSeconds);
  const held = await heldByClients(clients);
  log(`mpush: idle ${idle.serverIdleCpuPercent}% server CPU; ${held.held} held by clients`);

  // Reset everything (RST: no TIME_WAIT on either side), then the pure-handshake phase.
  await Promise.all(clients.map((c) => c.call('drop')));
  const leftOpen = await waitServerEmpty(server);

  let churn: Record<string, unknown> | undefined;
  if (params.churnSeconds > 0) {
    log(`mpush: pure-handshake phase, ${params.churnSeconds} s`);
    const s0 = await server.rpc.call<ServerStats>('stats');
    const c0 = await clientsCpu(clients);
    const mc0 = cpuTimes();
    const kc0 = tcpCounters();
    const t0 = epochMs();
    const cr = await runClients(clients, server, 'churn', 0, params.churnSeconds * 1000);
    const mc1 = cpuTimes();
    const kc1 = tcpCounters();
    const s1 = await server.rpc.call<ServerStats>('stats');
    const c1 = await clientsCpu(clients);
    const wall = epochMs() - t0;
    const rr = rates(cr);
    churn = {
      pureHandshakesPerSec: rr.perSec,
      pureHandshakesPerSecSteady: rr.perSecSteady,
      handshakes: rr.completed,
      seconds: rr.seconds,
      serverCpuPercent: cpuPercent(s0.cpu, s1.cpu, s1.at - s0.at),
      serverEventLoopUtilization: eluBetween(s0, s1),
      clientsCpuPercent: sumCpuPercent(c0, c1, wall),
      machineCpu: cpuShare(mc0, mc1),
      otherProcessesCpuPercentOfMachine: otherCpu(
        cpuShare(mc0, mc1),
        cpuPercent(s0.cpu, s1.cpu, s1.at - s0.at) + sumCpuPercent(c0, c1, wall),
      ),
      tcp: counterDelta(kc0, kc1),
      handshakeLatencyMs: worst(cr, 'handshake'),
      errors: mergeErrors(cr),
    };
    log(`mpush: ${rr.perSec} pure handshakes/s`);
  }

  await Promise.all(clients.map((c) => stopChild(c, 'exit')));
  await stopChild(server.rpc, 'stop');

  let heapDiff: ReturnType<typeof diffCensus> | undefined;
  if (snapDir && snapBefore && snapAfter) {
    log('mpush: diffing heap snapshots');
    heapDiff = diffCensus(census(snapBefore), census(snapAfter), Math.max(1, after.connections), 30);
    rmSync(snapDir, { recursive: true, force: true });
  }
  const profile = prof ? summarizeProfile(prof, ramp.completed) : undefined;

  return {
    connections: after.connections,
    boundConnections: after.bound,
    heldAfterIdle: {
      server: idle.end.connections,
      serverBound: idle.end.bound,
      clients: held.held,
      lost: held.lost,
    },
    connectSecondsForAll: ramp.seconds,
    handshakesPerSec: ramp.perSec,
    handshakesPerSecSteady: ramp.perSecSteady,
    handshakesPerSecPeak1s: ramp.perSecPeak1s,
    ...(churn ? { pureHandshakesPerSec: churn.pureHandshakesPerSec, pureHandshakePhase: churn } : {}),
    rsaDecryptMicros: round(rsa.rsaDecryptMicros, 1),
    rsaCeilingPerSec: round(1e6 / rsa.rsaDecryptMicros),
    serverCpuPercentDuringRamp: cpuPercent(r0.cpu, r1.cpu, r1.at - r0.at),
    serverEventLoopUtilizationDuringRamp: eluBetween(r0, r1),
    clientsCpuPercentDuringRamp: sumCpuPercent(rc0, rc1, rampWall),
    machineCpuDuringRamp: cpuShare(m0, m1),
    otherProcessesCpuPercentOfMachineDuringRamp: otherCpu(
      cpuShare(m0, m1),
      cpuPercent(r0.cpu, r1.cpu, r1.at - r0.at) + sumCpuPercent(rc0, rc1, rampWall),
    ),
    tcpDuringRamp: counterDelta(k0, k1),
    ...mem,
    serverIdleCpuPercent: idle.serverIdleCpuPercent,
    clientsIdleCpuPercent: idle.clientsIdleCpuPercent,
    idleSeconds: idle.idleSeconds,
    latencyMsWorstProcess: {
      connect: worst(results, 'connect'),
      handshake: worst(results, 'handshake'),
      bind: worst(results, 'bind'),
      total: worst(results, 'total'),
    },
    errors: mergeErrors(results),
    serverCounters: after.counters,
    serverConnectionsLeftAfterReset: leftOpen,
    clients: clientSummary(results),
    ...(heapDiff
      ? {
          heapDiff: {
            note: 'self sizes by object kind, after minus before, per connection; RSS figures of this run include the snapshot writer and are not comparable',
            ...heapDiff,
          },
        }
      : {}),
    ...(profile ? { profile } : {}),
  };
}

// ---- CPU profile summary ----------------------------------------------------------------------------------

interface CpuProfile {
  nodes: Array<{
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    hitCount?: number;
  }>;
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Self time per function, top 30, as a share of busy (non-idle) time and in µs per completion. */
function summarizeProfile(prof: CpuProfile, completions: number) {
  const byNode = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    const node = byNode.get(prof.samples[i]!);
    const dt = prof.timeDeltas[i + 1] ?? 0; // a sample's time runs until the next one
    if (!node) continue;
    const f = node.callFrame;
    if (f.functionName === '(idle)') {
      idle += dt;
      continue;
    }
    const where = f.url ? `${f.url.replace(/^.*\/(dist\/)/, '$1')}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'} ${where}`.trim();
    self.set(key, (self.get(key) ?? 0) + dt);
    busy += dt;
  }
  const top = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 30)
    .map(([fn, us]) => ({
      fn,
      ms: round(us / 1000),
      percentOfBusy: round((100 * us) / busy, 1),
      usPerCompletion: round(us / Math.max(1, completions), 1),
    }));
  return {
    window: 'ramp',
    busyMs: round(busy / 1000),
    idleMs: round(idle / 1000),
    busyUsPerCompletion: round(busy / Math.max(1, completions), 1),
    top,
  };
}

// ---- main ------------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const n = params.n;
  const report: Record<string, unknown> = {
    bench: 'connections',
    params,
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      totalMemBytes: os.totalmem(),
      node: process.version,
      ephemeralPorts: readFirst('/proc/sys/net/ipv4/ip_local_port_range'),
    },
  };
  if (params.bare || params.bareOnly) report.bare = await runBare(n);
  let ok = true;
  if (!params.bareOnly) {
    const m = await runMpush(n);
    report.mpush = m;
    ok = m.boundConnections >= n && m.heldAfterIdle.serverBound >= n;
    const bare = report.bare as { rssPerConnectionBytes: number } | undefined;
    if (bare) report.bareNodeRssPerConnectionBytes = bare.rssPerConnectionBytes;
    report.targets = {
      connections: { target: 19_000, measured: m.boundConnections, met: m.boundConnections >= 19_000 },
      rssPerConnectionBytes: {
        target: 4096,
        measured: m.rssPerConnectionBytes,
        met: m.rssPerConnectionBytes <= 4096,
        bareNode: bare?.rssPerConnectionBytes,
      },
      handshakesPerSec: {
        target: 6000,
        measured: m.handshakesPerSecSteady,
        met: m.handshakesPerSecSteady >= 6000,
        rsaCeilingPerSecOneCore: m.rsaCeilingPerSec,
      },
    };
  }
  if (params.components) {
    log('memory probe: per-part costs in isolation');
    report.components = probeAll(20_000);
  }
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  return ok ? 0 : 1;
}

function readFirst(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim().replace(/\s+/g, '-');
  } catch {
    return undefined;
  }
}

mkdirSync(os.tmpdir(), { recursive: true });
main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(`failed: ${err instanceof Error ? err.stack : String(err)}`);
    for (const c of children) c.kill('SIGKILL');
    process.exit(2);
  },
);
