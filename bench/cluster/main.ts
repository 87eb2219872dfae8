// Cluster benchmark: mpush-ts nodes on one Redis, pushes across nodes, and worker processes. Flags,
// scenarios and figures: README.md, "Benchmarks" (`--help` lists the flags).
//
// Every node is a real `mpush start` process (the exact lines are in the report, `commands`), with
// its keys under `bench<pid>:` in Redis, deleted at the end (`redisKeysDeleted`). Devices run in
// fleet processes (bench/lib/fleet.ts: full RSA/AES handshake + BIND, AUTO_ACK pushes acked on
// receipt), pushes come from a pusher process (bench/lib/pusher.ts). Scenario a: three nodes vs one;
// b: `--workers 1` vs `--workers 2`; scale: many bound devices across workers. Exit status 1 when a
// part failed (the report then has `error`).

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { parseFlags } from '../lib/args.js';
import { scripts } from '../lib/drive.js';
import type { DeviceGroup, FleetResult, FleetRun, FleetStats } from '../lib/fleet.js';
import { defaultKeys } from '../lib/keys.js';
import {
  counterDelta,
  cpuBetween,
  maxOpenFiles,
  type Proc,
  procChildren,
  procFds,
  procRss,
  type Sample,
  sample,
} from '../lib/procstat.js';
import type { LoadParams, PhaseResult, PusherOptions } from '../lib/pusher.js';
import { otherBenches, untilUndisturbed, waitQuiet } from '../lib/quiet.js';
import { logger, printReport, round, sum } from '../lib/report.js';
import { children, forkChild, type RpcClient, sleep } from '../lib/rpc.js';

const P = (() => {
  const f = parseFlags(
    {
      scenario: 'a,b,scale',
      redis: 'redis://127.0.0.1:6379',
      devices: 3000,
      concurrency: 128,
      httpConcurrency: 64,
      warmupMs: 2000,
      durationMs: 10_000,
      quietMs: 5000,
      routeSource: 'gateway',
      routeCacheMs: 5000,
      contentBytes: 64,
      timeoutMs: 5000,
      connectConcurrency: 200,
      scaleWorkers: 2,
      scaleDevices: 38_000,
      scalePerProc: 19_000,
      scaleHoldMs: 10_000,
      scalePushMs: 5000,
      waitIdle: true,
      maxAttempts: 3,
      maxOtherPercent: 20,
      nodeProfDir: '',
    },
    {
      env: 'BENCH_CLUSTER_',
      quick: {
        devices: 600,
        warmupMs: 500,
        durationMs: 2000,
        quietMs: 1000,
        scaleDevices: 2000,
        scalePerProc: 1000,
        scaleHoldMs: 1000,
        scalePushMs: 1000,
        waitIdle: false,
        maxAttempts: 1,
      },
    },
  );
  if (f.routeSource !== 'gateway' && f.routeSource !== 'redis')
    throw new Error(`--route-source must be gateway or redis, got ${f.routeSource}`);
  return { ...f, scenario: f.scenario.split(','), routeSource: f.routeSource as 'gateway' | 'redis' };
})();

const cliPath = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const runPrefix = `bench${process.pid}:`;
const log = logger('cluster');
const keys = defaultKeys();
const loadAvg = () => os.loadavg().map((x) => round(x, 2));

// ---- nodes: `mpush start` processes ------------------------------------------------------------

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

interface NodeProc {
  name: string;
  child: ChildProcess;
  pid: number;
  tcpPort: number;
  httpPort: number;
  gatewayPort: number;
  ids: string[];
}

const commands: string[] = [];

async function startNode(name: string, prefix: string, workers = 0): Promise<NodeProc> {
  const tcpPort = await freePorts(2 + Math.max(1, workers));
  const [httpPort, gatewayPort] = [tcpPort + 1, tcpPort + 2]; // worker i: gatewayPort + i
  const dataDir = mkdtempSync(join(os.tmpdir(), 'mpush-bench-cluster-'));
  const args = [
    ...['start', '--redis', P.redis, `--cluster.prefix=${prefix}`, '--port', String(tcpPort)],
    ...['--http-port', String(httpPort), '--gateway-port', String(gatewayPort), '--host', '127.0.0.1'],
    ...['--http.host=127.0.0.1', '--gateway.host=127.0.0.1', '--data-dir', dataDir],
    ...[`--security.privateKey=${keys.privateKey}`, '--log.level=warn'],
    ...(workers > 0 ? ['--workers', String(workers)] : []),
  ];
  commands.push(
    `${name}: node ${cliPath} ${args.join(' ')}`.replace(keys.privateKey, '<MPush default test key>'),
  );
  // --cpu-prof is refused in NODE_OPTIONS; as a node flag, node:cluster workers inherit it too.
  const nodeFlags = P.nodeProfDir ? ['--cpu-prof', `--cpu-prof-dir=${P.nodeProfDir}`] : [];
  const child = spawn(process.execPath, [...nodeFlags, cliPath, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => rmSync(dataDir, { recursive: true, force: true }));
  child.stderr!.on('data', (d: Buffer) => {
    for (const line of d.toString().split('\n'))
      if (line.trim()) process.stderr.write(`  [${name}] ${line}\n`);
  });
  const ids: string[] = [];
  await new Promise<void>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${name}: not started within 30 s`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const line of lines) {
        const m = /^mpush-ts node (\S+) started/.exec(line);
        if (m) ids.push(m[1]!);
      }
      if (ids.length >= Math.max(1, workers)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) during start`));
    });
  });
  return { name, child, pid: child.pid!, tcpPort, httpPort, gatewayPort, ids };
}

async function stopProc(child: ChildProcess, name: string): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => {
    log(`${name}: no exit 15 s after SIGTERM; SIGKILL`);
    child.kill('SIGKILL');
  }, 15_000);
  await exited;
  clearTimeout(t);
}

// ---- Redis and sampling -------------------------------------------------------------------------

const redis = new Redis(P.redis, { maxRetriesPerRequest: 3 });
let redisPid = 0;

async function commandStats(): Promise<Map<string, number>> {
  const text = await redis.info('commandstats');
  return new Map([...text.matchAll(/^cmdstat_(\S+?):calls=(\d+)/gm)].map((m) => [m[1]!, Number(m[2])]));
}

/** Commands run between two INFO samples, without INFO itself (ours). */
function statsDelta(a: Map<string, number>, b: Map<string, number>): Map<string, number> {
  const d = new Map<string, number>();
  for (const [k, v] of b) if (k !== 'info' && v - (a.get(k) ?? 0) > 0) d.set(k, v - (a.get(k) ?? 0));
  return d;
}

/** Processes and Redis at one instant. */
const snap = (procs: Proc[]) => ({ s: sample(procs), cmds: commandStats() });
type Snap = ReturnType<typeof snap>;

/** Per process percent of one core, the machine's busy percent, and what went to others. */
function cpuReport(a: Sample, b: Sample) {
  const w = cpuBetween(a, b);
  const { machineBusyPercent, otherPercent } = w;
  const cpu: Record<string, number> = { ...w.percent, machineBusyPercent, otherPercent };
  return { w, cpu };
}

/** A window with no pushes: the Redis background (registry refresh, …) and idle CPU. */
async function quietWindow(procs: Proc[]) {
  const a = snap(procs);
  await sleep(P.quietMs);
  const b = snap(procs);
  const d = statsDelta(await a.cmds, await b.cmds);
  const seconds = (b.s.wall - a.s.wall) / 1000;
  const { w, cpu } = cpuReport(a.s, b.s);
  return {
    seconds: round(seconds, 2),
    commandsPerSec: round(sum([...d.values()], (x) => x) / seconds, 2),
    byCommandPerSec: Object.fromEntries([...d].map(([k, v]) => [k, round(v / seconds, 2)])),
    cpu,
    otherProcesses: w.otherProcesses,
  };
}

type Background = Awaited<ReturnType<typeof quietWindow>>;

let waitedTotalSec = 0;
const benchPattern = 'dist/bench/(connections|push)/';
async function waitForIdleMachine(label: string): Promise<void> {
  if (!P.waitIdle) return;
  const q = await waitQuiet(label, { pattern: benchPattern, maxMinutes: 25, quietPercent: 0 }, log);
  waitedTotalSec += q.waitedSeconds;
}

// ---- phases -------------------------------------------------------------------------------------

type PhaseReport = Awaited<ReturnType<typeof pushPhaseOnce>>;

type PhaseInput = Pick<PusherOptions, 'mode' | 'gateways' | 'prefix' | 'httpUrl'> &
  Pick<LoadParams, 'users' | 'concurrency'> & { durationMs?: number };

/**
 * One push phase, run again (up to --max-attempts) when something else disturbed it: another
 * benchmark running at either edge of the window, or more than --max-other-percent of a core busy
 * outside this bench's processes. The last attempt is reported, the disturbed ones listed.
 */
async function pushPhase(label: string, pusher: RpcClient, input: PhaseInput, procs: Proc[], bg: Background) {
  const r = await untilUndisturbed(
    label,
    P.maxAttempts,
    () => pushPhaseOnce(label, pusher, input, procs, bg),
    (x) =>
      !x.otherBenchRunning && x.cpu.otherPercent! <= P.maxOtherPercent
        ? undefined
        : {
            pushesPerSec: x.pushesPerSec,
            otherBenchRunning: x.otherBenchRunning,
            otherPercent: x.cpu.otherPercent,
            otherProcesses: x.otherProcesses,
          },
    log,
  );
  return { ...r.last, attempt: r.attempt, disturbedAttempts: r.disturbedRuns };
}

async function pushPhaseOnce(
  label: string,
  pusher: RpcClient,
  input: PhaseInput,
  procs: Proc[],
  bg: Background,
) {
  await waitForIdleMachine(label);
  const la = loadAvg();
  const durationMs = input.durationMs ?? P.durationMs;
  log(
    `${label}: ${input.mode}, ${input.users.length} users, ${input.concurrency} in flight, ${durationMs} ms`,
  );
  const options: PusherOptions = {
    mode: input.mode,
    gateways: input.gateways,
    routeSource: P.routeSource,
    redis: P.redis,
    prefix: input.prefix,
    routeCacheMs: P.routeCacheMs,
    timeoutMs: P.timeoutMs,
    httpUrl: input.httpUrl,
    concurrency: input.concurrency,
    content: 'x'.repeat(P.contentBytes),
  };
  await pusher.call('start', { options });
  let s0: Snap | undefined;
  let s1: Snap | undefined;
  let otherBench = false;
  const off = pusher.onEvent((m) => {
    if (m.event !== 'window') return;
    if (m.edge === 'start') s0 = snap(procs);
    else s1 = snap(procs);
    if (otherBenches(benchPattern).length > 0) otherBench = true;
  });
  const load: LoadParams = {
    users: input.users,
    concurrency: input.concurrency,
    warmupMs: P.warmupMs,
    durationMs,
  };
  const rep = await pusher.call<PhaseResult>('load', { params: load }, P.warmupMs + durationMs + 60_000);
  off();
  if (!s0 || !s1) throw new Error(`${label}: window events missing`);
  const d = statsDelta(await s0.cmds, await s1.cmds);
  const seconds = (s1.s.wall - s0.s.wall) / 1000;
  const total = sum([...d.values()], (x) => x);
  const bgTotal = bg.commandsPerSec * seconds;
  const pushes = Math.max(1, rep.acked);
  const perPushByCommand: Record<string, number> = {};
  for (const [k, v] of d) {
    const net = (v - (bg.byCommandPerSec[k] ?? 0) * seconds) / pushes;
    if (Math.abs(net) >= 0.0005) perPushByCommand[k] = round(net, 4);
  }
  const { w, cpu } = cpuReport(s0.s, s1.s);
  log(
    `${label}: ${rep.pushesPerSec} pushes/s, p50 ${rep.latencyMs.p50} ms, p99 ${rep.latencyMs.p99} ms, ${JSON.stringify(rep.results)}`,
  );
  return {
    ...rep,
    concurrency: input.concurrency,
    loadAvg: la,
    otherBenchRunning: otherBench,
    redis: {
      commandsInWindow: total,
      backgroundSubtracted: round(bgTotal, 1),
      commandsPerPush: round(Math.max(0, total - bgTotal) / pushes, 4),
      perPushByCommand,
    },
    cpu,
    cpuSystem: w.systemPercent,
    serverCpuPercent: w.serverPercent,
    pushesPerServerCoreSec: Math.round(rep.pushesPerSec / Math.max(0.01, w.serverPercent / 100)),
    otherProcesses: w.otherProcesses,
  };
}

async function registrySnapshot(prefix: string): Promise<Array<Record<string, unknown>>> {
  const ids = (await redis.smembers(`${prefix}{nodes}`)).sort();
  if (!ids.length) return [];
  const vals = await redis.mget(ids.map((id) => `${prefix}{nodes}:${id}`));
  return vals
    .filter((v): v is string => v !== null)
    .map((v) => {
      const n = JSON.parse(v) as Record<string, unknown>;
      return { id: n.id, connections: n.connections, onlineUsers: n.onlineUsers };
    });
}

function interleave(lists: string[][]): string[] {
  const out: string[] = [];
  const longest = Math.max(0, ...lists.map((l) => l.length));
  for (let i = 0; i < longest; i++) for (const l of lists) if (i < l.length) out.push(l[i]!);
  return out;
}

const userList = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
const fleet = (name: string) => forkChild(scripts.fleet, name);

const connectDevices = (devices: RpcClient, groups: DeviceGroup[], address: string, proc = 0) =>
  devices.call<FleetResult>(
    'run',
    {
      params: {
        mode: 'bind',
        groups,
        localAddresses: [address],
        concurrency: P.connectConcurrency,
        proc,
        publicKey: keys.publicKey,
        maxAttempts: 3,
        // Idle devices send a heartbeat now and then, so a long hold never reaches the read timeout.
        heartbeatSeconds: 60,
      } satisfies FleetRun,
    },
    600_000,
  );

const slimConnect = (r: FleetResult) => ({
  target: r.target,
  bound: r.bound,
  failed: r.failed,
  attempts: r.attempts,
  seconds: round(r.seconds, 2),
  bindsPerSec: Math.round(r.bound / r.seconds),
  errors: r.errors,
  handshakePlusBindLatencyMs: r.latencyMs.total,
});

const fleetStats = (d: RpcClient) => d.call<FleetStats>('stats');

/**
 * Devices on `servers` (their processes named for the CPU figures), bound as `groups` from one
 * source address, a pusher, and the quiet background measured: ready for push phases at the gateway
 * (and HTTP port) of `entry`.
 */
async function deploy(
  label: string,
  prefix: string,
  entry: NodeProc,
  servers: Proc[],
  groups: DeviceGroup[],
  address: string,
) {
  const devices = await fleet('devices');
  const connect = await connectDevices(devices, groups, address);
  log(`${label}: ${connect.bound}/${connect.target} devices bound in ${round(connect.seconds, 1)} s`);
  const pusher = await forkChild(scripts.pusher, 'pusher');
  const procs: Proc[] = [
    ...servers,
    { name: 'devices', pid: devices.child.pid! },
    { name: 'pusher', pid: pusher.child.pid! },
    { name: 'redis-server', pid: redisPid },
  ];
  await waitForIdleMachine(`${label} quiet`);
  const quiet = await quietWindow(procs);
  const registry = await registrySnapshot(prefix);
  const gateways = [{ host: '127.0.0.1', port: entry.gatewayPort }];
  const httpUrl = `http://127.0.0.1:${entry.httpPort}`;
  return {
    connect: slimConnect(connect),
    registry,
    quiet,
    phase: (name: string, mode: 'sender' | 'http', users: string[]) =>
      pushPhase(
        `${label} ${name}`,
        pusher,
        {
          mode,
          gateways,
          prefix,
          httpUrl,
          users,
          concurrency: mode === 'sender' ? P.concurrency : P.httpConcurrency,
        },
        procs,
        quiet,
      ),
    /** Counts of the devices, then everything reset and stopped. */
    async done(nodes: NodeProc[]) {
      const deviceProcess = await fleetStats(devices);
      await finishFleet([devices], pusher);
      await Promise.all(nodes.map((n) => stopProc(n.child, n.name)));
      return deviceProcess;
    },
  };
}

async function finishFleet(devices: RpcClient[], pusher: RpcClient | undefined) {
  await Promise.all(devices.map((d) => d.call('drop')));
  await Promise.all([...devices.map((d) => d.stop()), pusher?.stop()]);
}

const serverProc = (n: NodeProc, name = n.name): Proc => ({ name, pid: n.pid, server: true });

// ---- scenario a: three nodes vs one ---------------------------------------------------------------

async function scenarioA(): Promise<Record<string, unknown>> {
  const D = P.devices;
  const names = ['A', 'B', 'C'];
  const share = names.map((_, i) => Math.floor(D / 3) + (i < D % 3 ? 1 : 0));
  await waitForIdleMachine('a/cluster start');
  const prefix = `${runPrefix}a:`;
  log(`scenario a: starting nodes A, B, C (prefix ${prefix})`);
  const nodes = await Promise.all(names.map((n) => startNode(`node ${n}`, prefix)));
  const groups = nodes.map((n, i) => ({
    host: '127.0.0.1',
    port: n.tcpPort,
    count: share[i]!,
    userPrefix: `u${names[i]}-`,
  }));
  const a = await deploy(
    'a/cluster',
    prefix,
    nodes[0]!,
    nodes.map((n) => serverProc(n)),
    groups,
    '127.0.2.1',
  );
  const usersOf = names.map((n, i) => userList(`u${n}-`, share[i]!));
  const c = {
    senderDirect: await a.phase('senderDirect', 'sender', interleave(usersOf)),
    httpCrossNode: await a.phase('httpCrossNode', 'http', interleave(usersOf.slice(1))),
    httpSameNode: await a.phase('httpSameNode', 'http', usersOf[0]!),
  };
  const devStats = await a.done(nodes);

  // --- one node, all D devices
  await waitForIdleMachine('a/single start');
  const sprefix = `${runPrefix}s:`;
  log(`scenario a: single node (prefix ${sprefix})`);
  const S = await startNode('node S', sprefix);
  const sgroups = [{ host: '127.0.0.1', port: S.tcpPort, count: D, userPrefix: 'uS-' }];
  const b = await deploy('a/single', sprefix, S, [serverProc(S)], sgroups, '127.0.2.1');
  const susers = userList('uS-', D);
  const s = {
    senderDirect: await b.phase('senderDirect', 'sender', susers),
    http: await b.phase('http', 'http', susers),
  };
  const sdevStats = await b.done([S]);

  const ratio = (x: number, y: number) => round(x / Math.max(1, y), 3);
  return {
    figures: {
      clusterSenderPushesPerSec: c.senderDirect.pushesPerSec,
      singleNodeSenderPushesPerSec: s.senderDirect.pushesPerSec,
      clusterVsSingleNode: ratio(c.senderDirect.pushesPerSec, s.senderDirect.pushesPerSec),
      clusterVsSingleNodeTarget: 0.6,
      pushesPerServerCoreSec: {
        clusterSenderDirect: c.senderDirect.pushesPerServerCoreSec,
        singleNodeSender: s.senderDirect.pushesPerServerCoreSec,
        clusterHttpCrossNode: c.httpCrossNode.pushesPerServerCoreSec,
        clusterHttpSameNode: c.httpSameNode.pushesPerServerCoreSec,
        singleNodeHttp: s.http.pushesPerServerCoreSec,
      },
      httpCrossNodePushesPerSec: c.httpCrossNode.pushesPerSec,
      httpSameNodePushesPerSec: c.httpSameNode.pushesPerSec,
      singleNodeHttpPushesPerSec: s.http.pushesPerSec,
      httpCrossNodeVsSingleNodeHttp: ratio(c.httpCrossNode.pushesPerSec, s.http.pushesPerSec),
      redisCommandsPerPush: {
        clusterSenderDirect: c.senderDirect.redis.commandsPerPush,
        clusterHttpCrossNode: c.httpCrossNode.redis.commandsPerPush,
        clusterHttpSameNode: c.httpSameNode.redis.commandsPerPush,
        singleNodeSender: s.senderDirect.redis.commandsPerPush,
        singleNodeHttp: s.http.redis.commandsPerPush,
        target: '≤ 2 round trips per push once routes are cached (commands ≥ round trips)',
      },
    },
    cluster: {
      nodes: nodes.map((n, i) => ({ name: n.name, id: n.ids[0], pid: n.pid, devices: share[i] })),
      connect: a.connect,
      registry: a.registry,
      quiet: a.quiet,
      phases: c,
      deviceProcess: devStats,
    },
    singleNode: {
      node: { name: S.name, id: S.ids[0], pid: S.pid, devices: D },
      connect: b.connect,
      quiet: b.quiet,
      phases: s,
      deviceProcess: sdevStats,
    },
  };
}

// ---- scenario b: --workers 1 vs 2 ------------------------------------------------------------------

async function workersRun(workers: number) {
  await waitForIdleMachine(`b/workers${workers} start`);
  const prefix = `${runPrefix}w${workers}:`;
  log(`scenario b: mpush start --workers ${workers} (prefix ${prefix})`);
  const primary = await startNode(`workers${workers}`, prefix, workers);
  await sleep(200);
  const workerPids = procChildren(primary.pid);
  const servers: Proc[] = [
    // --workers 1 runs the node in the primary itself (no fork).
    serverProc(primary, workers > 1 ? 'primary' : 'node (--workers 1: no fork)'),
    ...workerPids.map((pid, i) => ({ name: `worker ${i}`, pid, server: true })),
  ];
  const groups = [{ host: '127.0.0.1', port: primary.tcpPort, count: P.devices, userPrefix: `w${workers}-` }];
  const d = await deploy(`b/workers${workers}`, prefix, primary, servers, groups, '127.0.2.2');
  const sender = await d.phase('sender', 'sender', userList(`w${workers}-`, P.devices));
  const deviceProcess = await d.done([primary]);
  return {
    workers,
    primaryPid: primary.pid,
    workerPids,
    nodeIds: primary.ids,
    connect: d.connect,
    registry: d.registry,
    quiet: d.quiet,
    sender,
    deviceProcess,
  };
}

async function scenarioB(): Promise<Record<string, unknown>> {
  const w1 = await workersRun(1);
  const w2 = await workersRun(2);
  const [s1, s2] = [w1.sender, w2.sender];
  const loadGen = (s: PhaseReport) => round((s.cpu.devices ?? 0) + (s.cpu.pusher ?? 0), 1);
  return {
    figures: {
      workers1PushesPerSec: s1.pushesPerSec,
      workers2PushesPerSec: s2.pushesPerSec,
      ratio: round(s2.pushesPerSec / Math.max(1, s1.pushesPerSec), 3),
      target: 1.6,
      workers1ServerCpuPercent: s1.serverCpuPercent,
      workers2ServerCpuPercent: s2.serverCpuPercent,
      workers1PushesPerServerCoreSec: s1.pushesPerServerCoreSec,
      workers2PushesPerServerCoreSec: s2.pushesPerServerCoreSec,
      loadGeneratorsCpuPercent: { workers1: loadGen(s1), workers2: loadGen(s2) },
      machineBusyPercent: { workers1: s1.cpu.machineBusyPercent, workers2: s2.cpu.machineBusyPercent },
      note: 'one machine with 2 cores: the device process, the pusher and redis-server run on the same cores as the workers (see sender.cpu: percent of one core per process), so the workers never get two whole cores',
    },
    workers1: w1,
    workers2: w2,
  };
}

// ---- scale: many bound devices across workers -----------------------------------------------------

async function scale(): Promise<Record<string, unknown>> {
  const W = P.scaleWorkers;
  const N = P.scaleDevices;
  const nProcs = Math.ceil(N / P.scalePerProc);
  // Even shares: each device process at most scalePerProc.
  const counts = Array.from({ length: nProcs }, (_, i) => Math.floor(N / nProcs) + (i < N % nProcs ? 1 : 0));
  await waitForIdleMachine('scale start');
  const prefix = `${runPrefix}x:`;
  log(`scale: ${N} devices over ${W} workers (${Math.ceil(N / W)} each), ${nProcs} device processes`);
  const primary = await startNode(`scale workers${W}`, prefix, W);
  await sleep(200);
  const workerPids = procChildren(primary.pid);
  const devs = await Promise.all(counts.map((_, i) => fleet(`devices ${i}`)));
  const servers: Proc[] = [
    serverProc(primary, 'primary'),
    ...workerPids.map((pid, i) => ({ name: `worker ${i}`, pid, server: true })),
  ];
  const fleets = devs.map((d, i) => ({ name: `devices ${i}`, pid: d.child.pid! }));
  const redisProc = { name: 'redis-server', pid: redisPid };
  // During the ramp no process is "the server": rampCpu says who bounds the ramp.
  const rampProcs = [...servers.map((p) => ({ ...p, server: false })), ...fleets, redisProc];
  const r0 = snap(rampProcs);
  const address = (i: number) => `127.0.2.${10 + i}`;
  const groups = (i: number) => [
    { host: '127.0.0.1', port: primary.tcpPort, count: counts[i]!, userPrefix: `x${i}-` },
  ];
  const connects = await Promise.all(devs.map((d, i) => connectDevices(d, groups(i), address(i), i)));
  const r1 = snap(rampProcs);
  const connectSeconds = (r1.s.wall - r0.s.wall) / 1000;
  const rampRedis = statsDelta(await r0.cmds, await r1.cmds);
  const ramp = cpuReport(r0.s, r1.s);
  const bound = sum(connects, (c) => c.bound);
  log(`scale: ${bound}/${N} bound in ${round(connectSeconds, 1)} s; holding ${P.scaleHoldMs} ms`);
  await sleep(P.scaleHoldMs);
  const stats = await Promise.all(devs.map(fleetStats));
  const held = sum(stats, (x) => x.held);
  const registry = await registrySnapshot(prefix);
  const workersProc = workerPids.map((pid, i) => ({
    worker: i,
    pid,
    rssBytes: procRss(pid),
    openFiles: procFds(pid),
  }));
  let push: PhaseReport | undefined;
  if (P.scalePushMs > 0 && held > 0) {
    const pusher = await forkChild(scripts.pusher, 'pusher');
    const procs: Proc[] = [...servers, ...fleets, { name: 'pusher', pid: pusher.child.pid! }, redisProc];
    const bg = await quietWindow(procs);
    const users = interleave(devs.map((_, i) => userList(`x${i}-`, counts[i]!)));
    const gateways = [{ host: '127.0.0.1', port: primary.gatewayPort }];
    const input = { mode: 'sender' as const, gateways, prefix, users, concurrency: P.concurrency };
    push = await pushPhase('scale sender', pusher, { ...input, durationMs: P.scalePushMs }, procs, bg);
    await pusher.stop();
  }
  const finalStats = await Promise.all(devs.map(fleetStats));
  await finishFleet(devs, undefined);
  await stopProc(primary.child, primary.name);
  return {
    workers: W,
    devicesTarget: N,
    bound,
    heldAfterHold: held,
    heldAtEnd: sum(finalStats, (x) => x.held),
    onlineUsersInRegistry: sum(registry, (n) => Number(n.onlineUsers ?? 0)),
    connectSeconds: round(connectSeconds, 2),
    bindsPerSec: Math.round(bound / connectSeconds),
    rampCpu: ramp.cpu,
    rampOtherProcesses: ramp.w.otherProcesses,
    rampTcpCounters: counterDelta(r0.s.tcp, r1.s.tcp, true),
    rampRedisCommandsPerBind: Object.fromEntries(
      [...rampRedis].map(([k, v]) => [k, round(v / Math.max(1, bound), 3)]),
    ),
    perWorkerRegistry: registry,
    workersProc,
    deviceProcesses: connects.map((c, i) => ({ ...slimConnect(c), localAddress: address(i), ...stats[i] })),
    push,
    limits: {
      openFilesPerProcess: maxOpenFiles() ?? 0,
      perWorkerTarget: Math.ceil(N / W),
      workersNeededFor100k: Math.ceil(100_000 / 19_500),
      note: 'each process may open at most 20,000 files (hard limit here), so a worker holds ≤ ~19,500 devices and 100,000 needs ≥ 6 workers (and ≥ 6 device processes, each from its own 127.0.2.x source address: one address has ~28,000 ephemeral ports) on 2 cores; node:cluster round-robins connections, so shares differ by a few',
    },
  };
}

// ---- main -----------------------------------------------------------------------------------------

const report: Record<string, unknown> = {
  bench: 'cluster',
  startedAt: new Date().toISOString(),
  machine: {
    cpus: os.cpus().length,
    memoryBytes: os.totalmem(),
    loadAvgAtStart: loadAvg(),
    node: process.version,
    openFilesPerProcess: maxOpenFiles() ?? null,
  },
  params: P,
  commands,
};

let finished: Promise<void> | undefined;
/** Stops every child, deletes this run's keys, prints the report (once). */
function finish(failed: boolean): Promise<void> {
  finished ??= (async () => {
    for (const c of [...children]) await stopProc(c, 'child').catch(() => {});
    let deleted = 0;
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', `${runPrefix}*`, 'COUNT', 1000);
      cursor = next;
      if (found.length) deleted += await redis.del(...found);
    } while (cursor !== '0');
    Object.assign(report, {
      redisKeysDeleted: deleted,
      redisPrefix: runPrefix,
      waitedForOtherBenchesSec: round(waitedTotalSec, 0),
      loadAvgAtEnd: loadAvg(),
      finishedAt: new Date().toISOString(),
    });
    await redis.quit();
    printReport(report);
    process.exitCode = failed ? 1 : 0;
  })();
  return finished;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    log(`${sig}: stopping children, deleting keys`);
    report.error = `interrupted by ${sig}`;
    finish(true).finally(() => process.exit(1));
  });
}

async function main(): Promise<void> {
  const info = await redis.info('server');
  redisPid = Number(/process_id:(\d+)/.exec(info)?.[1] ?? 0);
  (report.machine as Record<string, unknown>).redis = /redis_version:(\S+)/.exec(info)?.[1];
  let failed = false;
  try {
    if (P.scenario.includes('a')) report.scenarioA = await scenarioA();
    if (P.scenario.includes('b')) report.scenarioB = await scenarioB();
    if (P.scenario.includes('scale')) report.scale = await scale();
  } catch (err) {
    failed = true;
    report.error = (err as Error).stack ?? String(err);
    log(`failed: ${(err as Error).message}`);
  }
  await finish(failed);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/cluster: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
