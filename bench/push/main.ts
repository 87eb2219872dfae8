// Push benchmark: how many acked pushes per second one mpush-ts node delivers, at what latency and
// server CPU per push, and how fast a broadcast reaches every device. Flags, processes and figures:
// README.md, "Benchmarks" (`--help` lists the flags).
//
// Processes: the node (bench/lib/node-server.ts), K device fleets (bench/lib/fleet.ts: full RSA
// handshake + BIND `user-<i>`, AUTO_ACK pushes ACKed at once), one pusher (bench/lib/pusher.ts: a
// PushSender). Phases: ramp → warm-up (one push to each user: JIT, and the route cache is filled,
// so measured phases never wait on a route lookup) → closed loop → floor probe → open loop →
// broadcast to N → top-up to broadcast-n → broadcast to broadcast-n. Exit status 1 when any push
// result is not success, a broadcast misses a device, a device saw a corrupt push, or a device
// connection was lost; 2 when the bench itself failed.

import os from 'node:os';
import type { BroadcastResult } from '../../src/client/push/index.js';
import { parseFlags } from '../lib/args.js';
import { measure, runFleets, scripts, share } from '../lib/drive.js';
import type { BroadcastReceipt, FleetRun, FleetStats } from '../lib/fleet.js';
import type { NodeReady, ServerStats } from '../lib/node-server.js';
import { type LoopStats, maxOpenFiles, type Proc } from '../lib/procstat.js';
import type { PhaseResult, PusherOptions } from '../lib/pusher.js';
import { untilUndisturbed, waitQuiet } from '../lib/quiet.js';
import {
  addCounts,
  type CpuProfile,
  logger,
  printReport,
  round,
  sum,
  summarizeProfile,
} from '../lib/report.js';
import { children, forkChild, type RpcClient, sleep } from '../lib/rpc.js';

const f = parseFlags(
  {
    n: 10_000,
    m: 200_000,
    k: 2,
    concurrency: 2000,
    rate: 5000,
    durationSeconds: 10,
    broadcastN: 19_000,
    timeoutMs: 10_000,
    payloadBytes: 100,
    connectConcurrency: 200,
    verifyEvery: 64,
    floorRounds: 5,
    profile: false,
    serverNodeOptions: '',
    waitFor: 'dist/bench/connections/',
    waitMinutes: 20,
    quietPercent: 15,
    retries: 2,
  },
  {
    env: 'BENCH_',
    rename: { durationSeconds: 'duration', timeoutMs: 'timeout', payloadBytes: 'payload' },
    quick: {
      n: 2000,
      m: 20_000,
      concurrency: 500,
      rate: 2000,
      durationSeconds: 3,
      broadcastN: 3000,
      floorRounds: 2,
      waitMinutes: 0,
      retries: 0,
    },
  },
);
const params = {
  ...f,
  k: Math.min(8, Math.max(1, f.k)),
  concurrency: Math.max(1, f.concurrency),
  payloadBytes: Math.max(40, f.payloadBytes),
  connectConcurrency: Math.max(1, f.connectConcurrency),
  verifyEvery: Math.max(1, f.verifyEvery),
  serverNodeOptions: f.serverNodeOptions.split(/\s+/).filter((o) => o !== ''),
};

const log = logger('push');
const users = (n: number) => Array.from({ length: n }, (_, i) => `user-${i}`);

/** A MPush-style JSON message of exactly `bytes` bytes. */
function message(kind: string, bytes: number): string {
  const head = `{"msgType":2,"msgId":"bench-${kind}","content":"`;
  return `${head}${'x'.repeat(Math.max(0, bytes - head.length - 2))}"}`;
}
const unicastContent = message('unicast', params.payloadBytes);

interface Ctx {
  server: RpcClient;
  tcpPort: number;
  publicKey: string;
  devices: RpcClient[];
  pusher: RpcClient;
  procs: Proc[];
  /** Global user indices held so far: [0, held). */
  held: number;
}

const quiet = (label: string) =>
  waitQuiet(
    label,
    { pattern: params.waitFor, maxMinutes: params.waitMinutes, quietPercent: params.quietPercent },
    log,
  );
const stats = (ctx: Ctx) => ctx.server.call<ServerStats>('stats');
const deviceStats = (ctx: Ctx) => Promise.all(ctx.devices.map((d) => d.call<FleetStats>('stats')));

async function connectDevices(ctx: Ctx, from: number, to: number) {
  log(`ramp: connecting devices ${from}..${to - 1} over ${ctx.devices.length} processes`);
  // Process i holds the users after those of the processes before it.
  const counts = ctx.devices.map((_, i) => share(to - from, ctx.devices.length, i));
  const run = (i: number): FleetRun => ({
    mode: 'bind',
    groups: [
      {
        host: '127.0.0.1',
        port: ctx.tcpPort,
        count: counts[i]!,
        first: from + sum(counts.slice(0, i), (c) => c),
        userPrefix: 'user-',
      },
    ],
    localAddresses: [`127.0.0.${i + 1}`],
    concurrency: params.connectConcurrency,
    maxAttempts: 3,
    publicKey: ctx.publicKey,
    proc: i,
    // Spread over the interval, so a long run is not cut by the server's read timeout.
    heartbeatSeconds: 120,
  });
  const progress = async () => {
    const s = await stats(ctx);
    return `ramp: server holds ${s.connections} connections, ${s.bound} bound`;
  };
  const results = await runFleets(ctx.devices, run, progress, log);
  const s = await stats(ctx);
  ctx.held = to;
  const out = {
    target: to - from,
    bound: sum(results, (r) => r.bound),
    failed: sum(results, (r) => r.failed),
    seconds: round(Math.max(...results.map((r) => r.seconds)), 2),
    serverBound: s.bound,
    errors: addCounts(results.map((r) => r.errors)),
  };
  log(`ramp: ${out.bound}/${out.target} bound in ${out.seconds} s; server has ${s.bound} bound`);
  return out;
}

/** CPU (server µs from its own count; every process's share from /proc), GC and loop delay, over `fn`. */
async function measured<T>(ctx: Ctx, fn: () => Promise<T>) {
  const everyone = [ctx.server, ctx.pusher, ...ctx.devices];
  await Promise.all(everyone.map((c) => c.call('loop')));
  const t0 = Date.now();
  const m = await measure(ctx.server, ctx.procs, fn);
  const [server, pusher, ...devices] = await Promise.all(everyone.map((c) => c.call<LoopStats>('loop')));
  const { s0, s1, serverUs, w } = m;
  const worst = (k: 'gcMs' | 'gcMaxMs' | 'loopDelayP99Ms' | 'loopDelayMaxMs') =>
    Math.max(...devices.map((l) => l[k]));
  return {
    ...m,
    t0,
    cpuPercent: {
      server: m.cpuOf('server'),
      serverUserShare: round(serverUs > 0 ? (s1.cpu.user - s0.cpu.user) / serverUs : 0, 2),
      serverEventLoopUtilization: m.elu,
      pusher: m.cpuOf('pusher'),
      devices: m.cpuOf('devices'),
      machine: w.machine,
      otherProcessesPercentOfMachine: w.otherPercentOfMachine,
      otherProcesses: w.otherProcesses,
    },
    gcAndLoopDelay: {
      server,
      pusher,
      devicesWorst: {
        gcMs: worst('gcMs'),
        gcMaxMs: worst('gcMaxMs'),
        loopDelayP99Ms: worst('loopDelayP99Ms'),
        loopDelayMaxMs: worst('loopDelayMaxMs'),
      },
    },
  };
}

/** A measured phase, run again (up to --retries times) when other processes took the machine. */
async function undisturbed<T extends { phase: { cpuPercent: { otherProcessesPercentOfMachine: number } } }>(
  label: string,
  run: () => Promise<T>,
): Promise<T & { disturbedRuns?: Array<Record<string, unknown>> }> {
  const r = await untilUndisturbed(
    label,
    params.quietPercent > 0 ? params.retries + 1 : 1,
    run,
    ({ phase: p }) => {
      const other = p.cpuPercent.otherProcessesPercentOfMachine;
      if (params.quietPercent <= 0 || other <= params.quietPercent) return undefined;
      const keep = ['ackedPerSec', 'serverCpuUsPerAckedPush', 'msToLastDelivery', 'serverCpuUsPerDelivery'];
      const head = Object.fromEntries(Object.entries(p).filter(([k]) => keep.includes(k)));
      const p99Ms = (p as { latencyMs?: { p99: number } }).latencyMs?.p99;
      return { otherProcessesPercentOfMachine: other, ...head, ...(p99Ms !== undefined ? { p99Ms } : {}) };
    },
    log,
  );
  return r.disturbedRuns.length > 0 ? { ...r.last, disturbedRuns: r.disturbedRuns } : r.last;
}

async function unicastPhase(ctx: Ctx, kind: 'closed' | 'open') {
  const q = await quiet(`${kind} loop`);
  const before = await deviceStats(ctx);
  const profile = params.profile && kind === 'closed';
  if (profile) await ctx.server.call('profileStart', { intervalUs: 100 });
  log(
    kind === 'closed'
      ? `closed loop: ${params.m} pushes, ${params.concurrency} in flight, ${params.n} users`
      : `open loop: ${params.rate}/s for ${params.durationSeconds} s`,
  );
  const c = await measured(ctx, () =>
    kind === 'closed'
      ? ctx.pusher.call<PhaseResult>(
          'load',
          {
            params: {
              users: users(params.n),
              total: params.m,
              concurrency: params.concurrency,
              random: true,
            },
          },
          1_800_000,
        )
      : ctx.pusher.call<PhaseResult>(
          'open',
          { users: users(params.n), rate: params.rate, durationMs: params.durationSeconds * 1000 },
          1_800_000,
        ),
  );
  const prof = profile ? await ctx.server.call<CpuProfile>('profileStop', {}, 120_000) : undefined;
  const after = await deviceStats(ctx);
  const r = c.out;
  const acked = Math.max(1, r.results.success);
  log(
    `${kind} loop: ${r.ackedPerSec} acked/s, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, ` +
      `server ${round(c.serverUs / acked, 2)} µs/push, server CPU ${c.cpuPercent.server}%`,
  );
  return {
    phase: {
      ...q,
      ...r,
      serverCpuUsPerAckedPush: round(c.serverUs / acked, 2),
      serverUserUsPerAckedPush: round((c.s1.cpu.user - c.s0.cpu.user) / acked, 2),
      serverSystemUsPerAckedPush: round((c.s1.cpu.system - c.s0.cpu.system) / acked, 2),
      serverHeapUsedBytesAtEnd: c.s1.memory.heapUsed,
      serverAcksCounted: c.s1.counters.acks - c.s0.counters.acks,
      devicesReceivedAckedPushes: sum(after, (s) => s.acks) - sum(before, (s) => s.acks),
      cpuPercent: c.cpuPercent,
      gcAndLoopDelay: c.gcAndLoopDelay,
    },
    profile: prof ? summarizeProfile(prof, acked, 'closed loop', 'usPerAckedPush') : undefined,
  };
}

/**
 * The floor: every device sends a heartbeat and the server echoes it, `rounds` times. Per heartbeat
 * the server does one read and one (corked) write through its Connection, with almost no JS: what a
 * push costs the server at the least on the device side.
 */
async function floorPhase(ctx: Ctx, rounds: number) {
  const q = await quiet('floor probe');
  const c = await measured(ctx, () =>
    Promise.all(
      ctx.devices.map((d) =>
        d.call<{ sent: number; echoed: number; ms: number }>('heartbeatRounds', { rounds }, 120_000),
      ),
    ),
  );
  const echoed = Math.max(
    1,
    sum(c.out, (x) => x.echoed),
  );
  const out = {
    loadAverage: q.loadAverage,
    heartbeats: sum(c.out, (x) => x.sent),
    echoed: sum(c.out, (x) => x.echoed),
    serverCpuUsPerHeartbeat: round(c.serverUs / echoed, 2),
    serverUserUsPerHeartbeat: round((c.s1.cpu.user - c.s0.cpu.user) / echoed, 2),
    serverSystemUsPerHeartbeat: round((c.s1.cpu.system - c.s0.cpu.system) / echoed, 2),
    perSec: round(echoed / (Math.max(...c.out.map((x) => x.ms)) / 1000)),
    cpuPercent: c.cpuPercent,
  };
  log(`floor: ${out.serverCpuUsPerHeartbeat} µs server CPU per device heartbeat round trip`);
  return out;
}

async function broadcastPhase(ctx: Ctx, n: number, profile: boolean) {
  const label = `broadcast ${n}`;
  const q = await quiet(label);
  const content = message(`broadcast-${n}`, params.payloadBytes);
  await Promise.all(ctx.devices.map((d) => d.call('expectContent', { broadcast: content })));
  // Every process expects the devices it holds.
  const expected = (await deviceStats(ctx)).map((s) => s.held);
  await Promise.all(ctx.devices.map((d, i) => d.call('armBroadcast', { expect: expected[i] })));
  let left = expected.filter((e) => e > 0).length;
  const allReceived = new Promise<void>((resolve) => {
    if (left === 0) resolve();
    ctx.devices.forEach((d, i) => {
      if (expected[i] === 0) return;
      const off = d.onEvent((m) => {
        if (m.event !== 'broadcastDone') return;
        off();
        if (--left === 0) resolve();
      });
    });
  });
  if (profile) await ctx.server.call('profileStart', { intervalUs: 100 });
  log(`${label}: broadcast to ${n} devices (NO_ACK)`);
  const c = await measured(ctx, async () => {
    const reply = await ctx.pusher.call<{ sentAt: number; repliedAt: number; result: BroadcastResult }>(
      'broadcast',
      { content },
      120_000,
    );
    const timedOut = await Promise.race([allReceived.then(() => false), sleep(30_000).then(() => true)]);
    return { reply, timedOut };
  });
  const prof = profile ? await ctx.server.call<CpuProfile>('profileStop', {}, 120_000) : undefined;
  const { reply, timedOut } = c.out;
  const final = await Promise.all(ctx.devices.map((d) => d.call<BroadcastReceipt>('broadcastReceipt')));
  const delivered = sum(final, (r) => r.received);
  const ms = Math.max(...final.map((r) => r.lastAt)) - reply.sentAt;
  const { result, matched, sent, failed, reason } = reply.result;
  const perDelivery = round(c.serverUs / Math.max(1, delivered), 2);
  log(
    `${label}: ${delivered}/${n} delivered, last after ${ms} ms, reply after ${reply.repliedAt - reply.sentAt} ms, server ${perDelivery} µs/delivery`,
  );
  return {
    phase: {
      ...q,
      devices: n,
      delivered,
      allDelivered: delivered === n && !timedOut,
      msToLastDelivery: ms,
      msToFirstDelivery:
        Math.min(...final.filter((r) => r.received > 0).map((r) => r.firstAt)) - reply.sentAt,
      msToReply: reply.repliedAt - reply.sentAt,
      serverCpuUsPerDelivery: perDelivery,
      serverCpuMs: round(c.serverUs / 1000, 1),
      windowMs: Date.now() - c.t0,
      node: { result, matched, sent, failed, ...(reason ? { reason } : {}) },
      perProcess: final.map((r) => ({
        proc: r.proc,
        expect: r.expect,
        received: r.received,
        lastMs: r.lastAt - reply.sentAt,
      })),
      cpuPercent: c.cpuPercent,
      gcAndLoopDelay: c.gcAndLoopDelay,
    },
    profile: prof ? summarizeProfile(prof, delivered, label, 'usPerDelivery') : undefined,
  };
}

const withRuns = <P>(x: { phase: P; disturbedRuns?: unknown[] }) =>
  x.disturbedRuns ? { ...x.phase, disturbedRuns: x.disturbedRuns } : x.phase;
const allSuccess = (p: { results: Record<string, number> }) =>
  p.results.failure === 0 && p.results.offline === 0 && p.results.timeout === 0;

async function main(): Promise<number> {
  const report: Record<string, unknown> = {
    bench: 'push',
    params,
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      node: process.version,
      maxOpenFiles: maxOpenFiles() ?? null,
    },
  };
  let server: RpcClient | undefined;
  const helpers: RpcClient[] = [];
  let ok = true;
  try {
    log(`starting the server (${params.serverNodeOptions.join(' ')})`);
    server = await forkChild(scripts.nodeServer, 'server', { execArgv: params.serverNodeOptions });
    const ready = await server.call<NodeReady>(
      'start',
      { options: { maxConnections: Number(process.env.BENCH_PUSH_MAX_CONNECTIONS ?? 20_000) } },
      60_000,
    );
    const [pusher, ...devices] = await Promise.all([
      forkChild(scripts.pusher, 'pusher'),
      ...Array.from({ length: params.k }, (_, i) => forkChild(scripts.fleet, `devices ${i}`)),
    ]);
    helpers.push(pusher!, ...devices);
    const ctx: Ctx = {
      server,
      tcpPort: ready.tcpPort,
      publicKey: ready.publicKey,
      devices,
      pusher: pusher!,
      held: 0,
      procs: [
        { name: 'server', pid: server.child.pid!, server: true },
        { name: 'pusher', pid: pusher!.child.pid! },
        ...devices.map((d, i) => ({ name: `devices ${i}`, pid: d.child.pid! })),
      ],
    };
    const serverMaxFiles = ready.maxOpenFiles ?? undefined;
    (report.machine as Record<string, unknown>).serverMaxOpenFiles = serverMaxFiles ?? null;
    await Promise.all(
      devices.map((d) => d.call('expectContent', { unicast: unicastContent, every: params.verifyEvery })),
    );

    await quiet('ramp');
    report.ramp = await connectDevices(ctx, 0, params.n);
    const options: PusherOptions = {
      mode: 'sender',
      gateways: [{ host: '127.0.0.1', port: ready.gatewayPort }],
      timeoutMs: params.timeoutMs,
      routeCacheMs: 600_000,
      content: unicastContent,
    };
    await ctx.pusher.call('start', { options });
    log(`warm-up: one push to each of ${params.n} users`);
    const warm = await ctx.pusher.call<PhaseResult>(
      'load',
      { params: { users: users(params.n), total: params.n, concurrency: Math.min(params.concurrency, 500) } },
      600_000,
    );
    report.warmup = { sent: warm.sent, results: warm.results, seconds: warm.seconds, reasons: warm.reasons };
    const a = await stats(ctx);
    await sleep(2000);
    const b = await stats(ctx);
    report.serverIdleCpuPercent = round(
      (100 * (b.cpu.user - a.cpu.user + b.cpu.system - a.cpu.system)) / ((b.at - a.at) * 1000),
      2,
    );

    const closed = await undisturbed('closed loop', () => unicastPhase(ctx, 'closed'));
    if (params.floorRounds > 0) report.floor = await floorPhase(ctx, params.floorRounds);
    const open =
      params.rate > 0 && params.durationSeconds > 0
        ? await undisturbed('open loop', () => unicastPhase(ctx, 'open'))
        : undefined;
    const bc1 = await undisturbed(`broadcast ${ctx.held}`, () =>
      broadcastPhase(ctx, ctx.held, params.profile && params.broadcastN <= params.n),
    );

    let bc2: (Awaited<ReturnType<typeof broadcastPhase>> & { disturbedRuns?: unknown[] }) | undefined;
    if (params.broadcastN > params.n) {
      const perProc = Math.ceil(params.broadcastN / params.k);
      const mine = maxOpenFiles();
      if (serverMaxFiles !== undefined && serverMaxFiles < params.broadcastN + 64) {
        report.broadcastLargeSkipped = `server open-file limit ${serverMaxFiles} < ${params.broadcastN} devices + 64`;
      } else if (mine !== undefined && mine < perProc + 64) {
        report.broadcastLargeSkipped = `device process open-file limit ${mine} < ${perProc} + 64`;
      } else {
        report.rampTopUp = await connectDevices(ctx, params.n, params.broadcastN);
        await sleep(2000); // let the ramp's garbage settle
        bc2 = await undisturbed(`broadcast ${ctx.held}`, () => broadcastPhase(ctx, ctx.held, params.profile));
      }
      if (report.broadcastLargeSkipped) log(`second broadcast skipped: ${report.broadcastLargeSkipped}`);
    }

    const counts = await deviceStats(ctx);
    const final = await stats(ctx);
    const cl = closed.phase;
    report.ackedPushesPerSec = cl.ackedPerSec;
    report.latencyMs = { p50: cl.latencyMs.p50, p99: cl.latencyMs.p99, max: cl.latencyMs.max };
    report.serverCpuUsPerAckedPush = cl.serverCpuUsPerAckedPush;
    report.results = cl.results;
    report.closedLoop = withRuns(closed);
    if (open) {
      const l = open.phase.latencyMs;
      report.openLoopLatencyMs = { rate: params.rate, p50: l.p50, p99: l.p99, max: l.max };
      report.openLoop = withRuns(open);
    }
    report.broadcastMsToLastDelivery = bc1.phase.msToLastDelivery;
    report.serverCpuUsPerBroadcastDelivery = bc1.phase.serverCpuUsPerDelivery;
    report.broadcast = withRuns(bc1);
    if (bc2) {
      report.broadcastLargeMsToLastDelivery = bc2.phase.msToLastDelivery;
      report.serverCpuUsPerBroadcastLargeDelivery = bc2.phase.serverCpuUsPerDelivery;
      report.broadcastLarge = withRuns(bc2);
    }
    const lost = sum(counts, (c) => c.lost);
    const corrupt = sum(counts, (c) => c.corrupt);
    report.devices = {
      lost,
      corrupt,
      verified: sum(counts, (c) => c.verified),
      unexpected: addCounts(counts.map((c) => c.unexpected)),
      errorsAfterBound: addCounts(counts.map((c) => c.errorsAfterBound)),
      heartbeatsSent: sum(counts, (c) => c.heartbeatsSent),
    };
    report.serverFinal = {
      connections: final.connections,
      bound: final.bound,
      acksPending: final.acksPending,
      rssBytes: final.memory.rss,
      heapUsedBytes: final.memory.heapUsed,
      gateway: final.gateway,
      counters: final.counters,
      closed: final.closed,
    };
    const big = bc2?.phase ?? bc1.phase;
    const openP99 = open?.phase.latencyMs.p99;
    report.targets = {
      ackedPushesPerSec: { target: '>= 50000', measured: cl.ackedPerSec, met: cl.ackedPerSec >= 50_000 },
      serverCpuUsPerAckedPush: {
        target: '<= 15',
        measured: cl.serverCpuUsPerAckedPush,
        met: cl.serverCpuUsPerAckedPush <= 15,
      },
      openLoopP99Ms: {
        target: `<= 5 at ${params.rate}/s`,
        measured: openP99 ?? null,
        met: openP99 !== undefined && openP99 <= 5,
      },
      broadcastMsToLastDelivery: {
        target: '<= 300 at 19000 devices',
        devices: big.devices,
        measured: big.msToLastDelivery,
        met: big.devices >= 19_000 && big.msToLastDelivery <= 300,
      },
      serverCpuUsPerBroadcastDelivery: {
        target: '<= 12 at 19000 devices',
        devices: big.devices,
        measured: big.serverCpuUsPerDelivery,
        met: big.devices >= 19_000 && big.serverCpuUsPerDelivery <= 12,
      },
    };
    const profiles = [closed.profile, bc2?.profile ?? bc1.profile].filter((p) => p !== undefined);
    if (profiles.length > 0) report.serverProfiles = profiles;
    ok =
      allSuccess(warm) &&
      allSuccess(cl) &&
      (open === undefined || allSuccess(open.phase)) &&
      bc1.phase.allDelivered &&
      (bc2 === undefined || bc2.phase.allDelivered) &&
      lost === 0 &&
      corrupt === 0;
    report.ok = ok;
  } finally {
    for (const c of helpers) await c.stop();
    await server?.stop('stop', 30_000);
  }
  printReport(report, [
    'bench',
    'ok',
    'ackedPushesPerSec',
    'latencyMs',
    'serverCpuUsPerAckedPush',
    'results',
    'openLoopLatencyMs',
    'broadcastMsToLastDelivery',
    'serverCpuUsPerBroadcastDelivery',
    'broadcastLargeMsToLastDelivery',
    'serverCpuUsPerBroadcastLargeDelivery',
    'broadcastLargeSkipped',
    'targets',
  ]);
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
