// Push benchmark: how many acked pushes per second one mpush-ts node delivers, at what latency and
// server CPU per push, and how fast a broadcast reaches every device. Prints ONE JSON object on
// stdout; progress goes to stderr. Numbers only: tests never assert on them.
//
//   npx tsc -p tsconfig.json && node dist/bench/push/main.js [--flag value ...]
//
// Processes (all on this machine, forked with IPC):
//   server.ts    one MpushNode (device TCP, gateway, HTTP on 127.0.0.1, free ports; MPush's default
//                key; default heartbeat; maxConnections 20,000; handshake bucket 1,000,000/s; log warn)
//   devices.ts   K processes holding the N devices (full RSA handshake + BIND `user-<i>`, from source
//                addresses 127.0.0.<k+1>); AUTO_ACK pushes are ACKed at once (raw ACK, the push's
//                sessionId); broadcast receipts are timestamped with Date.now()
//   pusher.ts    one PushSender (the TS SDK; routes by GATEWAY_ROUTE_QUERY, route cache 10 min)
//
// Parameters (flag, or environment variable BENCH_<FLAG> with - as _, e.g. BENCH_N=2000):
//   --n 10000             devices for the unicast phases and the first broadcast
//   --m 200000            pushes in the closed-loop phase
//   --k 2                 device processes (2-4)
//   --concurrency 2000    closed loop: requests in flight
//   --rate 5000           open loop: pushes per second
//   --duration 10         open loop: seconds
//   --broadcast-n 19000   devices for the second broadcast: N is topped up to this many on the same
//                         server (0, or <= n, skips it; skipped with a note when the server's or a
//                         device process's open-file limit is too low: the server needs N + ~20
//                         files, `ulimit -n` 20000 here). The top-up devices have had no push before
//                         it, so this broadcast also creates their AES encrypt contexts, as a
//                         broadcast to freshly connected devices does. For every phase at 19,000
//                         devices run it as a separate invocation: --n 19000 --broadcast-n 0
//   --timeout 10000       PushSender request timeout, ms
//   --payload 100         push content bytes (a MPush-style JSON message)
//   --connect-concurrency 200   handshakes in flight per device process during the ramp
//   --verify-every 64     devices decrypt and compare 1 push in this many (and the first of each kind)
//   --floor-rounds 5      floor probe: rounds of one heartbeat per device echoed by the server (0 skips)
//   --profile             CPU-profile the server (inspector, 100 µs sampling) during the closed loop
//                         and the last broadcast; the report lists the top self-time functions
//   --server-node-options="--max-semi-space-size=16"   extra node options for the server process
//   --wait-for "dist/bench/connections/"   before each measured phase, wait (poll every 10 s, up
//                         to --wait-minutes 20) until `pgrep -f <pattern>` finds nothing, so another
//                         benchmark on the machine does not distort the figures ('' disables), and
//                         until the machine is at most --quiet-percent 15 busy over 2 s (0 disables);
//                         a phase during which other processes took more than that share of the
//                         machine is run again, up to --retries 2 times (disturbedRuns in the report)
//
// Phases: ramp (devices connect and bind) → warm-up (one AUTO_ACK push to each of the N users: JIT,
// and the PushSender's route cache is filled, so measured phases never wait on a route lookup) →
// closed loop → floor probe → open loop → broadcast to N → top-up to broadcast-n → broadcast to
// broadcast-n.
//
// Figures:
//   ackedPushesPerSec        closed loop: pushes with result success (= acked by the device) per
//                            second, `concurrency` requests in flight, random users: max throughput
//   latencyMs                closed loop, per request: PushSender.send called → result, ms
//   openLoop.latencyMs       the same at a fixed --rate for --duration (scheduled on a 1 ms timer;
//                            openLoop.scheduleLagMs says how late pushes left their slot)
//   serverCpuUsPerAckedPush  server process cpuUsage delta (user + system) over the closed loop /
//                            acked pushes: everything the node spends per push (gateway decode, AES,
//                            device write, ACK read, ack tracking, gateway reply, syscalls)
//   results                  closed loop success / failure / offline / timeout: all must be success
//   broadcast.msToLastDelivery   PushSender.broadcast called (Date.now() in the pusher) → the last
//                            device's receipt (Date.now() in the device processes; one clock)
//   broadcast.msToReply      → the node's reply (its task wrote to every device)
//   broadcast.serverCpuUsPerDelivery   server cpuUsage delta from just before the broadcast to all
//                            receipts reported / deliveries (includes the idle tail, see
//                            serverIdleCpuPercent)
//   cpuPercent               per process class over the phase (100 = one core) and machine share
//                            (/proc/stat): on a 2-core machine the pusher and devices compete with
//                            the server, so a saturated machine caps ackedPushesPerSec, not the server;
//                            otherProcessesPercentOfMachine: busy time not charged to the bench's
//                            processes (another job on the box when large: the figures are noisy)
//   gcAndLoopDelay           per process over the phase: GC time (by kind) and event-loop delay
//   floor.serverCpuUsPerHeartbeat   server CPU per device heartbeat echoed (one read + one write
//                            through Connection, almost no JS): the least a push can cost the server
//                            on its device side on this machine (user and system split)
//   loadAverage              os.loadavg() at the start of each measured phase
//   targets                  each figure against its target (met: true/false), as measured
// Exit status 1 when any push result is not success, a broadcast misses a device, a device saw a
// corrupt push, or a device connection was lost; 2 when the bench itself failed.

import { execFileSync, fork } from 'node:child_process';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BroadcastResult } from '../../src/client/push/index.js';
import type { BroadcastReceipt, ConnectParams, ConnectResult, DeviceCounts } from './devices.js';
import {
  type Cpu,
  type LoopStats,
  machineCpuShare,
  machineCpuTimes,
  maxOpenFiles,
  RpcClient,
  round,
  sleep,
} from './ipc.js';
import type { PhaseResult } from './pusher.js';
import type { ServerStats } from './server.js';

// ---- parameters -------------------------------------------------------------------------------------

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
  n: num('n', 10_000),
  m: num('m', 200_000),
  k: Math.min(8, Math.max(1, num('k', 2))),
  concurrency: Math.max(1, num('concurrency', 2000)),
  rate: num('rate', 5000),
  durationSeconds: num('duration', 10),
  broadcastN: num('broadcast-n', 19_000),
  timeoutMs: num('timeout', 10_000),
  payloadBytes: Math.max(40, num('payload', 100)),
  connectConcurrency: Math.max(1, num('connect-concurrency', 200)),
  verifyEvery: Math.max(1, num('verify-every', 64)),
  floorRounds: num('floor-rounds', 5),
  profile: bool('profile'),
  serverNodeOptions: (flag('server-node-options') ?? '').split(/\s+/).filter((o) => o !== ''),
  waitFor: flag('wait-for') ?? 'dist/bench/connections/',
  waitMinutes: num('wait-minutes', 20),
  quietPercent: num('quiet-percent', 15),
  retries: num('retries', 2),
};

const here = fileURLToPath(new URL('.', import.meta.url));
const log = (msg: string) =>
  process.stderr.write(`[bench/push ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

/** A MPush-style JSON message of exactly `bytes` bytes. */
function message(kind: string, bytes: number): string {
  const head = `{"msgType":2,"msgId":"bench-${kind}","content":"`;
  const tail = '"}';
  return head + 'x'.repeat(Math.max(0, bytes - head.length - tail.length)) + tail;
}
const unicastContent = message('unicast', params.payloadBytes);

// ---- processes --------------------------------------------------------------------------------------

const children: RpcClient[] = [];

function spawn(
  script: string,
  name: string,
  execArgv: string[] = [],
  env: Record<string, string> = {},
): RpcClient {
  const child = fork(join(here, script), [], {
    execArgv,
    stdio: ['ignore', 2, 2, 'ipc'],
    env: { ...process.env, ...env },
  });
  const rpc = new RpcClient(child, name);
  children.push(rpc);
  return rpc;
}

async function stopAll(server: RpcClient | undefined): Promise<void> {
  for (const c of children) {
    if (c === server || c.child.exitCode !== null) continue;
    await c.call('exit', {}, 10_000).catch(() => c.child.kill());
  }
  if (server && server.child.exitCode === null)
    await server.call('stop', {}, 30_000).catch(() => server.child.kill());
  await sleep(200);
  for (const c of children) if (c.child.exitCode === null) c.child.kill('SIGKILL');
}

function share(total: number, k: number, i: number): number {
  return Math.floor(total / k) + (i < total % k ? 1 : 0);
}

// ---- the machine ------------------------------------------------------------------------------------

/** What the machine looked like when a measured phase started. */
interface Quiet {
  waitedSeconds: number;
  loadAverage: number[];
  /** Machine busy percent over the 2 s before the phase (the bench's own processes are idle then). */
  machineBusyPercentBefore: number;
  otherBenchRunning: boolean;
}

function pgrep(pattern: string): string[] {
  if (!pattern) return [];
  try {
    return execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

/**
 * Waits (polling every 10 s, at most --wait-minutes) until no process matches --wait-for (the
 * connections benchmark) and the machine is quiet: at most --quiet-percent busy over 2 s, while the
 * bench's own processes idle. Another job on this 2-core box would otherwise distort every figure.
 */
async function waitQuiet(phase: string): Promise<Quiet> {
  const t0 = Date.now();
  for (;;) {
    const running = pgrep(params.waitFor);
    let busy = 0;
    if (running.length === 0) {
      const m0 = machineCpuTimes();
      await sleep(2000);
      busy = round(100 - (machineCpuShare(m0, machineCpuTimes()).idle ?? 100), 1);
    }
    const waited = (Date.now() - t0) / 1000;
    const quiet = running.length === 0 && (params.quietPercent <= 0 || busy <= params.quietPercent);
    if (quiet || waited >= params.waitMinutes * 60) {
      if (!quiet) log(`${phase}: machine still busy after ${round(waited)} s; measuring anyway`);
      return {
        waitedSeconds: round(waited),
        loadAverage: os.loadavg().map((x) => round(x, 2)),
        machineBusyPercentBefore: busy,
        otherBenchRunning: running.length > 0,
      };
    }
    log(
      running.length > 0
        ? `${phase}: waiting for "${params.waitFor}" (pids ${running.join(' ')}) to finish…`
        : `${phase}: machine ${busy}% busy before the phase (> ${params.quietPercent}%): waiting…`,
    );
    await sleep(10_000);
  }
}

/**
 * Runs a measured phase; when other processes took more than --quiet-percent of the machine during
 * it (another job started meanwhile), runs it again, up to --retries times. The report keeps the
 * last run and a line for each disturbed one.
 */
async function undisturbed<T extends { phase: { cpuPercent: { otherProcessesPercentOfMachine: number } } }>(
  label: string,
  run: () => Promise<T>,
): Promise<T & { disturbedRuns?: Array<Record<string, unknown>> }> {
  const disturbed: Array<Record<string, unknown>> = [];
  for (let attempt = 0; ; attempt++) {
    const r = await run();
    const other = r.phase.cpuPercent.otherProcessesPercentOfMachine;
    if (params.quietPercent <= 0 || other <= params.quietPercent || attempt >= params.retries) {
      return disturbed.length > 0 ? { ...r, disturbedRuns: disturbed } : r;
    }
    log(`${label}: other processes took ${other}% of the machine during the phase: running it again`);
    disturbed.push({ otherProcessesPercentOfMachine: other, ...headline(r.phase) });
  }
}

function headline(p: object): Record<string, unknown> {
  const keep = ['ackedPerSec', 'serverCpuUsPerAckedPush', 'msToLastDelivery', 'serverCpuUsPerDelivery'];
  const out: Record<string, unknown> = {};
  for (const k of keep) if (k in p) out[k] = (p as Record<string, unknown>)[k];
  const lat = (p as { latencyMs?: { p99: number } }).latencyMs;
  if (lat) out.p99Ms = lat.p99;
  return out;
}

/** Machine busy percent minus what the bench's processes used (`cores`: their total, 1 = one core). */
function otherCpu(machine: Record<string, number>, cores: number): number {
  const busy = 100 - (machine.idle ?? 100);
  return round(busy - (100 * cores) / os.cpus().length, 1);
}

function cpuUs(a: Cpu, b: Cpu): number {
  return b.user - a.user + b.system - a.system;
}

// ---- phases -----------------------------------------------------------------------------------------

interface Ctx {
  server: RpcClient;
  tcpPort: number;
  gatewayPort: number;
  publicKey: string;
  devices: RpcClient[];
  pusher: RpcClient;
  /** Global user indices held so far: [0, held). */
  held: number;
}

async function connectDevices(ctx: Ctx, from: number, to: number): Promise<Record<string, unknown>> {
  const total = to - from;
  log(`ramp: connecting devices ${from}..${to - 1} over ${ctx.devices.length} processes`);
  let start = from;
  const calls = ctx.devices.map((d, i) => {
    const count = share(total, ctx.devices.length, i);
    const p: ConnectParams = {
      host: '127.0.0.1',
      port: ctx.tcpPort,
      publicKey: ctx.publicKey,
      from: start,
      to: start + count,
      concurrency: params.connectConcurrency,
      localAddress: `127.0.0.${i + 1}`,
      maxAttempts: 3,
    };
    start += count;
    return d.call<ConnectResult>('connect', { params: p }, 600_000);
  });
  let done = false;
  const all = Promise.all(calls).finally(() => {
    done = true;
  });
  while (!done) {
    await Promise.race([sleep(2000), all.catch(() => {})]);
    if (done) break;
    const s = await ctx.server.call<ServerStats>('stats').catch(() => undefined);
    if (s) log(`ramp: server holds ${s.connections} connections, ${s.bound} bound`);
  }
  const results = await all;
  const s = await ctx.server.call<ServerStats>('stats');
  ctx.held = to;
  const errors: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
  const out = {
    target: total,
    bound: results.reduce((a, r) => a + r.bound, 0),
    failed: results.reduce((a, r) => a + r.failed, 0),
    seconds: round(Math.max(...results.map((r) => r.seconds)), 2),
    serverBound: s.bound,
    errors,
  };
  log(`ramp: ${out.bound}/${total} bound in ${out.seconds} s; server has ${s.bound} bound`);
  return out;
}

async function deviceCounts(ctx: Ctx): Promise<DeviceCounts[]> {
  return Promise.all(ctx.devices.map((d) => d.call<DeviceCounts>('counts')));
}

interface Window {
  s0: ServerStats;
  p0: Cpu;
  d0: Cpu[];
  m0: Record<string, number>;
  t0: number;
}

async function openWindow(ctx: Ctx): Promise<Window> {
  const [s0, p0, d0] = await Promise.all([
    ctx.server.call<ServerStats>('stats'),
    ctx.pusher.call<Cpu>('cpu'),
    Promise.all(ctx.devices.map((d) => d.call<Cpu>('cpu'))),
    ...[ctx.server, ctx.pusher, ...ctx.devices].map((c) => c.call('loop')),
  ]);
  return { s0, p0, d0, m0: machineCpuTimes(), t0: Date.now() };
}

async function closeWindow(ctx: Ctx, w: Window) {
  const [s1, p1, d1, serverLoop, pusherLoop, deviceLoops] = await Promise.all([
    ctx.server.call<ServerStats>('stats'),
    ctx.pusher.call<Cpu>('cpu'),
    Promise.all(ctx.devices.map((d) => d.call<Cpu>('cpu'))),
    ctx.server.call<LoopStats>('loop'),
    ctx.pusher.call<LoopStats>('loop'),
    Promise.all(ctx.devices.map((d) => d.call<LoopStats>('loop'))),
  ]);
  const m1 = machineCpuTimes();
  const wallUs = (Date.now() - w.t0) * 1000;
  const serverUs = cpuUs(w.s0.cpu, s1.cpu);
  let devicesUs = 0;
  for (let i = 0; i < d1.length; i++) devicesUs += cpuUs(w.d0[i]!, d1[i]!);
  const eluActive = s1.elu.active - w.s0.elu.active;
  const eluIdle = s1.elu.idle - w.s0.elu.idle;
  return {
    s1,
    serverUs,
    cpuPercent: {
      server: round((100 * serverUs) / wallUs, 1),
      serverUserShare: round(serverUs > 0 ? (s1.cpu.user - w.s0.cpu.user) / serverUs : 0, 2),
      serverEventLoopUtilization: round(eluActive / (eluActive + eluIdle || 1), 3),
      pusher: round((100 * cpuUs(w.p0, p1)) / wallUs, 1),
      devices: round((100 * devicesUs) / wallUs, 1),
      machine: machineCpuShare(w.m0, m1),
      // Machine busy time not charged to the bench's processes: something else ran (noisy figures),
      // plus the share of loopback TCP the kernel does outside process accounting.
      otherProcessesPercentOfMachine: otherCpu(
        machineCpuShare(w.m0, m1),
        (serverUs + cpuUs(w.p0, p1) + devicesUs) / wallUs,
      ),
    },
    gcAndLoopDelay: {
      server: serverLoop,
      pusher: pusherLoop,
      devicesWorst: {
        gcMs: Math.max(...deviceLoops.map((l) => l.gcMs)),
        gcMaxMs: Math.max(...deviceLoops.map((l) => l.gcMaxMs)),
        loopDelayP99Ms: Math.max(...deviceLoops.map((l) => l.loopDelayP99Ms)),
        loopDelayMaxMs: Math.max(...deviceLoops.map((l) => l.loopDelayMaxMs)),
      },
    },
  };
}

async function serverIdleCpuPercent(ctx: Ctx): Promise<number> {
  const a = await ctx.server.call<ServerStats>('stats');
  await sleep(2000);
  const b = await ctx.server.call<ServerStats>('stats');
  return round((100 * cpuUs(a.cpu, b.cpu)) / ((b.at - a.at) * 1000), 2);
}

function summarizePhase(p: PhaseResult) {
  return {
    sent: p.sent,
    results: p.results,
    ...(Object.keys(p.reasons).length > 0 ? { reasons: p.reasons } : {}),
    seconds: p.seconds,
    perSec: p.perSec,
    ackedPerSec: p.ackedPerSec,
    latencyMs: p.latencyMs,
    nodeReceivedToAckedMs: p.nodeReceivedToAckedMs,
    ...(p.scheduleLagMs ? { scheduleLagMs: p.scheduleLagMs } : {}),
  };
}

async function unicastPhase(ctx: Ctx, kind: 'closed' | 'open') {
  const quiet = await waitQuiet(kind === 'closed' ? 'closed loop' : 'open loop');
  const before = await deviceCounts(ctx);
  const w = await openWindow(ctx);
  if (params.profile && kind === 'closed') await ctx.server.call('profileStart');
  log(
    kind === 'closed'
      ? `closed loop: ${params.m} pushes, ${params.concurrency} in flight, ${params.n} users`
      : `open loop: ${params.rate}/s for ${params.durationSeconds} s`,
  );
  const r =
    kind === 'closed'
      ? await ctx.pusher.call<PhaseResult>(
          'closed',
          { users: params.n, total: params.m, concurrency: params.concurrency },
          1_800_000,
        )
      : await ctx.pusher.call<PhaseResult>(
          'open',
          { users: params.n, rate: params.rate, durationMs: params.durationSeconds * 1000 },
          1_800_000,
        );
  const prof =
    params.profile && kind === 'closed'
      ? await ctx.server.call<CpuProfile>('profileStop', {}, 120_000)
      : undefined;
  const c = await closeWindow(ctx, w);
  const after = await deviceCounts(ctx);
  let devAcked = 0;
  for (let i = 0; i < after.length; i++) devAcked += after[i]!.ackedPushes - before[i]!.ackedPushes;
  const acked = r.results.success;
  log(
    `${kind} loop: ${r.ackedPerSec} acked/s, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, ` +
      `server ${round(c.serverUs / Math.max(1, acked), 2)} µs/push, server CPU ${c.cpuPercent.server}%`,
  );
  return {
    phase: {
      ...quiet,
      ...summarizePhase(r),
      serverCpuUsPerAckedPush: round(c.serverUs / Math.max(1, acked), 2),
      serverUserUsPerAckedPush: round((c.s1.cpu.user - w.s0.cpu.user) / Math.max(1, acked), 2),
      serverSystemUsPerAckedPush: round((c.s1.cpu.system - w.s0.cpu.system) / Math.max(1, acked), 2),
      serverHeapUsedBytesAtEnd: c.s1.memory.heapUsed,
      serverAcksCounted: c.s1.counters.acks - w.s0.counters.acks,
      devicesReceivedAckedPushes: devAcked,
      cpuPercent: c.cpuPercent,
      gcAndLoopDelay: c.gcAndLoopDelay,
    },
    profile: prof ? summarizeProfile(prof, acked, 'closed loop', 'usPerAckedPush') : undefined,
  };
}

/**
 * The floor: every device sends a heartbeat byte and the server echoes it, `rounds` times. Per
 * heartbeat the server does one read and one (corked) write through its Connection, with almost no
 * JS: what a push costs the server at the least on the device side (a push is a write and an ACK
 * read per device, plus the gateway's share, AES and the ack tracking).
 */
async function floorPhase(ctx: Ctx, rounds: number) {
  const quiet = await waitQuiet('floor probe');
  const w = await openWindow(ctx);
  const r = await Promise.all(
    ctx.devices.map((d) =>
      d.call<{ sent: number; echoed: number; ms: number }>('heartbeatRounds', { rounds }, 120_000),
    ),
  );
  const c = await closeWindow(ctx, w);
  const sent = r.reduce((a, x) => a + x.sent, 0);
  const echoed = r.reduce((a, x) => a + x.echoed, 0);
  const user = c.s1.cpu.user - w.s0.cpu.user;
  const system = c.s1.cpu.system - w.s0.cpu.system;
  const out = {
    loadAverage: quiet.loadAverage,
    heartbeats: sent,
    echoed,
    serverCpuUsPerHeartbeat: round(c.serverUs / Math.max(1, echoed), 2),
    serverUserUsPerHeartbeat: round(user / Math.max(1, echoed), 2),
    serverSystemUsPerHeartbeat: round(system / Math.max(1, echoed), 2),
    perSec: round(echoed / (Math.max(...r.map((x) => x.ms)) / 1000)),
    cpuPercent: c.cpuPercent,
  };
  log(`floor: ${out.serverCpuUsPerHeartbeat} µs server CPU per device heartbeat round trip`);
  return out;
}

async function broadcastPhase(ctx: Ctx, n: number, label: string, profile: boolean) {
  const quiet = await waitQuiet(`broadcast to ${n}`);
  const content = message(`broadcast-${n}`, params.payloadBytes);
  await Promise.all(ctx.devices.map((d) => d.call('expectContent', { broadcast: content })));
  // Every process expects the devices it holds.
  const counts = await deviceCounts(ctx);
  const expected = counts.map((c) => c.bound);
  await Promise.all(ctx.devices.map((d, i) => d.call('armBroadcast', { expect: expected[i] })));
  const receipts = new Map<number, BroadcastReceipt>();
  const allReceived = new Promise<void>((resolve) => {
    ctx.devices.forEach((d, i) => {
      if (expected[i] === 0) receipts.set(i, { proc: i, expect: 0, received: 0, firstAt: 0, lastAt: 0 });
      const off = d.onEvent((m) => {
        if (m.event !== 'broadcastDone') return;
        off();
        receipts.set(i, m as unknown as BroadcastReceipt);
        if (receipts.size === ctx.devices.length) resolve();
      });
    });
    if (receipts.size === ctx.devices.length) resolve();
  });
  const w = await openWindow(ctx);
  if (profile) await ctx.server.call('profileStart');
  log(`${label}: broadcast to ${n} devices (NO_ACK)`);
  const reply = await ctx.pusher.call<{ sentAt: number; repliedAt: number; result: BroadcastResult }>(
    'broadcast',
    { content },
    120_000,
  );
  const timedOut = await Promise.race([allReceived.then(() => false), sleep(30_000).then(() => true)]);
  const prof = profile ? await ctx.server.call<CpuProfile>('profileStop', {}, 120_000) : undefined;
  const c = await closeWindow(ctx, w);
  const final = await Promise.all(ctx.devices.map((d) => d.call<BroadcastReceipt>('broadcastReceipt')));
  const delivered = final.reduce((a, r) => a + r.received, 0);
  const lastAt = Math.max(...final.map((r) => r.lastAt));
  const firstAt = Math.min(...final.filter((r) => r.received > 0).map((r) => r.firstAt));
  const ms = lastAt - reply.sentAt;
  log(
    `${label}: ${delivered}/${n} delivered, last after ${ms} ms, reply after ${reply.repliedAt - reply.sentAt} ms, ` +
      `server ${round(c.serverUs / Math.max(1, delivered), 2)} µs/delivery`,
  );
  return {
    phase: {
      ...quiet,
      devices: n,
      delivered,
      allDelivered: delivered === n && !timedOut,
      msToLastDelivery: ms,
      msToFirstDelivery: firstAt - reply.sentAt,
      msToReply: reply.repliedAt - reply.sentAt,
      serverCpuUsPerDelivery: round(c.serverUs / Math.max(1, delivered), 2),
      serverCpuMs: round(c.serverUs / 1000, 1),
      windowMs: Date.now() - w.t0,
      node: {
        result: reply.result.result,
        matched: reply.result.matched,
        sent: reply.result.sent,
        failed: reply.result.failed,
        ...(reply.result.reason ? { reason: reply.result.reason } : {}),
      },
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

// ---- CPU profile summary ----------------------------------------------------------------------------

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  samples: number[];
  timeDeltas: number[];
}

/** Self time per function (top 30), as a share of busy time and in µs per unit of work. */
function summarizeProfile(prof: CpuProfile, units: number, window: string, per: string) {
  const byNode = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  const byFile = new Map<string, number>();
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
    const file = f.url ? f.url.replace(/^.*\/dist\//, 'dist/').replace(/^node:/, 'node:') : f.functionName;
    const key = `${f.functionName || '(anonymous)'} ${f.url ? `${file}:${f.lineNumber + 1}` : ''}`.trim();
    self.set(key, (self.get(key) ?? 0) + dt);
    byFile.set(file, (byFile.get(file) ?? 0) + dt);
    busy += dt;
  }
  const u = Math.max(1, units);
  const rows = (m: Map<string, number>, n: number, label: string) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, us]) => ({
        [label]: k,
        ms: round(us / 1000),
        percentOfBusy: round((100 * us) / busy, 1),
        [per]: round(us / u, 2),
      }));
  return {
    window,
    busyMs: round(busy / 1000),
    idleMs: round(idle / 1000),
    [`busy_${per}`]: round(busy / u, 2),
    topSelf: rows(self, 30, 'fn'),
    byFile: rows(byFile, 15, 'file'),
  };
}

// ---- main -------------------------------------------------------------------------------------------

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
  let ok = true;
  try {
    log(`starting the server (${['', ...params.serverNodeOptions].join(' ')})`);
    server = spawn('server.js', 'server', params.serverNodeOptions);
    const ready = await server.once('ready', 60_000);
    const devices = Array.from({ length: params.k }, (_, i) =>
      spawn('devices.js', `devices ${i}`, [], { BENCH_PUSH_PROC: String(i) }),
    );
    const pusher = spawn('pusher.js', 'pusher');
    await Promise.all([...devices.map((d) => d.once('ready', 30_000)), pusher.once('ready', 30_000)]);
    const ctx: Ctx = {
      server,
      tcpPort: Number(ready.tcpPort),
      gatewayPort: Number(ready.gatewayPort),
      publicKey: String(ready.publicKey),
      devices,
      pusher,
      held: 0,
    };
    const serverMaxFiles = ready.maxOpenFiles === null ? undefined : Number(ready.maxOpenFiles);
    (report.machine as Record<string, unknown>).serverMaxOpenFiles = serverMaxFiles ?? null;
    await Promise.all(
      devices.map((d) => d.call('expectContent', { unicast: unicastContent, every: params.verifyEvery })),
    );

    await waitQuiet('ramp');
    report.ramp = await connectDevices(ctx, 0, params.n);

    await pusher.call('start', {
      host: '127.0.0.1',
      port: ctx.gatewayPort,
      timeoutMs: params.timeoutMs,
      routeCacheMs: 600_000,
      content: unicastContent,
    });
    log(`warm-up: one push to each of ${params.n} users`);
    const warm = await pusher.call<PhaseResult>(
      'warmup',
      { users: params.n, concurrency: Math.min(params.concurrency, 500) },
      600_000,
    );
    report.warmup = { sent: warm.sent, results: warm.results, seconds: warm.seconds, reasons: warm.reasons };
    report.serverIdleCpuPercent = await serverIdleCpuPercent(ctx);

    const closed = await undisturbed('closed loop', () => unicastPhase(ctx, 'closed'));
    if (params.floorRounds > 0) report.floor = await floorPhase(ctx, params.floorRounds);
    const open =
      params.rate > 0 && params.durationSeconds > 0
        ? await undisturbed('open loop', () => unicastPhase(ctx, 'open'))
        : undefined;
    const bc1 = await undisturbed(`broadcast ${ctx.held}`, () =>
      broadcastPhase(ctx, ctx.held, `broadcast ${ctx.held}`, params.profile && params.broadcastN <= params.n),
    );

    let bc2: (Awaited<ReturnType<typeof broadcastPhase>> & { disturbedRuns?: unknown[] }) | undefined;
    let bc2Skipped: string | undefined;
    if (params.broadcastN > params.n) {
      const perProc = Math.ceil(params.broadcastN / params.k);
      const mine = maxOpenFiles();
      if (serverMaxFiles !== undefined && serverMaxFiles < params.broadcastN + 64) {
        bc2Skipped = `server open-file limit ${serverMaxFiles} < ${params.broadcastN} devices + 64`;
      } else if (mine !== undefined && mine < perProc + 64) {
        bc2Skipped = `device process open-file limit ${mine} < ${perProc} + 64`;
      } else {
        report.rampTopUp = await connectDevices(ctx, params.n, params.broadcastN);
        await sleep(2000); // let the ramp's garbage settle
        bc2 = await undisturbed(`broadcast ${ctx.held}`, () =>
          broadcastPhase(ctx, ctx.held, `broadcast ${ctx.held}`, params.profile),
        );
      }
      if (bc2Skipped) log(`second broadcast skipped: ${bc2Skipped}`);
    }

    const counts = await deviceCounts(ctx);
    const final = await server.call<ServerStats>('stats');
    const lost = counts.reduce((a, c) => a + c.lost, 0);
    const corrupt = counts.reduce((a, c) => a + c.corrupt, 0);
    const verified = counts.reduce((a, c) => a + c.verified, 0);
    const unexpected: Record<string, number> = {};
    for (const c of counts)
      for (const [k, v] of Object.entries(c.unexpected)) unexpected[k] = (unexpected[k] ?? 0) + v;

    const cl = closed.phase;
    report.ackedPushesPerSec = cl.ackedPerSec;
    report.latencyMs = { p50: cl.latencyMs.p50, p99: cl.latencyMs.p99, max: cl.latencyMs.max };
    report.serverCpuUsPerAckedPush = cl.serverCpuUsPerAckedPush;
    report.results = cl.results;
    report.closedLoop = closed.disturbedRuns ? { ...cl, disturbedRuns: closed.disturbedRuns } : cl;
    if (open) {
      report.openLoopLatencyMs = {
        rate: params.rate,
        p50: open.phase.latencyMs.p50,
        p99: open.phase.latencyMs.p99,
        max: open.phase.latencyMs.max,
      };
      report.openLoop = open.disturbedRuns
        ? { ...open.phase, disturbedRuns: open.disturbedRuns }
        : open.phase;
    }
    report.broadcastMsToLastDelivery = bc1.phase.msToLastDelivery;
    report.serverCpuUsPerBroadcastDelivery = bc1.phase.serverCpuUsPerDelivery;
    report.broadcast = bc1.disturbedRuns ? { ...bc1.phase, disturbedRuns: bc1.disturbedRuns } : bc1.phase;
    if (bc2) {
      report.broadcastLargeMsToLastDelivery = bc2.phase.msToLastDelivery;
      report.serverCpuUsPerBroadcastLargeDelivery = bc2.phase.serverCpuUsPerDelivery;
      report.broadcastLarge = bc2.disturbedRuns
        ? { ...bc2.phase, disturbedRuns: bc2.disturbedRuns }
        : bc2.phase;
    }
    if (bc2Skipped) report.broadcastLargeSkipped = bc2Skipped;
    report.devices = {
      lost,
      corrupt,
      verified,
      unexpected,
      heartbeatsSent: counts.reduce((a, c) => a + c.heartbeatsSent, 0),
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
    const openLat = open?.phase.latencyMs;
    report.targets = {
      ackedPushesPerSec: { target: '>= 50000', measured: cl.ackedPerSec, met: cl.ackedPerSec >= 50_000 },
      serverCpuUsPerAckedPush: {
        target: '<= 15',
        measured: cl.serverCpuUsPerAckedPush,
        met: cl.serverCpuUsPerAckedPush <= 15,
      },
      openLoopP99Ms: {
        target: `<= 5 at ${params.rate}/s`,
        measured: openLat?.p99 ?? null,
        met: openLat !== undefined && openLat.p99 <= 5,
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

    const allSuccess = (p: { results: Record<string, number> }) =>
      p.results.failure === 0 && p.results.offline === 0 && p.results.timeout === 0;
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
    await stopAll(server);
  }
  // Headline figures first, details after.
  const head = [
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
  ];
  const ordered: Record<string, unknown> = {};
  for (const k of head) if (k in report) ordered[k] = report[k];
  for (const [k, v] of Object.entries(report)) if (!(k in ordered)) ordered[k] = v;
  process.stdout.write(`${JSON.stringify(ordered, null, 2)}\n`);
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(`failed: ${err instanceof Error ? err.stack : String(err)}`);
    for (const c of children) c.child.kill('SIGKILL');
    process.exit(2);
  },
);
