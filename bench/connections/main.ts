// Connection benchmark: how many idle, bound device connections one mpush-ts server process holds,
// what each costs in memory and CPU, and how fast devices get through the full handshake. Flags,
// phases and figures: README.md, "Benchmarks" (`--help` lists the flags).
//
// Phases (mpush): the server (bench/lib/node-server.ts, --expose-gc) → RSA decrypt cost in it →
// baseline memory after gc → ramp: every fleet process connects, handshakes and binds its share →
// settle → memory after gc → idle window → the fleets reset all connections → churn phase → stop.
// The bare Node reference (bare-server.ts) runs first with the same N, and the per-part memory
// probe (memory-probe.ts) last. Exit status 1 when fewer than n connections were bound (or held at
// the end of the idle window).

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseFlags } from '../lib/args.js';
import { measure, runFleets, scripts, share } from '../lib/drive.js';
import type { FleetResult, FleetRun, FleetStats } from '../lib/fleet.js';
import type { ServerStats } from '../lib/node-server.js';
import type { Proc } from '../lib/procstat.js';
import {
  addCounts,
  type CpuProfile,
  logger,
  type Percentiles,
  printReport,
  round,
  sum,
  summarizeProfile,
} from '../lib/report.js';
import { children, forkChild, type RpcClient, sleep } from '../lib/rpc.js';
import { census, diffCensus } from './heap-census.js';
import { probeAll } from './memory-probe.js';

const f = parseFlags(
  {
    n: 19_000,
    clients: 4,
    concurrency: 200,
    settleSeconds: 5,
    idleSeconds: 10,
    churnSeconds: 5,
    maxAttempts: 3,
    bareOnly: false,
    noBare: false,
    noComponents: false,
    heapDiff: false,
    profile: false,
    backlog: 0,
    serverNodeOptions: '',
  },
  {
    env: 'BENCH_',
    rename: { bareOnly: 'bare' },
    quick: { n: 2000, clients: 2, settleSeconds: 1, idleSeconds: 2, churnSeconds: 2 },
  },
);
const { noBare, noComponents, ...rest } = f;
const params = {
  ...rest,
  clients: Math.max(1, f.clients),
  concurrency: Math.max(1, f.concurrency),
  maxAttempts: Math.max(1, f.maxAttempts),
  bare: !noBare,
  components: !noComponents,
  serverNodeOptions: f.serverNodeOptions.split(/\s+/).filter((o) => o !== ''),
};

const log = logger('connections');

interface Server {
  rpc: RpcClient;
  tcpPort: number;
  publicKey: string;
}

async function startServer(script: URL, name: string): Promise<Server> {
  const rpc = await forkChild(script, name, { execArgv: ['--expose-gc', ...params.serverNodeOptions] });
  const options = { maxConnections: 25_000, heartbeatMs: 180_000, backlog: params.backlog };
  const r = await rpc.call<{ tcpPort: number; publicKey?: string }>('start', { options }, 60_000);
  return { rpc, tcpPort: r.tcpPort, publicKey: r.publicKey ?? '' };
}

const stats = (s: Server, gc = false) => s.rpc.call<ServerStats>('stats', { gc }, 60_000);

/** Runs one fleet mode on every client process; prints progress while it runs. */
function runClients(clients: RpcClient[], server: Server, mode: FleetRun['mode'], total: number) {
  const run = (i: number): FleetRun => ({
    mode,
    groups: [
      {
        host: '127.0.0.1',
        port: server.tcpPort,
        count: share(total, clients.length, i),
        userPrefix: `user-${i}-`,
      },
    ],
    // Each process from its own source address, so no address runs out of ports.
    localAddresses: [`127.0.0.${i + 1}`],
    concurrency: params.concurrency,
    maxAttempts: params.maxAttempts,
    publicKey: server.publicKey,
    proc: i,
    durationMs: params.churnSeconds * 1000,
    // About what a device sends to get bound: a Handshake (13 + 128) and a Bind (13 + 32).
    barePayloadBytes: 186,
  });
  const progress = async () => {
    const s = await stats(server);
    return `${mode}: server holds ${s.connections} connections, ${s.bound} bound`;
  };
  return runFleets(clients, run, progress, log);
}

/** CPU of the server and the fleets (and the machine) while `fn` runs. */
async function measured<T>(server: Server, clients: RpcClient[], fn: () => Promise<T>) {
  const procs: Proc[] = [
    { name: 'server', pid: server.rpc.child.pid!, server: true },
    ...clients.map((c, i) => ({ name: `client ${i}`, pid: c.child.pid! })),
  ];
  const m = await measure(server.rpc, procs, fn);
  return { ...m, server: m.w.serverPercent, clients: m.cpuOf('client') };
}

interface Rates {
  completed: number;
  seconds: number;
  perSec: number;
  perSecSteady: number;
  perSecPeak1s: number;
}

/** Completions per second: overall, between the 10th and 90th percentile completion, best 1 s. */
function rates(results: FleetResult[]): Rates {
  const t = Float64Array.from(results.flatMap((r) => r.completions)).sort();
  const n = t.length;
  if (n === 0) return { completed: 0, seconds: 0, perSec: 0, perSecSteady: 0, perSecPeak1s: 0 };
  const seconds = (t[n - 1]! - Math.min(...results.map((r) => r.startedAt))) / 1000;
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

type Worst = Pick<Percentiles, 'n' | 'p50' | 'p90' | 'p99' | 'max'>;

/** Latency percentiles over all processes: the worst process's figure (an upper bound). */
function worst(results: FleetResult[], key: keyof FleetResult['latencyMs']): Worst {
  const ps = results.map((r) => r.latencyMs[key]);
  const max = (k: 'p50' | 'p90' | 'p99' | 'max') => Math.max(...ps.map((p) => p[k]));
  return { n: sum(ps, (p) => p.n), p50: max('p50'), p90: max('p90'), p99: max('p99'), max: max('max') };
}

function memoryFigures(base: ServerStats, after: ServerStats) {
  const n = Math.max(1, after.connections);
  const b = base.memory;
  const a = after.memory;
  const per = (k: keyof ServerStats['memory']) => round((a[k] - b[k]) / n);
  return {
    rssBaselineBytes: b.rss,
    rssAfterBytes: a.rss,
    heapUsedBaselineBytes: b.heapUsed,
    heapUsedAfterBytes: a.heapUsed,
    rssPerConnectionBytes: per('rss'),
    heapPerConnectionBytes: per('heapUsed'),
    heapTotalPerConnectionBytes: per('heapTotal'),
    externalPerConnectionBytes: per('external'),
    arrayBuffersPerConnectionBytes: per('arrayBuffers'),
    // Sockets' native side, OpenSSL contexts, malloc overhead.
    nonHeapRssPerConnectionBytes: round((a.rss - b.rss - (a.heapTotal - b.heapTotal)) / n),
  };
}

/** Holds the connections idle for `seconds`: server CPU (its own µs count) and the fleets'. */
async function idleWindow(server: Server, clients: RpcClient[], seconds: number) {
  const m = await measured(server, clients, () => sleep(seconds * 1000));
  const { s0, s1 } = m;
  const cpu = (100 * (s1.cpu.user - s0.cpu.user + s1.cpu.system - s0.cpu.system)) / ((s1.at - s0.at) * 1000);
  return {
    idleSeconds: round(m.w.seconds, 1),
    serverIdleCpuPercent: round(cpu, 1),
    clientsIdleCpuPercent: m.clients,
    end: s1,
  };
}

async function stopAll(server: Server, clients: RpcClient[]): Promise<void> {
  await Promise.all(clients.map((c) => c.stop()));
  await server.rpc.stop('stop', 30_000);
}

// ---- the bare Node reference ------------------------------------------------------------------------

async function runBare(n: number) {
  log(`bare: starting the bare Node TCP server, ${n} connections`);
  const server = await startServer(new URL('./bare-server.js', import.meta.url), 'bare server');
  const base = await stats(server, true);
  const clients = await startClients();
  const ramp = await measured(server, clients, () => runClients(clients, server, 'bare', n));
  await sleep(params.settleSeconds * 1000);
  const after = await stats(server, true);
  const idle = await idleWindow(server, clients, Math.min(params.idleSeconds, 5));
  await Promise.all(clients.map((c) => c.call('drop')));
  await stopAll(server, clients);
  const r = rates(ramp.out);
  const mem = memoryFigures(base, after);
  log(`bare: ${after.connections} held, ${mem.rssPerConnectionBytes} B RSS per connection`);
  return {
    connections: after.connections,
    connectSecondsForAll: r.seconds,
    connectsPerSec: r.perSec,
    connectLatencyMsWorstProcess: worst(ramp.out, 'connect'),
    tcpDuringConnect: ramp.w.tcp,
    ...mem,
    serverIdleCpuPercent: idle.serverIdleCpuPercent,
    errors: addCounts(ramp.out.map((x) => x.errors)),
  };
}

const startClients = () =>
  Promise.all(Array.from({ length: params.clients }, (_, i) => forkChild(scripts.fleet, `client ${i}`)));

// ---- mpush-ts ------------------------------------------------------------------------------------------

async function runMpush(n: number) {
  log(`mpush: starting the server (--expose-gc ${params.serverNodeOptions.join(' ')}), ${n} connections`);
  const server = await startServer(scripts.nodeServer, 'mpush server');
  const rsa = await server.rpc.call<{ rsaDecryptMicros: number }>('rsaBench');
  const base = await stats(server, true);
  log(
    `mpush: baseline RSS ${(base.memory.rss / 2 ** 20).toFixed(1)} MiB; RSA decrypt ${rsa.rsaDecryptMicros.toFixed(1)} µs`,
  );
  const snapDir = params.heapDiff ? mkdtempSync(join(os.tmpdir(), 'mpush-bench-heap-')) : undefined;
  const snapshot = (name: string) =>
    snapDir ? server.rpc.call<string>('snapshot', { path: join(snapDir, name) }, 300_000) : undefined;
  const snapBefore = await snapshot('before.heapsnapshot');

  const clients = await startClients();
  if (params.profile) await server.rpc.call('profileStart', { intervalUs: 200 });
  const ramp = await measured(server, clients, () => runClients(clients, server, 'bind', n));
  const prof = params.profile ? await server.rpc.call<CpuProfile>('profileStop', {}, 120_000) : undefined;
  const r = rates(ramp.out);
  log(`mpush: ramp done: ${r.completed} bound in ${r.seconds} s (${r.perSec}/s)`);

  await sleep(params.settleSeconds * 1000);
  const after = await stats(server, true);
  const snapAfter = await snapshot('after.heapsnapshot');
  const mem = memoryFigures(base, after);
  log(
    `mpush: ${after.connections} held, ${mem.rssPerConnectionBytes} B RSS, ${mem.heapPerConnectionBytes} B heap per connection`,
  );

  const idle = await idleWindow(server, clients, params.idleSeconds);
  const fleets = await Promise.all(clients.map((c) => c.call<FleetStats>('stats')));
  const held = sum(fleets, (s) => s.held);
  log(`mpush: idle ${idle.serverIdleCpuPercent}% server CPU; ${held} held by clients`);

  // Reset everything (RST: no TIME_WAIT on either side), then the pure-handshake phase.
  await Promise.all(clients.map((c) => c.call('drop')));
  const deadline = Date.now() + 20_000;
  let leftOpen = (await stats(server)).connections;
  while (leftOpen > 0 && Date.now() < deadline) {
    await sleep(200);
    leftOpen = (await stats(server)).connections;
  }

  let churn: Record<string, unknown> | undefined;
  if (params.churnSeconds > 0) {
    log(`mpush: pure-handshake phase, ${params.churnSeconds} s`);
    const c = await measured(server, clients, () => runClients(clients, server, 'churn', 0));
    const rr = rates(c.out);
    churn = {
      pureHandshakesPerSec: rr.perSec,
      pureHandshakesPerSecSteady: rr.perSecSteady,
      handshakes: rr.completed,
      seconds: rr.seconds,
      serverCpuPercent: c.server,
      serverEventLoopUtilization: c.elu,
      clientsCpuPercent: c.clients,
      machineCpu: c.w.machine,
      otherProcessesCpuPercentOfMachine: c.w.otherPercentOfMachine,
      otherProcesses: c.w.otherProcesses,
      tcp: c.w.tcp,
      handshakeLatencyMs: worst(c.out, 'handshake'),
      errors: addCounts(c.out.map((x) => x.errors)),
    };
    log(`mpush: ${rr.perSec} pure handshakes/s`);
  }
  await stopAll(server, clients);

  let heapDiff: ReturnType<typeof diffCensus> | undefined;
  if (snapDir && snapBefore && snapAfter) {
    log('mpush: diffing heap snapshots');
    heapDiff = diffCensus(census(snapBefore), census(snapAfter), Math.max(1, after.connections), 30);
    rmSync(snapDir, { recursive: true, force: true });
  }
  const profile = prof && summarizeProfile(prof, r.completed, 'ramp', 'usPerCompletion');
  return {
    connections: after.connections,
    boundConnections: after.bound,
    heldAfterIdle: {
      server: idle.end.connections,
      serverBound: idle.end.bound,
      clients: held,
      lost: sum(fleets, (s) => s.lost),
    },
    connectSecondsForAll: r.seconds,
    handshakesPerSec: r.perSec,
    handshakesPerSecSteady: r.perSecSteady,
    handshakesPerSecPeak1s: r.perSecPeak1s,
    ...(churn ? { pureHandshakesPerSec: churn.pureHandshakesPerSec, pureHandshakePhase: churn } : {}),
    rsaDecryptMicros: round(rsa.rsaDecryptMicros, 1),
    rsaCeilingPerSec: round(1e6 / rsa.rsaDecryptMicros),
    serverCpuPercentDuringRamp: ramp.server,
    serverEventLoopUtilizationDuringRamp: ramp.elu,
    clientsCpuPercentDuringRamp: ramp.clients,
    machineCpuDuringRamp: ramp.w.machine,
    otherProcessesCpuPercentOfMachineDuringRamp: ramp.w.otherPercentOfMachine,
    otherProcessesDuringRamp: ramp.w.otherProcesses,
    tcpDuringRamp: ramp.w.tcp,
    ...mem,
    serverIdleCpuPercent: idle.serverIdleCpuPercent,
    clientsIdleCpuPercent: idle.clientsIdleCpuPercent,
    idleSeconds: idle.idleSeconds,
    latencyMsWorstProcess: {
      connect: worst(ramp.out, 'connect'),
      handshake: worst(ramp.out, 'handshake'),
      bind: worst(ramp.out, 'bind'),
      total: worst(ramp.out, 'total'),
    },
    errors: addCounts(ramp.out.map((x) => x.errors)),
    serverCounters: after.counters,
    serverConnectionsLeftAfterReset: leftOpen,
    clients: ramp.out.map(
      ({ completions: _c, startedAt: _s, finishedAt: _f, mode: _m, seconds: _x, ...c }) => c,
    ),
    ...(heapDiff
      ? {
          heapDiff: {
            note: 'self sizes by object kind, after minus before, per connection; RSS figures of this run include the snapshot writer and are not comparable',
            ...heapDiff,
          },
        }
      : {}),
    ...(profile
      ? { profile: { ...profile, busyUsPerCompletion: profile.busy_usPerCompletion, top: profile.topSelf } }
      : {}),
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
      ephemeralPorts: readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
        .trim()
        .replace(/\s+/g, '-'),
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
  printReport(report);
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(`failed: ${err instanceof Error ? err.stack : String(err)}`);
    for (const c of children) c.kill('SIGKILL');
    process.exit(2);
  },
);
