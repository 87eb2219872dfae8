// Push benchmark: acked pushes per second through one mpush-ts node, their latency and server CPU,
// and how fast a broadcast reaches every device. Processes, phases, flags and figures: README.md,
// "Benchmarks" (`--help` lists the flags). Exit status 1 when a push result is not success, a
// broadcast misses a device, a device saw a corrupt push or lost its connection; 2 when the bench
// itself failed.

import type { BroadcastResult } from '../../src/client/push/index.js';
import { parseFlags } from '../lib/args.js';
import {
  fleetRun,
  fleetSummary,
  forkFleets,
  measure,
  runFleets,
  runMain,
  scripts,
  share,
} from '../lib/drive.js';
import type { BroadcastReceipt, FleetStats } from '../lib/fleet.js';
import type { NodeReady, ServerStats } from '../lib/node-server.js';
import { type LoopStats, machine, maxOpenFiles, type Proc } from '../lib/procstat.js';
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
import { forkChild, type RpcClient, sleep } from '../lib/rpc.js';

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
const users = Array.from({ length: params.n }, (_, i) => `user-${i}`);

/** A MPush-style JSON message of exactly `bytes` bytes. */
function message(kind: string, bytes: number): string {
  const head = `{"msgType":2,"msgId":"bench-${kind}","content":"`;
  return `${head}${'x'.repeat(Math.max(0, bytes - head.length - 2))}"}`;
}

interface Ctx {
  server: RpcClient;
  ready: NodeReady;
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
/** Per unit of work: server CPU µs, and its user and system parts. */
const perUnit = <N extends string>(
  c: { serverUs: number; s0: ServerStats; s1: ServerStats },
  units: number,
  name: N,
) =>
  ({
    [`serverCpuUsPer${name}`]: round(c.serverUs / units, 2),
    [`serverUserUsPer${name}`]: round((c.s1.cpu.user - c.s0.cpu.user) / units, 2),
    [`serverSystemUsPer${name}`]: round((c.s1.cpu.system - c.s0.cpu.system) / units, 2),
  }) as Record<`server${'Cpu' | 'User' | 'System'}UsPer${N}`, number>;

/** Binds users [from, to): process i holds the users after those of the processes before it. */
async function connectDevices(ctx: Ctx, from: number, to: number) {
  log(`ramp: connecting devices ${from}..${to - 1} over ${ctx.devices.length} processes`);
  const counts = ctx.devices.map((_, i) => share(to - from, ctx.devices.length, i));
  const group = (i: number) => ({
    host: '127.0.0.1',
    port: ctx.ready.tcpPort,
    count: counts[i]!,
    first: from + sum(counts.slice(0, i), (c) => c),
    userPrefix: 'user-',
  });
  const run = (i: number) =>
    fleetRun(i, [group(i)], {
      concurrency: params.connectConcurrency,
      publicKey: ctx.ready.publicKey,
      // Spread over the interval, so a long run is not cut by the server's read timeout.
      heartbeatSeconds: 120,
    });
  const results = await runFleets(ctx.devices, run, ctx.server, log);
  const s = await stats(ctx);
  ctx.held = to;
  const out = { ...fleetSummary(results), serverBound: s.bound };
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
  const worst = ['gcMs', 'gcMaxMs', 'loopDelayP99Ms', 'loopDelayMaxMs'] as const;
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
      devicesWorst: Object.fromEntries(worst.map((k) => [k, Math.max(...devices.map((l) => l[k]))])),
    },
  };
}

type Measured = { phase: { cpuPercent: { otherProcessesPercentOfMachine: number } }; profile?: unknown };
/** The figures a disturbed run is remembered by. */
const DISTURBED_KEEP = [
  'ackedPerSec',
  'serverCpuUsPerAckedPush',
  'msToLastDelivery',
  'serverCpuUsPerDelivery',
];

/**
 * A measured phase after a quiet wait, run again (up to --retries times) when other processes took
 * more than --quiet-percent of the machine; the phase's figures with the disturbed runs, and its profile.
 */
async function phase<T extends Measured>(label: string, run: () => Promise<T>) {
  const r = await untilUndisturbed(
    label,
    params.quietPercent > 0 ? params.retries + 1 : 1,
    async () => ({ ...(await quiet(label)), ...(await run()) }),
    ({ phase: p }) => {
      const other = p.cpuPercent.otherProcessesPercentOfMachine;
      if (params.quietPercent <= 0 || other <= params.quietPercent) return undefined;
      const head = Object.fromEntries(Object.entries(p).filter(([k]) => DISTURBED_KEEP.includes(k)));
      const p99Ms = (p as { latencyMs?: { p99: number } }).latencyMs?.p99;
      return { otherProcessesPercentOfMachine: other, ...head, ...(p99Ms !== undefined ? { p99Ms } : {}) };
    },
    log,
  );
  const { waitedSeconds, loadAverage, machineBusyPercentBefore, otherBenchRunning, phase: p } = r.last;
  const quietFields = { waitedSeconds, loadAverage, machineBusyPercentBefore, otherBenchRunning };
  const runs = r.disturbedRuns.length > 0 ? { disturbedRuns: r.disturbedRuns } : {};
  return {
    phase: { ...quietFields, ...p, ...runs } as typeof quietFields & T['phase'],
    profile: r.last.profile,
  };
}

/** Starts a server CPU profile when `on`; `stop` returns it summarised per unit of work, or undefined. */
async function profiler(ctx: Ctx, on: boolean) {
  if (on) await ctx.server.call('profileStart', { intervalUs: 100 });
  return async (units: number, window: string, per: string) =>
    on
      ? summarizeProfile(await ctx.server.call<CpuProfile>('profileStop', {}, 120_000), units, window, per)
      : undefined;
}

/** The closed loop (`m` pushes, `concurrency` in flight) or the open loop (`rate`/s for `duration`). */
async function unicastPhase(ctx: Ctx, kind: 'closed' | 'open') {
  const before = await deviceStats(ctx);
  const stop = await profiler(ctx, params.profile && kind === 'closed');
  const call =
    kind === 'closed'
      ? {
          cmd: 'load',
          args: { params: { users, total: params.m, concurrency: params.concurrency, random: true } },
        }
      : { cmd: 'open', args: { users, rate: params.rate, durationMs: params.durationSeconds * 1000 } };
  log(
    kind === 'closed'
      ? `closed loop: ${params.m} pushes, ${params.concurrency} in flight, ${params.n} users`
      : `open loop: ${params.rate}/s for ${params.durationSeconds} s`,
  );
  const c = await measured(ctx, () => ctx.pusher.call<PhaseResult>(call.cmd, call.args, 1_800_000));
  const profile = await stop(Math.max(1, c.out.results.success), `${kind} loop`, 'usPerAckedPush');
  const after = await deviceStats(ctx);
  const r = c.out;
  const acked = Math.max(1, r.results.success);
  const cpu = perUnit(c, acked, 'AckedPush');
  log(
    `${kind} loop: ${r.ackedPerSec} acked/s, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, ` +
      `server ${cpu.serverCpuUsPerAckedPush} µs/push, server CPU ${c.cpuPercent.server}%`,
  );
  return {
    phase: {
      ...r,
      ...cpu,
      serverHeapUsedBytesAtEnd: c.s1.memory.heapUsed,
      serverAcksCounted: c.s1.counters.acks - c.s0.counters.acks,
      devicesReceivedAckedPushes: sum(after, (s) => s.acks) - sum(before, (s) => s.acks),
      cpuPercent: c.cpuPercent,
      gcAndLoopDelay: c.gcAndLoopDelay,
    },
    profile,
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
  const echoed = sum(c.out, (x) => x.echoed);
  const out = {
    loadAverage: q.loadAverage,
    heartbeats: sum(c.out, (x) => x.sent),
    echoed,
    ...perUnit(c, Math.max(1, echoed), 'Heartbeat'),
    perSec: round(echoed / (Math.max(...c.out.map((x) => x.ms)) / 1000)),
    cpuPercent: c.cpuPercent,
  };
  log(`floor: ${out.serverCpuUsPerHeartbeat} µs server CPU per device heartbeat round trip`);
  return out;
}

/** A NO_ACK broadcast to every held device: when the first and the last got it, server CPU per delivery. */
async function broadcastPhase(ctx: Ctx, n: number, profiling: boolean) {
  const label = `broadcast ${n}`;
  const content = message(`broadcast-${n}`, params.payloadBytes);
  await Promise.all(ctx.devices.map((d) => d.call('expectContent', { broadcast: content })));
  // Every process expects the devices it holds.
  const expected = (await deviceStats(ctx)).map((s) => s.held);
  await Promise.all(ctx.devices.map((d, i) => d.call('armBroadcast', { expect: expected[i] })));
  const allReceived = Promise.all(
    ctx.devices.map((d, i) => (expected[i] === 0 ? undefined : d.once('broadcastDone', 120_000))),
  );
  const stop = await profiler(ctx, profiling);
  log(`${label}: broadcast to ${n} devices (NO_ACK)`);
  const c = await measured(ctx, async () => {
    const reply = await ctx.pusher.call<{ sentAt: number; repliedAt: number; result: BroadcastResult }>(
      'broadcast',
      { content },
      120_000,
    );
    const timedOut = await Promise.race([
      allReceived.then(
        () => false,
        () => true,
      ),
      sleep(30_000).then(() => true),
    ]);
    return { reply, timedOut };
  });
  const { reply, timedOut } = c.out;
  const final = await Promise.all(ctx.devices.map((d) => d.call<BroadcastReceipt>('broadcastReceipt')));
  const delivered = sum(final, (r) => r.received);
  const profile = await stop(delivered, label, 'usPerDelivery');
  const ms = Math.max(...final.map((r) => r.lastAt)) - reply.sentAt;
  const { result, matched, sent, failed, reason } = reply.result;
  const perDelivery = round(c.serverUs / Math.max(1, delivered), 2);
  log(
    `${label}: ${delivered}/${n} delivered, last after ${ms} ms, reply after ${reply.repliedAt - reply.sentAt} ms, server ${perDelivery} µs/delivery`,
  );
  return {
    phase: {
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
    profile,
  };
}

const allSuccess = (p: { results: Record<string, number> }) =>
  p.results.failure === 0 && p.results.offline === 0 && p.results.timeout === 0;
const latency = (p: { latencyMs: { p50: number; p90: number; p99: number; max: number } }) => {
  const { p50, p90, p99, max } = p.latencyMs;
  return { p50, p90, p99, max };
};
/** A target line of the report. */
const target = (text: string, measured: number | undefined, met: boolean, extra = {}) => ({
  target: text,
  ...extra,
  measured: measured ?? null,
  met: measured !== undefined && met,
});

async function main(): Promise<number> {
  /** What the phases add as they go; the headline figures are put before it at the end. */
  const report: Record<string, unknown> = { params, machine: machine() };
  let out: Record<string, unknown> = {};
  const ctx = { held: 0 } as Ctx;
  try {
    log(`starting the server (${params.serverNodeOptions.join(' ')})`);
    ctx.server = await forkChild(scripts.nodeServer, 'server', { execArgv: params.serverNodeOptions });
    const maxConnections = Number(process.env.BENCH_PUSH_MAX_CONNECTIONS ?? 20_000);
    ctx.ready = await ctx.server.call<NodeReady>('start', { options: { maxConnections } }, 60_000);
    [ctx.pusher, ctx.devices] = await Promise.all([
      forkChild(scripts.pusher, 'pusher'),
      forkFleets(params.k, 'devices'),
    ]);
    ctx.procs = [
      { name: 'server', pid: ctx.server.child.pid!, server: true },
      { name: 'pusher', pid: ctx.pusher.child.pid! },
      ...ctx.devices.map((d, i) => ({ name: `devices ${i}`, pid: d.child.pid! })),
    ];
    const serverMaxFiles = ctx.ready.maxOpenFiles ?? undefined;
    (report.machine as Record<string, unknown>).serverMaxOpenFiles = serverMaxFiles ?? null;
    const unicastContent = message('unicast', params.payloadBytes);
    await Promise.all(
      ctx.devices.map((d) => d.call('expectContent', { unicast: unicastContent, every: params.verifyEvery })),
    );

    await quiet('ramp');
    report.ramp = await connectDevices(ctx, 0, params.n);
    const options: PusherOptions = {
      mode: 'sender',
      gateways: [{ host: '127.0.0.1', port: ctx.ready.gatewayPort }],
      timeoutMs: params.timeoutMs,
      routeCacheMs: 600_000,
      content: unicastContent,
    };
    await ctx.pusher.call('start', { options });
    log(`warm-up: one push to each of ${params.n} users`);
    const warmParams = { users, total: params.n, concurrency: Math.min(params.concurrency, 500) };
    const warm = await ctx.pusher.call<PhaseResult>('load', { params: warmParams }, 600_000);
    report.warmup = { sent: warm.sent, results: warm.results, seconds: warm.seconds, reasons: warm.reasons };
    const a = await stats(ctx);
    await sleep(2000);
    const b = await stats(ctx);
    const idleUs = b.cpu.user - a.cpu.user + b.cpu.system - a.cpu.system;
    report.serverIdleCpuPercent = round((100 * idleUs) / ((b.at - a.at) * 1000), 2);

    const closed = await phase('closed loop', () => unicastPhase(ctx, 'closed'));
    if (params.floorRounds > 0) report.floor = await floorPhase(ctx, params.floorRounds);
    const open =
      params.rate > 0 && params.durationSeconds > 0
        ? await phase('open loop', () => unicastPhase(ctx, 'open'))
        : undefined;
    const broadcastTo = (profiling: boolean) =>
      phase(`broadcast ${ctx.held}`, () => broadcastPhase(ctx, ctx.held, profiling));
    const bc1 = await broadcastTo(params.profile && params.broadcastN <= params.n);
    let bc2: Awaited<ReturnType<typeof broadcastTo>> | undefined;
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
        bc2 = await broadcastTo(params.profile);
      }
      if (report.broadcastLargeSkipped) log(`second broadcast skipped: ${report.broadcastLargeSkipped}`);
    }

    const counts = await deviceStats(ctx);
    const final = await stats(ctx);
    const [cl, ol, bc, big] = [closed.phase, open?.phase, bc1.phase, (bc2 ?? bc1).phase];
    const totals = ['lost', 'corrupt', 'verified', 'heartbeatsSent'] as const;
    const devices = {
      ...Object.fromEntries(totals.map((k) => [k, sum(counts, (c) => c[k])])),
      unexpected: addCounts(counts.map((c) => c.unexpected)),
      errorsAfterBound: addCounts(counts.map((c) => c.errorsAfterBound)),
    } as Record<(typeof totals)[number], number> &
      Record<'unexpected' | 'errorsAfterBound', Record<string, number>>;
    const profiles = [closed.profile, bc2?.profile ?? bc1.profile].filter((p) => p !== undefined);
    const at19k = { devices: big.devices };
    out = {
      bench: 'push',
      ok:
        [warm, cl, ...(ol ? [ol] : [])].every(allSuccess) &&
        bc.allDelivered &&
        (bc2 === undefined || bc2.phase.allDelivered) &&
        devices.lost === 0 &&
        devices.corrupt === 0,
      ackedPushesPerSec: cl.ackedPerSec,
      latencyMs: latency(cl),
      serverCpuUsPerAckedPush: cl.serverCpuUsPerAckedPush,
      results: cl.results,
      openLoopLatencyMs: ol && { rate: params.rate, ...latency(ol) },
      openLoopServerCpuUsPerAckedPush: ol?.serverCpuUsPerAckedPush,
      broadcastMsToFirstDelivery: bc.msToFirstDelivery,
      broadcastMsToLastDelivery: bc.msToLastDelivery,
      serverCpuUsPerBroadcastDelivery: bc.serverCpuUsPerDelivery,
      broadcastLargeMsToFirstDelivery: bc2?.phase.msToFirstDelivery,
      broadcastLargeMsToLastDelivery: bc2?.phase.msToLastDelivery,
      serverCpuUsPerBroadcastLargeDelivery: bc2?.phase.serverCpuUsPerDelivery,
      broadcastLargeSkipped: report.broadcastLargeSkipped,
      targets: {
        ackedPushesPerSec: target('>= 50000', cl.ackedPerSec, cl.ackedPerSec >= 50_000),
        serverCpuUsPerAckedPush: target(
          '<= 15',
          cl.serverCpuUsPerAckedPush,
          cl.serverCpuUsPerAckedPush <= 15,
        ),
        openLoopP99Ms: target(`<= 5 at ${params.rate}/s`, ol?.latencyMs.p99, (ol?.latencyMs.p99 ?? 0) <= 5),
        broadcastMsToLastDelivery: target(
          '<= 300 at 19000 devices',
          big.msToLastDelivery,
          big.devices >= 19_000 && big.msToLastDelivery <= 300,
          at19k,
        ),
        serverCpuUsPerBroadcastDelivery: target(
          '<= 12 at 19000 devices',
          big.serverCpuUsPerDelivery,
          big.devices >= 19_000 && big.serverCpuUsPerDelivery <= 12,
          at19k,
        ),
      },
      ...report,
      closedLoop: cl,
      openLoop: ol,
      broadcast: bc,
      broadcastLarge: bc2?.phase,
      devices,
      serverFinal: {
        connections: final.connections,
        bound: final.bound,
        acksPending: final.acksPending,
        rssBytes: final.memory.rss,
        heapUsedBytes: final.memory.heapUsed,
        gateway: final.gateway,
        counters: final.counters,
        closed: final.closed,
      },
      serverProfiles: profiles.length > 0 ? profiles : undefined,
    };
  } finally {
    for (const c of [ctx.pusher, ...(ctx.devices ?? [])]) await c?.stop();
    await ctx.server?.stop('stop', 30_000);
  }
  printReport(out);
  return out.ok ? 0 : 1;
}

runMain(main, log);
