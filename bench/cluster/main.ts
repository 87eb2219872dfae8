// Cluster benchmark: mpush-ts nodes on one Redis, pushes across nodes, and worker processes.
// Prints ONE JSON object on stdout; progress goes to stderr. Numbers only: no test asserts on them.
//
//   cd /work/main && npx tsc -p tsconfig.json && node dist/bench/cluster/main.js [--flag value ...]
//
// Every node is a real `mpush start` process:
//   node dist/src/cli/main.js start --redis redis://127.0.0.1:6379 --cluster.prefix=bench<pid>:<part>:
//     --port P --http-port H --gateway-port G --host 127.0.0.1 --http.host=127.0.0.1
//     --gateway.host=127.0.0.1 --data-dir <tmp> --security.privateKey=<MPush default test key>
//     --log.level=warn [--workers N]
// (the exact lines are in the report, `commands`). Devices run in separate processes
// (devices.ts: full RSA/AES handshake + BIND, AUTO_ACK pushes acked on receipt), pushes come from a
// separate pusher process (pusher.ts). Keys live under `bench<pid>:` in Redis and are deleted at
// the end (`redisKeysDeleted`).
//
// Parameters (flag `--name value` / `--name=value`, or env BENCH_CLUSTER_<NAME>, - as _):
//   --scenario a,b,scale   which parts to run (a: cross-node unicast, b: workers 1 vs 2,
//                          scale: many bound devices across workers)
//   --redis redis://127.0.0.1:6379
//   --devices 3000         D, devices for scenarios a and b
//   --concurrency 128      PushSender pushes in flight (sender phases)
//   --http-concurrency 64  HTTP requests in flight, one keep-alive connection each (http phases)
//   --warmup-ms 2000       pushes before each measured window (fills the route caches)
//   --duration-ms 10000    measured window of each push phase
//   --quiet-ms 5000        window with no pushes: the Redis background (registry refresh, …)
//   --route-source gateway pusher's routes: gateway (GatewayRouteSource via the first node, the
//                          PushSender default) or redis (StoreRouteSource on RedisRouteStore)
//   --route-cache-ms 5000  PushSender route cache (its default)
//   --content-bytes 64     push body
//   --timeout-ms 5000      push timeout
//   --connect-concurrency 200  device handshakes in flight per device process
//   --scale-workers 2  --scale-devices 38000  --scale-per-proc 19000  --scale-hold-ms 10000
//                          (100k: --scenario scale --scale-workers 6 --scale-devices 100000)
//   --scale-push-ms 5000   scale part: workers, devices, devices per device process (each its own
//                          source address 127.0.2.<10+i>; a process may open 20,000 files), how long
//                          they are held before counting, and a short push pass at that scale
//                          (0 skips; its routes are mostly cold: ~1 route query per push)
//   --node-prof-dir DIR    run every node with --cpu-prof (a .cpuprofile per process in DIR,
//                          written when it stops: start, connect and all phases together)
//   --wait-idle true       before each measured phase wait (poll 10 s, ≤ 25 min) until no
//                          `dist/bench/(connections|push)/` process runs
//   --max-attempts 3  --max-other-percent 20   a push phase is run again (up to 3 times) when
//                          another bench ran at an edge of its window or more than 20% of a core
//                          went to processes not of this bench; `attempt` and `disturbedAttempts`
//                          say so (the last attempt is reported)
//
// Figures. Each push phase (`phases.*`):
//   pushesPerSec     AUTO_ACK pushes acked (result success: the device's ACK reached the node and
//                    the node's OK reached the pusher) completed in the window / window length
//   latencyMs        per push, send() called (or HTTP request written) → result, completed in the
//                    window; with `concurrency` in flight, p50 ≈ concurrency / pushesPerSec
//   results          every result in the window (success, offline, failure, timeout, http …)
//   redis.commandsPerPush  (Δ INFO commandstats calls over the window, without INFO itself, minus
//                    the quiet window's rate × window length) / acked pushes. Every command counts:
//                    the commands a Lua script or a MULTI runs are counted too, so this is an
//                    upper bound on Redis round trips per push. `perPushByCommand`: the same per
//                    command (hgetall = route lookups after a route cache expiry). INFO is
//                    server-wide: another client of the same Redis (a test run) inflates it; such
//                    a run also shows in otherPercent and makes the phase run again
//   serverCpuPercent, pushesPerServerCoreSec  the mpush-ts processes' CPU summed, and pushes/s per
//                    core of it: the cost of a push on the server side, whatever the load
//                    generators left to the server (on 2 cores they take ~0.8 core)
//   cpuSystem        the kernel part of each process's CPU (loopback TCP, epoll)
//   cpu              per process, percent of one core over the window (/proc/<pid>/stat; 100 = one
//                    core), `machineBusyPercent` of both cores, and `otherPercent`: machine busy
//                    time not charged to a process of this bench (something else was running);
//                    `otherProcesses`: the busiest such processes (≥ 5% of a core) with their command
//   loadAvg          1/5/15-minute load average when the phase started
// Scenario a (three nodes A, B, C; D devices, D/3 bound on each):
//   cluster.phases.senderDirect    PushSender (gateways [A], routes via A) to all users: each push
//                                  goes straight to its user's node (2/3 of them not A)
//   cluster.phases.httpCrossNode   POST /api/push at A for users on B and C: A's in-process
//                                  PushSender forwards each push to B's or C's gateway
//   cluster.phases.httpSameNode    POST /api/push at A for users on A (A's PushSender → A's gateway)
//   singleNode.phases.*            the same pusher and device processes against ONE node holding
//                                  all D devices (also on Redis): the baseline
//   figures.clusterVsSingleNode    cluster senderDirect / single-node senderDirect pushes/s
//                                  (target ≥ 0.6); http likewise
// Scenario b (`mpush start --workers 1` vs `--workers 2`; D devices through the shared TCP port,
//   pushes by PushSender with gateways [worker 0]): figures.ratio = workers2 / workers1 pushes/s
//   (target ≥ 1.6). Device, pusher and Redis processes share the same 2 cores: see each phase's cpu.
// Scale: devices bound and still held after the hold, per worker (registry: connections,
//   onlineUsers), worker RSS and open files, connect time and binds/s; during the ramp, CPU per
//   process (rampCpu: who bounds the ramp), kernel listen-queue counters (rampTcpCounters) and
//   Redis commands per bind; what bounds the count is in `limits`.
// Exit status 1 when a part failed (the report then has `error`).

import { type ChildProcess, execFileSync, fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { defaultKeys } from '../common/keys.js';
import type { ConnectParams, ConnectResult, DeviceStats } from './devices.js';
import {
  allProcCpu,
  machineCpu,
  maxOpenFiles,
  procChildren,
  procCommand,
  procCpu,
  procFds,
  procRss,
  RpcClient,
  round,
  sleep,
  tcpCounters,
} from './ipc.js';
import type { PushParams, PushReport } from './pusher.js';

// ---- parameters ---------------------------------------------------------------------------------

const argv = process.argv.slice(2);
function param(name: string, def: string): string {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === `--${name}`) return argv[i + 1] ?? 'true';
    if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3);
  }
  return process.env[`BENCH_CLUSTER_${name.toUpperCase().replace(/-/g, '_')}`] ?? def;
}
const num = (name: string, def: number) => {
  const v = Number(param(name, String(def)));
  if (!Number.isFinite(v)) throw new Error(`--${name} must be a number`);
  return v;
};

const P = {
  scenario: param('scenario', 'a,b,scale').split(','),
  redis: param('redis', 'redis://127.0.0.1:6379'),
  devices: num('devices', 3000),
  concurrency: num('concurrency', 128),
  httpConcurrency: num('http-concurrency', 64),
  warmupMs: num('warmup-ms', 2000),
  durationMs: num('duration-ms', 10_000),
  quietMs: num('quiet-ms', 5000),
  routeSource: param('route-source', 'gateway') as 'gateway' | 'redis',
  routeCacheMs: num('route-cache-ms', 5000),
  contentBytes: num('content-bytes', 64),
  timeoutMs: num('timeout-ms', 5000),
  connectConcurrency: num('connect-concurrency', 200),
  scaleWorkers: num('scale-workers', 2),
  scaleDevices: num('scale-devices', 38_000),
  scalePerProc: num('scale-per-proc', 19_000),
  scaleHoldMs: num('scale-hold-ms', 10_000),
  scalePushMs: num('scale-push-ms', 5000),
  waitIdle: param('wait-idle', 'true') !== 'false',
  maxAttempts: num('max-attempts', 3),
  maxOtherPercent: num('max-other-percent', 20),
  nodeProfDir: param('node-prof-dir', ''),
};

const here = dirname(fileURLToPath(import.meta.url));
const cliPath = join(here, '../../src/cli/main.js');
const runPrefix = `bench${process.pid}:`;
const log = (msg: string) =>
  process.stderr.write(`[bench/cluster ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

const keys = defaultKeys();

// ---- processes ----------------------------------------------------------------------------------

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

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
  command: string;
}

const commands: string[] = [];

async function startNode(name: string, prefix: string, workers = 0): Promise<NodeProc> {
  const base = await freePorts(2 + Math.max(1, workers));
  const tcpPort = base;
  const httpPort = base + 1;
  const gatewayPort = base + 2; // worker i: gatewayPort + i
  const dataDir = mkdtempSync(join(os.tmpdir(), 'mpush-bench-cluster-'));
  const args = [
    'start',
    '--redis',
    P.redis,
    `--cluster.prefix=${prefix}`,
    '--port',
    String(tcpPort),
    '--http-port',
    String(httpPort),
    '--gateway-port',
    String(gatewayPort),
    '--host',
    '127.0.0.1',
    '--http.host=127.0.0.1',
    '--gateway.host=127.0.0.1',
    '--data-dir',
    dataDir,
    `--security.privateKey=${keys.privateKey}`,
    '--log.level=warn',
    ...(workers > 0 ? ['--workers', String(workers)] : []),
  ];
  const command = `node ${cliPath} ${args.join(' ')}`.replace(keys.privateKey, '<MPush default test key>');
  commands.push(`${name}: ${command}`);
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
    const want = Math.max(1, workers);
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${name}: not started within 30 s`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = /^mpush-ts node (\S+) started/.exec(line);
        if (m) ids.push(m[1]!);
        if (ids.length === want) {
          clearTimeout(timer);
          resolve();
        }
        nl = buf.indexOf('\n');
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) during start`));
    });
  });
  child.stdout!.resume();
  return { name, child, pid: child.pid!, tcpPort, httpPort, gatewayPort, ids, command };
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
  children.delete(child);
}

async function forkChild(script: 'devices' | 'pusher', name: string): Promise<RpcClient> {
  // The child's stdout goes to our stderr: stdout carries only the report.
  const child = fork(join(here, `${script}.js`), [], { stdio: ['ignore', 2, 2, 'ipc'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const rpc = new RpcClient(child, name);
  await rpc.once('ready', 30_000);
  return rpc;
}

async function exitChild(rpc: RpcClient): Promise<void> {
  const exited = new Promise<void>((r) => rpc.child.once('exit', () => r()));
  await rpc.call('exit').catch(() => {});
  await Promise.race([exited, sleep(3000)]);
  if (rpc.child.exitCode === null) rpc.child.kill('SIGKILL');
}

// ---- Redis and sampling -------------------------------------------------------------------------

const redis = new Redis(P.redis, { maxRetriesPerRequest: 3 });

async function commandStats(): Promise<Map<string, number>> {
  const text = await redis.info('commandstats');
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^cmdstat_(\S+?):calls=(\d+)/gm)) out.set(m[1]!, Number(m[2]));
  return out;
}

function statsDelta(a: Map<string, number>, b: Map<string, number>): Map<string, number> {
  const d = new Map<string, number>();
  for (const [k, v] of b) {
    if (k === 'info') continue; // ours
    const x = v - (a.get(k) ?? 0);
    if (x > 0) d.set(k, x);
  }
  return d;
}

const sumOf = (m: Map<string, number>) => [...m.values()].reduce((s, x) => s + x, 0);

let redisPid = 0;

interface Proc {
  name: string;
  pid: number;
  /** An mpush-ts node (its CPU is the server's). */
  server?: boolean;
}

interface Sample {
  wall: number;
  cpu: Map<string, { user: number; sys: number } | undefined>;
  machine: { busy: number; total: number };
  all: Map<number, number>;
  cmds: Promise<Map<string, number>>;
}

function sample(procs: Proc[]): Sample {
  const cpu = new Map<string, { user: number; sys: number } | undefined>();
  for (const p of procs) cpu.set(p.name, procCpu(p.pid));
  return { wall: performance.now(), cpu, machine: machineCpu(), all: allProcCpu(), cmds: commandStats() };
}

/** The busiest processes that are not this bench's, percent of one core (what "other" was). */
function othersTop(
  a: Sample,
  b: Sample,
  procs: Proc[],
): Array<{ pid: number; percent: number; cmd: string }> {
  const wall = (b.wall - a.wall) / 1000;
  const ours = new Set([process.pid, ...procs.map((p) => p.pid)]);
  const out: Array<{ pid: number; percent: number; cmd: string }> = [];
  for (const [pid, y] of b.all) {
    const x = a.all.get(pid) ?? 0;
    const percent = round((100 * (y - x)) / wall, 1);
    if (!ours.has(pid) && percent >= 5) out.push({ pid, percent, cmd: procCommand(pid, 100) });
  }
  return out.sort((p, q) => q.percent - p.percent).slice(0, 4);
}

/** Per process, the system (kernel) part of its CPU, percent of one core: mostly loopback TCP. */
function sysReport(a: Sample, b: Sample): Record<string, number> {
  const wall = (b.wall - a.wall) / 1000;
  const out: Record<string, number> = {};
  for (const [name, x] of a.cpu) {
    const y = b.cpu.get(name);
    if (x !== undefined && y !== undefined) out[name] = round((100 * (y.sys - x.sys)) / wall, 1);
  }
  return out;
}

function cpuReport(a: Sample, b: Sample): Record<string, number> {
  const wall = (b.wall - a.wall) / 1000;
  const out: Record<string, number> = {};
  let ours = 0;
  for (const [name, x] of a.cpu) {
    const y = b.cpu.get(name);
    if (x === undefined || y === undefined) continue;
    const used = y.user + y.sys - x.user - x.sys;
    out[name] = round((100 * used) / wall, 1);
    ours += used;
  }
  const busy = b.machine.busy - a.machine.busy;
  const total = b.machine.total - a.machine.total;
  out.machineBusyPercent = total > 0 ? round((100 * busy) / total, 1) : 0;
  out.otherPercent = round(Math.max(0, (100 * (busy - ours)) / wall), 1);
  return out;
}

interface Background {
  seconds: number;
  commandsPerSec: number;
  byCommandPerSec: Record<string, number>;
  cpu: Record<string, number>;
  otherProcesses: Array<{ pid: number; percent: number; cmd: string }>;
}

async function quietWindow(procs: Proc[]): Promise<Background> {
  const a = sample(procs);
  await sleep(P.quietMs);
  const b = sample(procs);
  const d = statsDelta(await a.cmds, await b.cmds);
  const seconds = (b.wall - a.wall) / 1000;
  const byCommandPerSec: Record<string, number> = {};
  for (const [k, v] of d) byCommandPerSec[k] = round(v / seconds, 2);
  return {
    seconds: round(seconds, 2),
    commandsPerSec: round(sumOf(d) / seconds, 2),
    byCommandPerSec,
    cpu: cpuReport(a, b),
    otherProcesses: othersTop(a, b, procs),
  };
}

// ---- waiting for the machine ---------------------------------------------------------------------

function otherBenches(): string[] {
  try {
    return execFileSync('pgrep', ['-af', 'dist/bench/(connections|push)/'], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

let waitedTotalSec = 0;
async function waitForIdleMachine(label: string): Promise<void> {
  if (!P.waitIdle) return;
  const t0 = Date.now();
  let found = otherBenches();
  if (found.length) log(`${label}: other benchmark running (${found[0]!.slice(0, 100)}); waiting`);
  while (found.length && Date.now() - t0 < 25 * 60_000) {
    await sleep(10_000);
    found = otherBenches();
  }
  if (found.length) log(`${label}: still busy after 25 min; measuring anyway`);
  waitedTotalSec += (Date.now() - t0) / 1000;
}

const loadAvg = () => os.loadavg().map((x) => round(x, 2));

// ---- phases -------------------------------------------------------------------------------------

interface PhaseReport extends PushReport {
  concurrency: number;
  loadAvg: number[];
  otherBenchRunning: boolean;
  attempt?: number;
  disturbedAttempts?: Array<Record<string, unknown>>;
  redis: {
    commandsInWindow: number;
    backgroundSubtracted: number;
    commandsPerPush: number;
    perPushByCommand: Record<string, number>;
  };
  cpu: Record<string, number>;
  /** The kernel part of `cpu`. */
  cpuSystem: Record<string, number>;
  /** Sum of the mpush-ts processes' CPU, percent of one core. */
  serverCpuPercent: number;
  /** pushesPerSec / (serverCpuPercent / 100): pushes per second of server CPU. */
  pushesPerServerCoreSec: number;
  otherProcesses: Array<{ pid: number; percent: number; cmd: string }>;
}

type PhaseInput = Omit<
  PushParams,
  'redis' | 'warmupMs' | 'durationMs' | 'timeoutMs' | 'contentBytes' | 'routeCacheMs'
> &
  Partial<PushParams>;

/**
 * One push phase, repeated (up to --max-attempts) when something else disturbed it: another
 * benchmark running at either edge of the window, or more than --max-other-percent of a core
 * busy outside this bench's processes. The last attempt is reported, the disturbed ones listed.
 */
async function pushPhase(
  label: string,
  pusher: RpcClient,
  params: PhaseInput,
  procs: Proc[],
  bg: Background,
): Promise<PhaseReport> {
  const disturbed: Array<Record<string, unknown>> = [];
  for (let attempt = 1; ; attempt++) {
    const r = await pushPhaseOnce(label, pusher, params, procs, bg);
    const clean = !r.otherBenchRunning && r.cpu.otherPercent! <= P.maxOtherPercent;
    if (clean || attempt >= P.maxAttempts) {
      if (!clean) log(`${label}: still disturbed after ${attempt} attempts; reporting the last`);
      return { ...r, attempt, disturbedAttempts: disturbed };
    }
    log(`${label}: disturbed (other bench ${r.otherBenchRunning}, other CPU ${r.cpu.otherPercent}%); again`);
    disturbed.push({
      pushesPerSec: r.pushesPerSec,
      otherBenchRunning: r.otherBenchRunning,
      otherPercent: r.cpu.otherPercent,
      otherProcesses: r.otherProcesses,
    });
  }
}

async function pushPhaseOnce(
  label: string,
  pusher: RpcClient,
  params: PhaseInput,
  procs: Proc[],
  bg: Background,
): Promise<PhaseReport> {
  await waitForIdleMachine(label);
  const la = loadAvg();
  const full: PushParams = {
    redis: P.redis,
    warmupMs: P.warmupMs,
    durationMs: P.durationMs,
    timeoutMs: P.timeoutMs,
    contentBytes: P.contentBytes,
    routeCacheMs: P.routeCacheMs,
    ...params,
  };
  log(
    `${label}: ${full.mode}, ${full.users.length} users, ${full.concurrency} in flight, ${full.durationMs} ms`,
  );
  let s0: Sample | undefined;
  let s1: Sample | undefined;
  let otherBench = false;
  const off = pusher.onEvent((m) => {
    if (m.event !== 'window') return;
    if (m.edge === 'start') s0 = sample(procs);
    else s1 = sample(procs);
    if (otherBenches().length > 0) otherBench = true;
  });
  const rep = await pusher.call<PushReport>(
    'push',
    { params: full },
    full.warmupMs + full.durationMs + 60_000,
  );
  off();
  if (!s0 || !s1) throw new Error(`${label}: window events missing`);
  const d = statsDelta(await s0.cmds, await s1.cmds);
  const seconds = (s1.wall - s0.wall) / 1000;
  const total = sumOf(d);
  const bgTotal = bg.commandsPerSec * seconds;
  const pushes = Math.max(1, rep.acked);
  const perPushByCommand: Record<string, number> = {};
  for (const [k, v] of d) {
    const net = (v - (bg.byCommandPerSec[k] ?? 0) * seconds) / pushes;
    if (Math.abs(net) >= 0.0005) perPushByCommand[k] = round(net, 4);
  }
  const cpu = cpuReport(s0, s1);
  const serverCpuPercent = round(
    procs.filter((p) => p.server).reduce((sum, p) => sum + (cpu[p.name] ?? 0), 0),
    1,
  );
  log(
    `${label}: ${rep.pushesPerSec} pushes/s, p50 ${rep.latencyMs.p50} ms, p99 ${rep.latencyMs.p99} ms, ${JSON.stringify(rep.results)}`,
  );
  return {
    ...rep,
    concurrency: full.concurrency,
    loadAvg: la,
    otherBenchRunning: otherBench,
    redis: {
      commandsInWindow: total,
      backgroundSubtracted: round(bgTotal, 1),
      commandsPerPush: round(Math.max(0, total - bgTotal) / pushes, 4),
      perPushByCommand,
    },
    cpu,
    cpuSystem: sysReport(s0, s1),
    serverCpuPercent,
    pushesPerServerCoreSec: Math.round(rep.pushesPerSec / Math.max(0.01, serverCpuPercent / 100)),
    otherProcesses: othersTop(s0, s1, procs),
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

async function connectDevices(
  devices: RpcClient,
  groups: ConnectParams['groups'],
  localAddresses: string[],
  proc = 0,
): Promise<ConnectResult> {
  const params: ConnectParams = {
    groups,
    localAddresses,
    concurrency: P.connectConcurrency,
    publicKey: keys.publicKey,
    maxAttempts: 3,
    proc,
  };
  return devices.call<ConnectResult>('connect', { params }, 600_000);
}

function slimConnect(r: ConnectResult): Record<string, unknown> {
  return {
    target: r.target,
    bound: r.bound,
    failed: r.failed,
    attempts: r.attempts,
    seconds: round(r.seconds, 2),
    bindsPerSec: Math.round(r.bound / r.seconds),
    errors: r.errors,
    handshakePlusBindLatencyMs: r.bindLatencyMs,
  };
}

// ---- scenario a: three nodes vs one ---------------------------------------------------------------

async function scenarioA(): Promise<Record<string, unknown>> {
  const D = P.devices;
  const names = ['A', 'B', 'C'];
  const share = names.map((_, i) => Math.floor(D / 3) + (i < D % 3 ? 1 : 0));

  // --- cluster of three
  await waitForIdleMachine('a/cluster start');
  const prefix = `${runPrefix}a:`;
  log(`scenario a: starting nodes A, B, C (prefix ${prefix})`);
  const nodes = await Promise.all(names.map((n) => startNode(`node ${n}`, prefix)));
  const devices = await forkChild('devices', 'devices');
  const connect = await connectDevices(
    devices,
    nodes.map((n, i) => ({
      host: '127.0.0.1',
      port: n.tcpPort,
      count: share[i]!,
      userPrefix: `u${names[i]}-`,
    })),
    ['127.0.2.1'],
  );
  log(`scenario a: ${connect.bound}/${connect.target} devices bound in ${round(connect.seconds, 1)} s`);
  const pusher = await forkChild('pusher', 'pusher');
  const procs: Proc[] = [
    ...nodes.map((n) => ({ name: n.name, pid: n.pid, server: true })),
    { name: 'devices', pid: devices.child.pid! },
    { name: 'pusher', pid: pusher.child.pid! },
    { name: 'redis-server', pid: redisPid },
  ];
  await waitForIdleMachine('a/cluster quiet');
  const bg = await quietWindow(procs);
  const registry = await registrySnapshot(prefix);
  const A = nodes[0]!;
  const usersOf = names.map((n, i) => userList(`u${n}-`, share[i]!));
  const gateways = [{ host: '127.0.0.1', port: A.gatewayPort }];
  const base = { gateways, routeSource: P.routeSource, prefix, httpUrl: `http://127.0.0.1:${A.httpPort}` };
  const clusterPhases = {
    senderDirect: await pushPhase(
      'a/cluster senderDirect',
      pusher,
      { ...base, mode: 'sender', users: interleave(usersOf), concurrency: P.concurrency },
      procs,
      bg,
    ),
    httpCrossNode: await pushPhase(
      'a/cluster httpCrossNode',
      pusher,
      { ...base, mode: 'http', users: interleave(usersOf.slice(1)), concurrency: P.httpConcurrency },
      procs,
      bg,
    ),
    httpSameNode: await pushPhase(
      'a/cluster httpSameNode',
      pusher,
      { ...base, mode: 'http', users: usersOf[0]!, concurrency: P.httpConcurrency },
      procs,
      bg,
    ),
  };
  const devStats = await devices.call<DeviceStats>('stats');
  await devices.call('drop');
  await Promise.all([exitChild(devices), exitChild(pusher)]);
  await Promise.all(nodes.map((n) => stopProc(n.child, n.name)));

  // --- one node, all D devices
  await waitForIdleMachine('a/single start');
  const sprefix = `${runPrefix}s:`;
  log(`scenario a: single node (prefix ${sprefix})`);
  const S = await startNode('node S', sprefix);
  const sdevices = await forkChild('devices', 'devices');
  const sconnect = await connectDevices(
    sdevices,
    [{ host: '127.0.0.1', port: S.tcpPort, count: D, userPrefix: 'uS-' }],
    ['127.0.2.1'],
  );
  log(`scenario a: ${sconnect.bound}/${sconnect.target} devices bound on the single node`);
  const spusher = await forkChild('pusher', 'pusher');
  const sprocs: Proc[] = [
    { name: S.name, pid: S.pid, server: true },
    { name: 'devices', pid: sdevices.child.pid! },
    { name: 'pusher', pid: spusher.child.pid! },
    { name: 'redis-server', pid: redisPid },
  ];
  await waitForIdleMachine('a/single quiet');
  const sbg = await quietWindow(sprocs);
  const sbase = {
    gateways: [{ host: '127.0.0.1', port: S.gatewayPort }],
    routeSource: P.routeSource,
    prefix: sprefix,
    httpUrl: `http://127.0.0.1:${S.httpPort}`,
  };
  const susers = userList('uS-', D);
  const singlePhases = {
    senderDirect: await pushPhase(
      'a/single senderDirect',
      spusher,
      { ...sbase, mode: 'sender', users: susers, concurrency: P.concurrency },
      sprocs,
      sbg,
    ),
    http: await pushPhase(
      'a/single http',
      spusher,
      { ...sbase, mode: 'http', users: susers, concurrency: P.httpConcurrency },
      sprocs,
      sbg,
    ),
  };
  const sdevStats = await sdevices.call<DeviceStats>('stats');
  await sdevices.call('drop');
  await Promise.all([exitChild(sdevices), exitChild(spusher)]);
  await stopProc(S.child, S.name);

  const c = clusterPhases;
  const s = singlePhases;
  return {
    figures: {
      clusterSenderPushesPerSec: c.senderDirect.pushesPerSec,
      singleNodeSenderPushesPerSec: s.senderDirect.pushesPerSec,
      clusterVsSingleNode: round(c.senderDirect.pushesPerSec / Math.max(1, s.senderDirect.pushesPerSec), 3),
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
      httpCrossNodeVsSingleNodeHttp: round(
        c.httpCrossNode.pushesPerSec / Math.max(1, s.http.pushesPerSec),
        3,
      ),
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
      connect: slimConnect(connect),
      registry,
      quiet: bg,
      phases: clusterPhases,
      deviceProcess: devStats,
    },
    singleNode: {
      node: { name: S.name, id: S.ids[0], pid: S.pid, devices: D },
      connect: slimConnect(sconnect),
      quiet: sbg,
      phases: singlePhases,
      deviceProcess: sdevStats,
    },
  };
}

// ---- scenario b: --workers 1 vs 2 ------------------------------------------------------------------

async function workersRun(workers: number): Promise<Record<string, unknown>> {
  await waitForIdleMachine(`b/workers${workers} start`);
  const prefix = `${runPrefix}w${workers}:`;
  log(`scenario b: mpush start --workers ${workers} (prefix ${prefix})`);
  const primary = await startNode(`workers${workers}`, prefix, workers);
  await sleep(200);
  const workerPids = procChildren(primary.pid);
  const devices = await forkChild('devices', 'devices');
  const connect = await connectDevices(
    devices,
    [{ host: '127.0.0.1', port: primary.tcpPort, count: P.devices, userPrefix: `w${workers}-` }],
    ['127.0.2.2'],
  );
  log(`scenario b: ${connect.bound}/${connect.target} devices bound`);
  const pusher = await forkChild('pusher', 'pusher');
  const procs: Proc[] = [
    // --workers 1 runs the node in the primary itself (no fork).
    { name: workers > 1 ? 'primary' : 'node (--workers 1: no fork)', pid: primary.pid, server: true },
    ...workerPids.map((pid, i) => ({ name: `worker ${i}`, pid, server: true })),
    { name: 'devices', pid: devices.child.pid! },
    { name: 'pusher', pid: pusher.child.pid! },
    { name: 'redis-server', pid: redisPid },
  ];
  await waitForIdleMachine(`b/workers${workers} quiet`);
  const bg = await quietWindow(procs);
  const registry = await registrySnapshot(prefix);
  const phase = await pushPhase(
    `b/workers${workers} sender`,
    pusher,
    {
      mode: 'sender',
      gateways: [{ host: '127.0.0.1', port: primary.gatewayPort }],
      routeSource: P.routeSource,
      prefix,
      httpUrl: '',
      users: userList(`w${workers}-`, P.devices),
      concurrency: P.concurrency,
    },
    procs,
    bg,
  );
  const devStats = await devices.call<DeviceStats>('stats');
  await devices.call('drop');
  await Promise.all([exitChild(devices), exitChild(pusher)]);
  await stopProc(primary.child, primary.name);
  return {
    workers,
    primaryPid: primary.pid,
    workerPids,
    nodeIds: primary.ids,
    connect: slimConnect(connect),
    registry,
    quiet: bg,
    sender: phase,
    deviceProcess: devStats,
  };
}

async function scenarioB(): Promise<Record<string, unknown>> {
  const w1 = await workersRun(1);
  const w2 = await workersRun(2);
  const s1 = w1.sender as PhaseReport;
  const s2 = w2.sender as PhaseReport;
  const p1 = s1.pushesPerSec;
  const p2 = s2.pushesPerSec;
  return {
    figures: {
      workers1PushesPerSec: p1,
      workers2PushesPerSec: p2,
      ratio: round(p2 / Math.max(1, p1), 3),
      target: 1.6,
      workers1ServerCpuPercent: s1.serverCpuPercent,
      workers2ServerCpuPercent: s2.serverCpuPercent,
      workers1PushesPerServerCoreSec: s1.pushesPerServerCoreSec,
      workers2PushesPerServerCoreSec: s2.pushesPerServerCoreSec,
      loadGeneratorsCpuPercent: {
        workers1: round((s1.cpu.devices ?? 0) + (s1.cpu.pusher ?? 0), 1),
        workers2: round((s2.cpu.devices ?? 0) + (s2.cpu.pusher ?? 0), 1),
      },
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
  const perWorker = Math.ceil(N / W);
  const nProcs = Math.ceil(N / P.scalePerProc);
  // Even shares: each device process at most scalePerProc.
  const counts = Array.from({ length: nProcs }, (_, i) => Math.floor(N / nProcs) + (i < N % nProcs ? 1 : 0));
  const fileLimit = maxOpenFiles() ?? 0;
  await waitForIdleMachine('scale start');
  const prefix = `${runPrefix}x:`;
  log(`scale: ${N} devices over ${W} workers (${perWorker} each), ${nProcs} device processes`);
  const primary = await startNode(`scale workers${W}`, prefix, W);
  await sleep(200);
  const workerPids = procChildren(primary.pid);
  const devs = await Promise.all(
    Array.from({ length: nProcs }, (_, i) => forkChild('devices', `devices ${i}`)),
  );
  const rampProcs: Proc[] = [
    { name: 'primary', pid: primary.pid },
    ...workerPids.map((pid, i) => ({ name: `worker ${i}`, pid })),
    ...devs.map((d, i) => ({ name: `devices ${i}`, pid: d.child.pid! })),
    { name: 'redis-server', pid: redisPid },
  ];
  const r0 = sample(rampProcs);
  const tcp0 = tcpCounters();
  const t0 = performance.now();
  const connects = await Promise.all(
    devs.map((d, i) => {
      const count = counts[i]!;
      return connectDevices(
        d,
        [{ host: '127.0.0.1', port: primary.tcpPort, count, userPrefix: `x${i}-` }],
        [`127.0.2.${10 + i}`],
        i,
      );
    }),
  );
  const connectSeconds = (performance.now() - t0) / 1000;
  const r1 = sample(rampProcs);
  const tcp1 = tcpCounters();
  const rampRedis = statsDelta(await r0.cmds, await r1.cmds);
  const bound = connects.reduce((s, c) => s + c.bound, 0);
  log(`scale: ${bound}/${N} bound in ${round(connectSeconds, 1)} s; holding ${P.scaleHoldMs} ms`);
  await sleep(P.scaleHoldMs);
  const stats = await Promise.all(devs.map((d) => d.call<DeviceStats>('stats')));
  const held = stats.reduce((s, x) => s + x.held, 0);
  const registry = await registrySnapshot(prefix);
  const workersInfo = workerPids.map((pid, i) => ({
    worker: i,
    pid,
    rssBytes: procRss(pid),
    openFiles: procFds(pid),
  }));
  const onlineInRedis = (await registrySnapshot(prefix)).reduce((s, n) => s + Number(n.onlineUsers ?? 0), 0);
  let push: PhaseReport | undefined;
  if (P.scalePushMs > 0 && held > 0) {
    const pusher = await forkChild('pusher', 'pusher');
    const procs: Proc[] = [
      { name: 'primary', pid: primary.pid, server: true },
      ...workerPids.map((pid, i) => ({ name: `worker ${i}`, pid, server: true })),
      ...devs.map((d, i) => ({ name: `devices ${i}`, pid: d.child.pid! })),
      { name: 'pusher', pid: pusher.child.pid! },
      { name: 'redis-server', pid: redisPid },
    ];
    const bg = await quietWindow(procs);
    const users = interleave(devs.map((_, i) => userList(`x${i}-`, counts[i]!)));
    push = await pushPhase(
      'scale sender',
      pusher,
      {
        mode: 'sender',
        gateways: [{ host: '127.0.0.1', port: primary.gatewayPort }],
        routeSource: P.routeSource,
        prefix,
        httpUrl: '',
        users,
        concurrency: P.concurrency,
        durationMs: P.scalePushMs,
      },
      procs,
      bg,
    );
    await exitChild(pusher);
  }
  const finalStats = await Promise.all(devs.map((d) => d.call<DeviceStats>('stats')));
  await Promise.all(devs.map((d) => d.call('drop')));
  await Promise.all(devs.map((d) => exitChild(d)));
  await stopProc(primary.child, primary.name);
  return {
    workers: W,
    devicesTarget: N,
    bound,
    heldAfterHold: held,
    heldAtEnd: finalStats.reduce((s, x) => s + x.held, 0),
    onlineUsersInRegistry: onlineInRedis,
    connectSeconds: round(connectSeconds, 2),
    bindsPerSec: Math.round(bound / connectSeconds),
    rampCpu: cpuReport(r0, r1),
    rampOtherProcesses: othersTop(r0, r1, rampProcs),
    rampTcpCounters: Object.fromEntries(Object.keys(tcp1).map((k) => [k, tcp1[k]! - (tcp0[k] ?? 0)])),
    rampRedisCommandsPerBind: Object.fromEntries(
      [...rampRedis].map(([k, v]) => [k, round(v / Math.max(1, bound), 3)]),
    ),
    perWorkerRegistry: registry,
    workersProc: workersInfo,
    deviceProcesses: connects.map((c, i) => ({
      ...slimConnect(c),
      localAddress: `127.0.2.${10 + i}`,
      ...stats[i],
    })),
    push,
    limits: {
      openFilesPerProcess: fileLimit,
      perWorkerTarget: perWorker,
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
      const [next, keysFound] = await redis.scan(cursor, 'MATCH', `${runPrefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keysFound.length) deleted += await redis.del(...keysFound);
    } while (cursor !== '0');
    report.redisKeysDeleted = deleted;
    report.redisPrefix = runPrefix;
    report.waitedForOtherBenchesSec = round(waitedTotalSec, 0);
    report.loadAvgAtEnd = loadAvg();
    report.finishedAt = new Date().toISOString();
    await redis.quit();
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
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
