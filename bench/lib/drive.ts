// The driver's side of the shared children: where their scripts are, how fleets of them run, what a
// measured window of the server and its load generators reports, and how a driver ends.

import { launchFlags } from '../../src/cli/launch.js';
import { loadConfig } from '../../src/config/index.js';
import type { DeviceGroup, FleetResult, FleetRun, FleetStats } from './fleet.js';
import type { NodeOptions, NodeReady, ServerStats } from './node-server.js';
import { cpuBetween, type LoopStats, type Proc, sample } from './procstat.js';
import type { PusherOptions } from './pusher.js';
import { addCounts, round, sum, table } from './report.js';
import { forkChild, type RpcClient } from './rpc.js';

export const scripts = {
  fleet: new URL('./fleet.js', import.meta.url),
  pusher: new URL('./pusher.js', import.meta.url),
  nodeServer: new URL('./node-server.js', import.meta.url),
};

/** The i-th of k near-equal shares of `total`. */
export const share = (total: number, k: number, i: number) => Math.floor(total / k) + (i < total % k ? 1 : 0);

/** Fleet i's (of k) share of the users `<userPrefix>0` … `<userPrefix>n-1` on 127.0.0.1:`port`. */
export function shareGroup(port: number, userPrefix: string, n: number, k: number, i: number): DeviceGroup {
  const first = i * Math.floor(n / k) + Math.min(i, n % k);
  return { host: '127.0.0.1', port, count: share(n, k, i), first, userPrefix };
}

export const forkFleets = (k: number, name: string) =>
  Promise.all(Array.from({ length: k }, (_, i) => forkChild(scripts.fleet, `${name} ${i}`)));

/** Node flags as `mpush start` runs a node by default (its young generation, unless `flags` set one), then `flags`. */
export const asStarted = (flags: string[]) => [
  ...launchFlags(loadConfig(), flags, process.env.NODE_OPTIONS ?? ''),
  ...flags,
];

/**
 * A one-node benchmark's children: the node under test (started with `options`, `execArgv` its node
 * flags), a pusher, `k` fleets; `startSender` starts the pusher's PushSender on the node's gateway.
 */
export async function startOneNode(options: NodeOptions, k: number, execArgv: string[] = []) {
  const server = await forkChild(scripts.nodeServer, 'server', { execArgv: asStarted(execArgv) });
  const ready = await server.call<NodeReady>('start', { options }, 60_000);
  const [pusher, fleets] = await Promise.all([forkChild(scripts.pusher, 'pusher'), forkFleets(k, 'devices')]);
  const gateways = [{ host: '127.0.0.1', port: ready.gatewayPort }];
  const startSender = (o: Omit<PusherOptions, 'mode' | 'gateways'>) =>
    pusher.call('start', { options: { mode: 'sender', gateways, ...o } });
  const stop = async () => {
    for (const c of [pusher, ...fleets]) await c.stop();
    await server.stop('stop', 30_000);
  };
  return { server, ready, pusher, fleets, startSender, stop };
}

/** Fleet process i's run: `bind` unless said, from its own source address 127.0.0.<i+1>, 3 attempts. */
export const fleetRun = (i: number, groups: DeviceGroup[], o: Partial<FleetRun>): FleetRun => ({
  mode: 'bind',
  groups,
  localAddress: `127.0.0.${i + 1}`,
  concurrency: 200,
  maxAttempts: 3,
  proc: i,
  ...o,
});

/**
 * Every fleet process runs `runOf(i)` (meanwhile, with `server`, what it holds is logged every 2 s);
 * what they did, summed: counts, errors, the slowest run's seconds, binds per second, the first
 * bind's epoch ms, the worst process's latency percentiles (connect started → bound).
 */
export async function runFleets(
  fleets: RpcClient[],
  runOf: (i: number) => FleetRun,
  server?: RpcClient,
  log?: (m: string) => void,
) {
  const progress = setInterval(() => {
    const said = (s: ServerStats) =>
      log?.(`${runOf(0).mode}: server holds ${s.connections}, ${s.bound} bound`);
    server?.call<ServerStats>('stats').then(said, () => {});
  }, 2000);
  const results = await Promise.all(
    fleets.map((f, i) => f.call<FleetResult>('run', { params: runOf(i) }, 600_000)),
  ).finally(() => clearInterval(progress));
  const seconds = round(Math.max(...results.map((r) => r.seconds)), 2);
  const counts = table(['target', 'bound', 'failed', 'attempts'], (k) => sum(results, (r) => r[k]));
  return {
    ...counts,
    seconds,
    bindsPerSec: Math.round(counts.bound / seconds),
    errors: addCounts(results.map((r) => r.errors)),
    firstBoundAt: Math.min(...results.map((r) => r.firstBoundAt || Number.POSITIVE_INFINITY)),
    latencyMsWorstProcess: table(['p50', 'p90', 'p99', 'max'], (k) =>
      Math.max(...results.map((r) => r.latencyMs![k])),
    ),
  };
}

/** The fleets bind (unless `o` says) users `user-0` … `user-<n-1>` on `port`, each process its share. */
export const bindUsers = (
  fleets: RpcClient[],
  port: number,
  n: number,
  o: Partial<FleetRun>,
  server: RpcClient,
  log: (m: string) => void,
) => runFleets(fleets, (i) => fleetRun(i, [shareGroup(port, 'user-', n, fleets.length, i)], o), server, log);

export const fleetStats = (fleets: RpcClient[]) =>
  Promise.all(fleets.map((f) => f.call<FleetStats>('stats')));

/**
 * Over `fn`: the server's CPU (µs) and event-loop use from its own count; with `watch`, each child's
 * CPU (`cpuUs`), GC and loop delay; every process's share of a core (by its RpcClient name), the
 * machine's and what else ran on it, from /proc. With `profile` (a path), the server's CPU profile.
 */
export async function measure<T>(
  server: RpcClient,
  others: RpcClient[],
  watch: boolean,
  fn: () => Promise<T>,
  profile?: string,
) {
  const all = [server, ...others];
  const procs: Proc[] = all.map((c) => ({ name: c.name, pid: c.child.pid!, server: c === server }));
  const loop = () => Promise.all(all.map((c) => (watch ? c.call<LoopStats>('loop') : undefined)));
  const l0 = await loop();
  const s0 = await server.call<ServerStats>('stats');
  if (profile) await server.call('profileStart', { intervalUs: 100 });
  const a = sample(procs);
  const out = await fn();
  const w = cpuBetween(a, sample(procs));
  const s1 = await server.call<ServerStats>('stats');
  const l1 = await loop();
  const active = s1.elu.active - s0.elu.active;
  const { machine, otherPercentOfMachine, otherProcesses } = w;
  return {
    out,
    s0,
    s1,
    serverUs: s1.cpu.user - s0.cpu.user + s1.cpu.system - s0.cpu.system,
    cpuUs: (c: RpcClient) => l1[all.indexOf(c)]!.cpuUs - l0[all.indexOf(c)]!.cpuUs,
    /** The window's figures for a report. */
    report: {
      cpuPercent: {
        ...w.percent,
        serverEventLoopUtilization: round(active / (active + s1.elu.idle - s0.elu.idle || 1), 3),
        machine,
        otherPercentOfMachine,
        otherProcesses,
      },
      gcAndLoopDelay: watch
        ? Object.fromEntries(l1.map((l, i) => [all[i]!.name, { ...l, cpuUs: undefined }]))
        : undefined,
      serverProfile: profile && (await server.call<string>('profileStop', { path: profile }, 120_000)),
    },
  };
}

/** Runs a driver: its status is the exit status; a throw is logged, every child killed, status 2. */
export function runMain(main: () => Promise<number>, log: (m: string) => void): void {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      log(`failed: ${err instanceof Error ? err.stack : String(err)}`);
      process.exit(2); // rpc.ts kills every child on exit
    },
  );
}
