// Cluster benchmark: nodes on one Redis (real `mpush start` processes, keys under `bench<pid>:`,
// deleted at the end), pushes across nodes, worker processes. Scenarios, flags and figures:
// README.md, "Benchmarks". Exit status 1 when a part failed (the report has `error`).

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { benchFlags } from '../lib/args.js';
import {
  asStarted,
  fleetRun,
  fleetStats,
  forkFleets,
  runFleets,
  runMain,
  scripts,
  share,
  shareGroup,
} from '../lib/drive.js';
import { defaultKeys } from '../lib/keys.js';
import { cpuBetween, machine, type Proc, procChildren, procFds, procRss, sample } from '../lib/procstat.js';
import type { PhaseResult, PusherOptions } from '../lib/pusher.js';
import { commandStats, commandsBetween, deleteKeys } from '../lib/redis.js';
import { logger, printReport, round, sum } from '../lib/report.js';
import { children, forkChild, type RpcClient, sleep, stopChild } from '../lib/rpc.js';

const f = benchFlags(
  'cluster',
  {
    scenario: 'a,b,scale',
    redis: 'redis://127.0.0.1:6379',
    devices: 3000,
    concurrency: 128,
    httpConcurrency: 64,
    warmupMs: 2000,
    durationMs: 10_000,
    quietMs: 5000,
    routeCacheMs: 5000,
    contentBytes: 64,
    timeoutMs: 5000,
    connectConcurrency: 200,
    scaleWorkers: 2,
    scaleDevices: 38_000,
    scalePerProc: 19_000,
    scaleHoldMs: 10_000,
    scalePushMs: 5000,
    nodeProfDir: '',
  },
  {
    devices: 600,
    warmupMs: 500,
    durationMs: 2000,
    quietMs: 1000,
    scaleDevices: 2000,
    scalePerProc: 1000,
    scaleHoldMs: 1000,
    scalePushMs: 1000,
  },
);
const P = { ...f, scenario: f.scenario.split(',') };

const cliPath = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const runPrefix = `bench${process.pid}:`;
const log = logger('cluster');
const keys = defaultKeys();
const redis = new Redis(P.redis, { maxRetriesPerRequest: 3 });
const commands: string[] = [];
let redisPid = 0;

/** Ports lo … lo+n-1 all free on 127.0.0.1, below the ephemeral range. */
async function freePorts(n: number): Promise<number> {
  const free = (port: number) =>
    new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
  for (let tries = 0; tries < 200; tries++) {
    const base = 20_000 + Math.floor(Math.random() * 12_000);
    let ok = true;
    for (let i = 0; i < n && ok; i++) ok = await free(base + i);
    if (ok) return base;
  }
  throw new Error('no free port range');
}

/** Starts `mpush start` (with `--workers` when `workers` > 0) and waits for every node's start line. */
async function startNode(name: string, prefix: string, workers = 0) {
  const tcpPort = await freePorts(2 + Math.max(1, workers));
  const [httpPort, gatewayPort] = [tcpPort + 1, tcpPort + 2]; // worker i: gatewayPort + i
  const dataDir = mkdtempSync(join(os.tmpdir(), 'mpush-bench-cluster-'));
  const args = [
    ...['start', '--redis', P.redis, `--cluster.prefix=${prefix}`, '--port', String(tcpPort)],
    ...['--http-port', String(httpPort), '--gateway-port', String(gatewayPort), '--host', '127.0.0.1'],
    ...['--http.host=127.0.0.1', '--gateway.host=127.0.0.1', '--data-dir', dataDir],
    ...[`--security.privateKey=${keys.privateKey}`, '--log.level=warn', '--admin.port=0'],
    ...(workers > 0 ? ['--workers', String(workers)] : []),
  ];
  const shown = args.join(' ').replace(keys.privateKey, '<MPush default test key>');
  commands.push(`${name}: node ${cliPath} ${shown}`);
  // --cpu-prof is refused in NODE_OPTIONS; as a node flag, node:cluster workers inherit it too.
  // The flags `mpush start` would relaunch itself with, given up front: the node is this process.
  const nodeFlags = asStarted(P.nodeProfDir ? ['--cpu-prof', `--cpu-prof-dir=${P.nodeProfDir}`] : []);
  const child = spawn(process.execPath, [...nodeFlags, cliPath, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => rmSync(dataDir, { recursive: true, force: true }));
  const said = (line: string) => line.trim() && process.stderr.write(`  [${name}] ${line}\n`);
  createInterface({ input: child.stderr! }).on('line', said);
  const ids: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: not started within 30 s`)), 30_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = /^mpush-ts node (\S+) started/.exec(line);
      if (m && ids.push(m[1]!) >= Math.max(1, workers)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code, signal) =>
      reject(new Error(`${name} exited (${code ?? signal}) during start`)),
    );
  });
  await sleep(workers > 0 ? 200 : 0);
  const pid = child.pid!;
  const workerPids = workers > 0 ? procChildren(pid) : [];
  // Its processes as the CPU figures name them (--workers 1 would run the node in the primary).
  const procs: Proc[] = [pid, ...workerPids].map((p, i) => ({
    name: workers > 1 ? (i ? `worker ${i - 1}` : 'primary') : name,
    pid: p,
    server: true,
  }));
  return { name, child, pid, tcpPort, httpPort, gatewayPort, ids, workerPids, procs };
}

const stopProc = (child: ChildProcess) => stopChild(child, () => child.kill('SIGTERM'), 15_000);

const snap = (procs: Proc[]) => ({ s: sample(procs), cmds: commandStats(redis) });
type Snap = ReturnType<typeof snap>;

/** Between two snaps: Redis commands run (INFO, ours, left out), CPU per process, seconds. */
async function between(a: Snap, b: Snap) {
  const cmds = commandsBetween(await a.cmds, await b.cmds);
  const w = cpuBetween(a.s, b.s);
  const cpu: Record<string, number> = {
    ...w.percent,
    machineBusyPercent: w.machineBusyPercent,
    otherPercent: w.otherPercent,
  };
  return { cmds, w, cpu, seconds: (b.s.wall - a.s.wall) / 1000 };
}

/** A window with no pushes: the Redis background (registry refresh, …) and idle CPU. */
async function quietWindow(procs: Proc[]) {
  const a = snap(procs);
  await sleep(P.quietMs);
  const { cmds, w, cpu, seconds } = await between(a, snap(procs));
  return {
    seconds: round(seconds, 2),
    commandsPerSec: round(sum([...cmds.values()], (x) => x) / seconds, 2),
    byCommandPerSec: Object.fromEntries([...cmds].map(([k, v]) => [k, round(v / seconds, 2)])),
    cpu,
    otherProcesses: w.otherProcesses,
  };
}
type Background = Awaited<ReturnType<typeof quietWindow>>;

/** Where a deployment's phases push (`options` but mode and concurrency), the processes a window
 * reports, and the quiet background. */
type PhaseTarget = { pusher: RpcClient; procs: Proc[]; quiet: Background; options: Partial<PusherOptions> };
type PhaseReport = Awaited<ReturnType<typeof pushPhase>>;

/** One push phase: `warmupMs` of pushes, then a window of `durationMs` sampled at its edges. */
async function pushPhase(label: string, t: PhaseTarget, p: Deployment['phases'][number], users: string[]) {
  const { mode, durationMs = P.durationMs } = p;
  const concurrency = mode === 'sender' ? P.concurrency : P.httpConcurrency;
  const options = { ...t.options, mode, concurrency };
  log(`${label}: ${mode}, ${users.length} users, ${concurrency} in flight, ${durationMs} ms`);
  await t.pusher.call('start', { options });
  const edges: Snap[] = [];
  const off = t.pusher.onEvent((m) => void (m.event === 'window' && edges.push(snap(t.procs))));
  const load = { users, concurrency, warmupMs: P.warmupMs, durationMs };
  const rep = await t.pusher.call<PhaseResult>('load', { params: load }, P.warmupMs + durationMs + 60_000);
  off();
  if (edges.length !== 2) throw new Error(`${label}: window events missing`);
  const { cmds, w, cpu, seconds } = await between(edges[0]!, edges[1]!);
  const total = sum([...cmds.values()], (x) => x);
  const bgTotal = t.quiet.commandsPerSec * seconds;
  const pushes = Math.max(1, rep.acked);
  const perPushByCommand = Object.fromEntries(
    [...cmds]
      .map(([k, v]) => [k, round((v - (t.quiet.byCommandPerSec[k] ?? 0) * seconds) / pushes, 4)] as const)
      .filter(([, net]) => Math.abs(net) >= 0.0005),
  );
  const { ackedPerSec: pushesPerSec, latencyMs: l, results } = rep;
  log(`${label}: ${pushesPerSec} pushes/s, p50 ${l.p50} ms, p99 ${l.p99} ms, ${JSON.stringify(results)}`);
  return {
    ...rep,
    pushesPerSec,
    concurrency,
    redis: {
      commandsInWindow: total,
      backgroundSubtracted: round(bgTotal, 1),
      commandsPerPush: round(Math.max(0, total - bgTotal) / pushes, 4),
      perPushByCommand,
    },
    cpu,
    serverCpuPercent: w.serverPercent,
    serverCpuUsPerPush: round((w.serverPercent * 1e4) / Math.max(1, pushesPerSec), 1),
    otherProcesses: w.otherProcesses,
  };
}

async function registrySnapshot(prefix: string): Promise<Array<Record<string, unknown>>> {
  const ids = (await redis.smembers(`${prefix}{nodes}`)).sort();
  const vals = ids.length ? await redis.mget(ids.map((id) => `${prefix}{nodes}:${id}`)) : [];
  const nodes = vals.flatMap((v) => (v === null ? [] : [JSON.parse(v) as Record<string, unknown>]));
  return nodes.map((n) => ({ id: n.id, connections: n.connections, onlineUsers: n.onlineUsers }));
}

interface Deployment {
  label: string;
  /** Each node with its workers (0: none) and the prefix of its users; devices are shared evenly. */
  nodes: Array<{ name: string; workers?: number; users: string }>;
  devices: number;
  /** Devices per fleet process (default: all in one); fleet j connects from 127.0.2.`address + j`. */
  perProc?: number;
  address: number;
  /** How long the bound devices are held before the push phases (default 0). */
  holdMs?: number;
  /** Each phase pushes to the users of `of` (node indices; default every node), interleaved. */
  phases: Array<{ name: string; mode: 'sender' | 'http'; of?: number[]; durationMs?: number }>;
}

/** Starts the nodes, binds and holds the devices, measures the quiet background, runs the phases. */
async function deploy(d: Deployment) {
  const prefix = `${runPrefix}${d.label.replace(/\W/g, '')}:`;
  log(`${d.label}: starting ${d.nodes.map((n) => n.name).join(', ')} (prefix ${prefix})`);
  const nodes = await Promise.all(d.nodes.map((n) => startNode(n.name, prefix, n.workers)));
  const counts = nodes.map((_, i) => share(d.devices, nodes.length, i));
  const k = Math.ceil(d.devices / (d.perProc ?? d.devices));
  const fleets = await forkFleets(k, 'devices');
  const groups = (j: number) =>
    nodes.map((n, i) => shareGroup(n.tcpPort, d.nodes[i]!.users, counts[i]!, k, j));
  const redisProc = { name: 'redis-server', pid: redisPid };
  const fleetProcs = fleets.map((f, j) => ({ name: k > 1 ? `devices ${j}` : 'devices', pid: f.child.pid! }));
  // During the ramp no process is "the server": rampCpu says who bounds the ramp.
  const rampProcs = [
    ...nodes.flatMap((n) => n.procs.map((p) => ({ ...p, server: false }))),
    ...fleetProcs,
    redisProc,
  ];
  const r0 = snap(rampProcs);
  const o = { concurrency: P.connectConcurrency, publicKey: keys.publicKey, heartbeatSeconds: 60 };
  const run = (j: number) => fleetRun(j, groups(j), { ...o, localAddress: `127.0.2.${d.address + j}` });
  const summary = await runFleets(fleets, run);
  const ramp = await between(r0, snap(rampProcs));
  const bound = Math.max(1, summary.bound);
  const connect = {
    ...summary,
    handshakePlusBindP99MsWorstProcess: summary.latencyMsWorstProcess.p99,
    cpu: ramp.cpu,
    otherProcesses: ramp.w.otherProcesses,
    redisCommandsPerBind: Object.fromEntries([...ramp.cmds].map(([c, v]) => [c, round(v / bound, 3)])),
  };
  log(`${d.label}: ${connect.bound}/${connect.target} devices bound in ${connect.seconds} s`);
  await sleep(d.holdMs ?? 0);
  const heldAfterHold = sum(await fleetStats(fleets), (s) => s.held);
  const pusher = await forkChild(scripts.pusher, 'pusher');
  const pusherProc = { name: 'pusher', pid: pusher.child.pid! };
  const procs: Proc[] = [...nodes.flatMap((n) => n.procs), ...fleetProcs, pusherProc, redisProc];
  const quiet = await quietWindow(procs);
  const registry = await registrySnapshot(prefix);
  const workerProcesses = nodes.flatMap((n) =>
    n.workerPids.map((pid) => ({ node: n.name, pid, rssBytes: procRss(pid), openFiles: procFds(pid) })),
  );
  const options = {
    gateways: [{ host: '127.0.0.1', port: nodes[0]!.gatewayPort }],
    httpUrl: `http://127.0.0.1:${nodes[0]!.httpPort}`,
    routeCacheMs: P.routeCacheMs,
    timeoutMs: P.timeoutMs,
    content: 'x'.repeat(P.contentBytes),
  };
  const target = { pusher, procs, quiet, options };
  const phases: Record<string, PhaseReport> = {};
  for (const p of d.phases) {
    const lists = (p.of ?? nodes.map((_, i) => i)).map((i) =>
      Array.from({ length: counts[i]! }, (_, u) => `${d.nodes[i]!.users}${u}`),
    );
    // Interleaved: a, b, c, a, b, c, …
    const users = Array.from({ length: Math.max(...lists.map((l) => l.length)) }, (_, u) =>
      lists.flatMap((l) => (u < l.length ? [l[u]!] : [])),
    ).flat();
    phases[p.name] = await pushPhase(`${d.label} ${p.name}`, target, p, users);
  }
  const final = await fleetStats(fleets);
  await Promise.all(fleets.map((f) => f.call('drop')));
  await Promise.all([...fleets.map((f) => f.stop()), pusher.stop()]);
  await Promise.all(nodes.map((n) => stopProc(n.child)));
  return {
    nodes: nodes.map(({ name, ids, pid, workerPids }, i) => ({
      name,
      ids,
      pid,
      workerPids,
      devices: counts[i],
    })),
    connect,
    heldAfterHold,
    heldAtEnd: sum(final, (s) => s.held),
    lost: sum(final, (s) => s.lost),
    registry,
    onlineUsersInRegistry: sum(registry, (n) => Number(n.onlineUsers ?? 0)),
    workerProcesses,
    quiet,
    phases,
  };
}

const ratio = (x: number, y: number) => round(x / Math.max(1, y), 3);

/** One node holding every device: scenario a's reference and scenario b's `--workers 1` (the same node). */
let singleNode: ReturnType<typeof deploy> | undefined;
const single = () =>
  (singleNode ??= deploy({
    label: 'single',
    nodes: [{ name: 'node S', users: 'uS-' }],
    devices: P.devices,
    address: 1,
    phases: [
      { name: 'senderDirect', mode: 'sender' },
      { name: 'http', mode: 'http' },
    ],
  }));

async function scenarioA(): Promise<Record<string, unknown>> {
  const c = await deploy({
    label: 'a/cluster',
    nodes: ['A', 'B', 'C'].map((n) => ({ name: `node ${n}`, users: `u${n}-` })),
    devices: P.devices,
    address: 1,
    phases: [
      { name: 'senderDirect', mode: 'sender' },
      { name: 'httpCrossNode', mode: 'http', of: [1, 2] },
      { name: 'httpSameNode', mode: 'http', of: [0] },
    ],
  });
  const s = await single();
  const all = {
    clusterSenderDirect: c.phases.senderDirect!,
    singleNodeSender: s.phases.senderDirect!,
    clusterHttpCrossNode: c.phases.httpCrossNode!,
    clusterHttpSameNode: c.phases.httpSameNode!,
    singleNodeHttp: s.phases.http!,
  };
  const each = (f: (p: PhaseReport) => number) =>
    Object.fromEntries(Object.entries(all).map(([k, p]) => [k, f(p)]));
  const { clusterSenderDirect: cs, singleNodeSender: ss, clusterHttpCrossNode: ch, singleNodeHttp: sh } = all;
  return {
    figures: {
      clusterVsSingleNode: ratio(cs.pushesPerSec, ss.pushesPerSec),
      clusterVsSingleNodeTarget: 0.6,
      httpCrossNodeVsSingleNodeHttp: ratio(ch.pushesPerSec, sh.pushesPerSec),
      singleNodeHttpPushesPerSec: sh.pushesPerSec,
      singleNodeHttpServerCpuUsPerPush: sh.serverCpuUsPerPush,
      pushesPerSec: each((p) => p.pushesPerSec),
      serverCpuUsPerPush: each((p) => p.serverCpuUsPerPush),
      redisCommandsPerPush: each((p) => p.redis.commandsPerPush),
      redisCommandsPerPushTarget: '≤ 2 round trips per push once routes are cached (commands ≥ round trips)',
    },
    cluster: c,
  };
}

/** `--workers 2` against the single node (`--workers 1` runs the node in the primary: the same node). */
async function scenarioB(): Promise<Record<string, unknown>> {
  const w2 = await deploy({
    label: 'b/workers2',
    nodes: [{ name: 'workers2', workers: 2, users: 'w2-' }],
    devices: P.devices,
    address: 2,
    phases: [{ name: 'sender', mode: 'sender' }],
  });
  const [s1, s2] = [(await single()).phases.senderDirect!, w2.phases.sender!];
  return {
    figures: {
      workers1PushesPerSec: s1.pushesPerSec,
      workers2PushesPerSec: s2.pushesPerSec,
      ratio: ratio(s2.pushesPerSec, s1.pushesPerSec),
      target: 1.6,
      workers1ServerCpuUsPerPush: s1.serverCpuUsPerPush,
      workers2ServerCpuUsPerPush: s2.serverCpuUsPerPush,
      machineBusyPercent: { workers1: s1.cpu.machineBusyPercent, workers2: s2.cpu.machineBusyPercent },
      note: 'workers1 is the single node (singleNode). One machine with 2 cores: the device process, the pusher and redis-server run on the same cores as the workers (phases.sender.cpu: percent of one core per process)',
    },
    workers2: w2,
  };
}

/** Many bound devices across workers: held for a while, then a short push pass. */
async function scale(): Promise<Record<string, unknown>> {
  const [W, N] = [P.scaleWorkers, P.scaleDevices];
  log(`scale: ${N} devices over ${W} workers (${Math.ceil(N / W)} each)`);
  const r = await deploy({
    label: `scale/workers${W}`,
    nodes: [{ name: `scale workers${W}`, workers: W, users: 'x-' }],
    devices: N,
    perProc: P.scalePerProc,
    address: 10,
    holdMs: P.scaleHoldMs,
    phases: P.scalePushMs > 0 ? [{ name: 'sender', mode: 'sender', durationMs: P.scalePushMs }] : [],
  });
  return {
    workers: W,
    devicesTarget: N,
    bound: r.connect.bound,
    bindsPerSec: r.connect.bindsPerSec,
    pushesPerSec: r.phases.sender?.pushesPerSec,
    ...r,
  };
}

const report: Record<string, unknown> = {
  bench: 'cluster',
  startedAt: new Date().toISOString(),
  machine: machine(),
  params: P,
  commands,
};

let finished: Promise<void> | undefined;
/** Stops every child, deletes this run's keys, prints the report (once). */
function finish(): Promise<void> {
  finished ??= (async () => {
    for (const c of [...children]) await stopProc(c);
    Object.assign(report, {
      redisKeysDeleted: await deleteKeys(redis, runPrefix),
      redisPrefix: runPrefix,
      finishedAt: new Date().toISOString(),
    });
    await redis.quit();
    printReport(report);
  })();
  return finished;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    log(`${sig}: stopping children, deleting keys`);
    report.error = `interrupted by ${sig}`;
    finish().finally(() => process.exit(1));
  });
}

/** By `--scenario` name; each reports under its function's name. */
const scenarios = { a: scenarioA, b: scenarioB, scale };

async function main(): Promise<number> {
  const info = await redis.info('server');
  redisPid = Number(/process_id:(\d+)/.exec(info)?.[1] ?? 0);
  (report.machine as Record<string, unknown>).redis = /redis_version:(\S+)/.exec(info)?.[1];
  try {
    for (const [name, run] of Object.entries(scenarios))
      if (P.scenario.includes(name)) report[run.name] = await run();
    if (singleNode) report.singleNode = await singleNode;
  } catch (err) {
    report.error = (err as Error).stack ?? String(err);
    log(`failed: ${(err as Error).message}`);
  }
  await finish();
  return report.error ? 1 : 0;
}

runMain(main, log);
