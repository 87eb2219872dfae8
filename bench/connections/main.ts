// Connection benchmark: how many idle, bound device connections one mpush-ts server process holds,
// what each costs in memory and CPU, and how fast devices get through the full handshake. Phases,
// flags and figures: README.md, "Benchmarks" (`--help` lists the flags). Exit status 1 when fewer
// than n connections were bound (or held at the end of the idle window).

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseFlags } from '../lib/args.js';
import { fleetRun, forkFleets, measure, runFleets, runMain, scripts, share } from '../lib/drive.js';
import type { FleetResult, FleetRun, FleetStats } from '../lib/fleet.js';
import type { ServerStats } from '../lib/node-server.js';
import { machine } from '../lib/procstat.js';
import {
  addCounts,
  type CpuProfile,
  logger,
  printReport,
  round,
  sum,
  summarizeProfile,
} from '../lib/report.js';
import { forkChild, type RpcClient, sleep } from '../lib/rpc.js';
import { census, diffCensus, probeAll } from './memory-parts.js';

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

const stats = (s: Server, gc = false) => s.rpc.call<ServerStats>('stats', { gc }, 60_000);

/** Runs one fleet mode on every client process; prints progress while it runs. */
function runClients(clients: RpcClient[], server: Server, mode: FleetRun['mode'], total: number) {
  const run = (i: number) =>
    fleetRun(
      i,
      [
        {
          host: '127.0.0.1',
          port: server.tcpPort,
          count: share(total, clients.length, i),
          userPrefix: `user-${i}-`,
        },
      ],
      {
        mode,
        concurrency: params.concurrency,
        maxAttempts: params.maxAttempts,
        publicKey: server.publicKey,
        durationMs: params.churnSeconds * 1000,
        // About what a device sends to get bound: a Handshake (13 + 128) and a Bind (13 + 32).
        barePayloadBytes: 186,
      },
    );
  return runFleets(clients, run, server.rpc, log);
}

/** CPU of the server and the fleets (and the machine) while `fn` runs. */
async function measured<T>(server: Server, clients: RpcClient[], fn: () => Promise<T>) {
  const procs = [
    { name: 'server', pid: server.rpc.child.pid!, server: true },
    ...clients.map((c, i) => ({ name: `client ${i}`, pid: c.child.pid! })),
  ];
  const m = await measure(server.rpc, procs, fn);
  return { ...m, server: m.w.serverPercent, clients: m.cpuOf('client') };
}

/** Completions per second: overall, between the 10th and 90th percentile completion, best 1 s. */
function rates(results: FleetResult[]) {
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
  const perSecSteady = steadySpan > 0 ? round((hi - lo) / steadySpan) : 0;
  return {
    completed: n,
    seconds: round(seconds, 2),
    perSec: round(n / seconds),
    perSecSteady,
    perSecPeak1s: peak,
  };
}

/** Latency percentiles over all processes: the worst process's figure (an upper bound). */
function worst(results: FleetResult[], key: keyof FleetResult['latencyMs']) {
  const ps = results.map((r) => r.latencyMs[key]);
  const max = (k: 'p50' | 'p90' | 'p99' | 'max') => Math.max(...ps.map((p) => p[k]));
  return { n: sum(ps, (p) => p.n), p50: max('p50'), p90: max('p90'), p99: max('p99'), max: max('max') };
}

function memoryFigures(base: ServerStats, after: ServerStats) {
  const [b, a] = [base.memory, after.memory];
  const per = (d: number) => round(d / Math.max(1, after.connections));
  return {
    rssBaselineBytes: b.rss,
    rssAfterBytes: a.rss,
    heapUsedBaselineBytes: b.heapUsed,
    heapUsedAfterBytes: a.heapUsed,
    rssPerConnectionBytes: per(a.rss - b.rss),
    heapPerConnectionBytes: per(a.heapUsed - b.heapUsed),
    heapTotalPerConnectionBytes: per(a.heapTotal - b.heapTotal),
    externalPerConnectionBytes: per(a.external - b.external),
    arrayBuffersPerConnectionBytes: per(a.arrayBuffers - b.arrayBuffers),
    // Sockets' native side, OpenSSL contexts, malloc overhead.
    nonHeapRssPerConnectionBytes: per(a.rss - b.rss - (a.heapTotal - b.heapTotal)),
  };
}

/**
 * One server (the bare Node reference or mpush-ts) through the phases: baseline memory after gc →
 * ramp (every fleet connects, handshakes and binds its share) → settle → memory after gc → idle
 * window → reset all (RST) → for mpush-ts, churn (connect + handshake + reset, nothing held) → stop.
 */
async function hold(bare: boolean, n: number) {
  const name = bare ? 'bare' : 'mpush';
  log(`${name}: starting the server (--expose-gc ${params.serverNodeOptions.join(' ')}), ${n} connections`);
  const script = bare ? new URL('./bare-server.js', import.meta.url) : scripts.nodeServer;
  const rpc = await forkChild(script, `${name} server`, {
    execArgv: ['--expose-gc', ...params.serverNodeOptions],
  });
  const options = { maxConnections: 25_000, heartbeatMs: 180_000, backlog: params.backlog };
  const server = {
    rpc,
    ...(await rpc.call<{ tcpPort: number; publicKey: string }>('start', { options }, 60_000)),
  };
  const rsa = bare ? undefined : await rpc.call<{ rsaDecryptMicros: number }>('rsaBench');
  const base = await stats(server, true);
  const snapDir = params.heapDiff && !bare ? mkdtempSync(join(os.tmpdir(), 'mpush-bench-heap-')) : undefined;
  const snapshot = (file: string) =>
    snapDir ? rpc.call<string>('snapshot', { path: join(snapDir, file) }, 300_000) : undefined;
  const snapBefore = await snapshot('before.heapsnapshot');
  const clients = await forkFleets(params.clients, 'client');
  const profiling = params.profile && !bare;
  if (profiling) await rpc.call('profileStart', { intervalUs: 200 });
  const ramp = await measured(server, clients, () => runClients(clients, server, bare ? 'bare' : 'bind', n));
  const prof = profiling ? await rpc.call<CpuProfile>('profileStop', {}, 120_000) : undefined;
  const r = rates(ramp.out);
  log(`${name}: ramp done: ${r.completed} bound in ${r.seconds} s (${r.perSec}/s)`);
  await sleep(params.settleSeconds * 1000);
  const after = await stats(server, true);
  const snapAfter = await snapshot('after.heapsnapshot');
  const mem = memoryFigures(base, after);
  log(
    `${name}: ${after.connections} held, ${mem.rssPerConnectionBytes} B RSS, ${mem.heapPerConnectionBytes} B heap each`,
  );

  const idle = await measured(server, clients, () =>
    sleep((bare ? Math.min(params.idleSeconds, 5) : params.idleSeconds) * 1000),
  );
  const idleUs = idle.s1.cpu.user - idle.s0.cpu.user + idle.s1.cpu.system - idle.s0.cpu.system;
  const serverIdleCpuPercent = round((100 * idleUs) / ((idle.s1.at - idle.s0.at) * 1000), 1);
  const fleets = await Promise.all(clients.map((c) => c.call<FleetStats>('stats')));
  await Promise.all(clients.map((c) => c.call('drop')));
  const errors = addCounts(ramp.out.map((x) => x.errors));
  const out = { connections: after.connections, connectSecondsForAll: r.seconds };
  if (bare) {
    await Promise.all([...clients.map((c) => c.stop()), rpc.stop('stop', 30_000)]);
    const connect = { connectsPerSec: r.perSec, connectLatencyMsWorstProcess: worst(ramp.out, 'connect') };
    return { ...out, ...connect, tcpDuringConnect: ramp.w.tcp, ...mem, serverIdleCpuPercent, errors };
  }
  log(`mpush: idle ${serverIdleCpuPercent}% server CPU; ${sum(fleets, (s) => s.held)} held by clients`);
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
    const cr = rates(c.out);
    churn = {
      pureHandshakesPerSec: cr.perSec,
      pureHandshakesPerSecSteady: cr.perSecSteady,
      handshakes: cr.completed,
      seconds: cr.seconds,
      serverCpuPercent: c.server,
      serverCpuUsPerHandshake: round(c.serverUs / Math.max(1, cr.completed), 1),
      serverEventLoopUtilization: c.elu,
      clientsCpuPercent: c.clients,
      machineCpu: c.w.machine,
      otherProcessesCpuPercentOfMachine: c.w.otherPercentOfMachine,
      otherProcesses: c.w.otherProcesses,
      tcp: c.w.tcp,
      handshakeLatencyMs: worst(c.out, 'handshake'),
      errors: addCounts(c.out.map((x) => x.errors)),
    };
    log(`mpush: ${cr.perSec} pure handshakes/s`);
  }
  await Promise.all([...clients.map((c) => c.stop()), rpc.stop('stop', 30_000)]);
  let heapDiff: Record<string, unknown> | undefined;
  if (snapDir && snapBefore && snapAfter) {
    log('mpush: diffing heap snapshots');
    const note =
      'self sizes by object kind, after minus before, per connection; RSS figures of this run include the snapshot writer and are not comparable';
    heapDiff = { note, ...diffCensus(census(snapBefore), census(snapAfter), Math.max(1, after.connections)) };
    rmSync(snapDir, { recursive: true, force: true });
  }
  const profile = prof && summarizeProfile(prof, r.completed, 'ramp', 'usPerCompletion');
  return {
    ...out,
    boundConnections: after.bound,
    heldAfterIdle: {
      server: idle.s1.connections,
      serverBound: idle.s1.bound,
      clients: sum(fleets, (s) => s.held),
      lost: sum(fleets, (s) => s.lost),
    },
    handshakesPerSec: r.perSec,
    handshakesPerSecSteady: r.perSecSteady,
    handshakesPerSecPeak1s: r.perSecPeak1s,
    ...(churn ? { pureHandshakesPerSec: churn.pureHandshakesPerSec, pureHandshakePhase: churn } : {}),
    rsaDecryptMicros: round(rsa!.rsaDecryptMicros, 1),
    rsaCeilingPerSec: round(1e6 / rsa!.rsaDecryptMicros),
    serverCpuUsPerHandshakeBind: round(ramp.serverUs / Math.max(1, r.completed), 1),
    serverCpuPercentDuringRamp: ramp.server,
    serverEventLoopUtilizationDuringRamp: ramp.elu,
    clientsCpuPercentDuringRamp: ramp.clients,
    machineCpuDuringRamp: ramp.w.machine,
    otherProcessesCpuPercentOfMachineDuringRamp: ramp.w.otherPercentOfMachine,
    otherProcessesDuringRamp: ramp.w.otherProcesses,
    tcpDuringRamp: ramp.w.tcp,
    ...mem,
    serverIdleCpuPercent,
    clientsIdleCpuPercent: idle.clients,
    idleSeconds: round(idle.w.seconds, 1),
    latencyMsWorstProcess: Object.fromEntries(
      (['connect', 'handshake', 'bind', 'total'] as const).map((k) => [k, worst(ramp.out, k)]),
    ),
    errors,
    serverCounters: after.counters,
    serverConnectionsLeftAfterReset: leftOpen,
    clients: ramp.out.map(
      ({ completions: _c, startedAt: _s, finishedAt: _f, mode: _m, seconds: _x, ...c }) => c,
    ),
    heapDiff,
    profile: profile && {
      ...profile,
      busyUsPerCompletion: profile.busy_usPerCompletion,
      top: profile.topSelf,
    },
  };
}

async function main(): Promise<number> {
  const ports = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().replace(/\s+/g, '-');
  const report: Record<string, unknown> = {
    bench: 'connections',
    params,
    machine: machine({ ephemeralPorts: ports }),
  };
  const bare = params.bare || params.bareOnly ? await hold(true, params.n) : undefined;
  report.bare = bare;
  let ok = true;
  if (!params.bareOnly) {
    const m = (await hold(false, params.n)) as Extract<
      Awaited<ReturnType<typeof hold>>,
      { boundConnections: number }
    >;
    ok = m.boundConnections >= params.n && m.heldAfterIdle.serverBound >= params.n;
    Object.assign(report, {
      mpush: m,
      bareNodeRssPerConnectionBytes: bare?.rssPerConnectionBytes,
      targets: {
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
      },
    });
  }
  if (params.components) {
    log('memory probe: per-part costs in isolation');
    report.components = probeAll(20_000);
  }
  printReport(report);
  return ok ? 0 : 1;
}

runMain(main, log);
