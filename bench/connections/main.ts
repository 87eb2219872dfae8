// Connection benchmark: idle bound connections one server process holds, their memory and CPU, the
// handshake rate. Phases, flags and figures: README.md, "Benchmarks". Exit status 1 when fewer than n
// connections were bound (or held after the idle window).

import { readFileSync } from 'node:fs';
import { benchFlags } from '../lib/args.js';
import { asStarted, bindUsers, fleetStats, forkFleets, measure, runMain, scripts } from '../lib/drive.js';
import type { ServerStats } from '../lib/node-server.js';
import { machine } from '../lib/procstat.js';
import { logger, printReport, round, sum, targets } from '../lib/report.js';
import { forkChild, type RpcClient, sleep } from '../lib/rpc.js';

const f = benchFlags(
  'connections',
  {
    n: 19_000,
    clients: 4,
    concurrency: 200,
    settleSeconds: 5,
    idleSeconds: 10,
    maxAttempts: 3,
    noBare: false,
    serverNodeOptions: '',
  },
  { n: 2000, clients: 2, settleSeconds: 1, idleSeconds: 2 },
);
const params = {
  ...f,
  clients: Math.max(1, f.clients),
  concurrency: Math.max(1, f.concurrency),
  maxAttempts: Math.max(1, f.maxAttempts),
  serverNodeOptions: f.serverNodeOptions.split(/\s+/).filter((o) => o !== ''),
};

const log = logger('connections');

const stats = (rpc: RpcClient, gc = false) => rpc.call<ServerStats>('stats', { gc }, 60_000);

function memoryFigures(base: ServerStats, after: ServerStats) {
  const [b, a] = [base.memory, after.memory];
  const per = (d: number) => round(d / Math.max(1, after.connections));
  return {
    rssBaselineBytes: b.rss,
    rssAfterBytes: a.rss,
    rssPerConnectionBytes: per(a.rss - b.rss),
    heapPerConnectionBytes: per(a.heapUsed - b.heapUsed),
    heapTotalPerConnectionBytes: per(a.heapTotal - b.heapTotal),
    externalPerConnectionBytes: per(a.external - b.external),
    arrayBuffersPerConnectionBytes: per(a.arrayBuffers - b.arrayBuffers),
    // Sockets' native side, OpenSSL contexts, malloc overhead.
    nonHeapRssPerConnectionBytes: per(a.rss - b.rss - (a.heapTotal - b.heapTotal)),
  };
}

/** One server (the bare Node reference or mpush-ts) through the phases (README.md). */
async function hold(bare: boolean, n: number) {
  const name = bare ? 'bare' : 'mpush';
  log(`${name}: starting the server (--expose-gc ${params.serverNodeOptions.join(' ')}), ${n} connections`);
  const script = bare ? new URL('./bare-server.js', import.meta.url) : scripts.nodeServer;
  const flags = params.serverNodeOptions;
  const execArgv = ['--expose-gc', ...(bare ? flags : asStarted(flags))];
  const rpc = await forkChild(script, `${name} server`, { execArgv });
  const options = { maxConnections: 25_000, heartbeatMs: 180_000 };
  const { tcpPort, publicKey } = await rpc.call<{ tcpPort: number; publicKey: string }>('start', { options });
  // As in every earlier run, the baseline follows the RSA bench (the bare server has none).
  const rsa = bare ? undefined : await rpc.call<{ rsaDecryptMicros: number }>('rsaBench');
  const base = await stats(rpc, true);
  const clients = await forkFleets(params.clients, 'client');
  const o = {
    mode: bare ? ('bare' as const) : ('bind' as const),
    concurrency: params.concurrency,
    maxAttempts: params.maxAttempts,
    publicKey,
    // About what a device sends to get bound: a Handshake (13 + 128) and a Bind (13 + 32).
    barePayloadBytes: 186,
  };
  const ramp = await measure(rpc, clients, false, () => bindUsers(clients, tcpPort, n, o, rpc, log));
  const r = ramp.out;
  log(`${name}: ramp done: ${r.bound} bound in ${r.seconds} s (${r.bindsPerSec}/s)`);
  await sleep(params.settleSeconds * 1000);
  const after = await stats(rpc, true);
  const mem = memoryFigures(base, after);
  log(
    `${name}: ${after.connections} held, ${mem.rssPerConnectionBytes} B RSS, ${mem.heapPerConnectionBytes} B heap each`,
  );
  const idle = await measure(rpc, clients, false, () =>
    sleep((bare ? Math.min(params.idleSeconds, 5) : params.idleSeconds) * 1000),
  );
  const serverIdleCpuPercent = round((100 * idle.serverUs) / ((idle.s1.at - idle.s0.at) * 1000), 1);
  const fleets = await fleetStats(clients);
  await Promise.all(clients.map((c) => c.call('drop')));
  await Promise.all([...clients.map((c) => c.stop()), rpc.stop('stop', 30_000)]);
  const out = { connections: after.connections, connectSecondsForAll: r.seconds, errors: r.errors };
  if (bare) return { ...out, connectsPerSec: r.bindsPerSec, ...mem, serverIdleCpuPercent };
  log(`mpush: idle ${serverIdleCpuPercent}% server CPU; ${sum(fleets, (s) => s.held)} held by clients`);
  return {
    ...out,
    boundConnections: after.bound,
    heldAfterIdle: {
      server: idle.s1.connections,
      serverBound: idle.s1.bound,
      clients: sum(fleets, (s) => s.held),
      lost: sum(fleets, (s) => s.lost),
    },
    handshakesPerSec: r.bindsPerSec,
    serverCpuUsPerHandshakeBind: round(ramp.serverUs / Math.max(1, r.bound), 1),
    rsaDecryptMicros: round(rsa!.rsaDecryptMicros, 1),
    cpuPercentDuringRamp: ramp.report.cpuPercent,
    ...mem,
    serverIdleCpuPercent,
    cpuPercentIdle: idle.report.cpuPercent,
    latencyMsWorstProcess: r.latencyMsWorstProcess,
    serverCounters: after.counters,
  };
}

type MpushFigures = Extract<Awaited<ReturnType<typeof hold>>, { boundConnections: number }>;

async function main(): Promise<number> {
  const ports = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().replace(/\s+/g, '-');
  const host = machine({ ephemeralPorts: ports }); // before the run: its load average is the machine's
  const bare = params.noBare ? undefined : await hold(true, params.n);
  const m = (await hold(false, params.n)) as MpushFigures;
  printReport({
    bench: 'connections',
    params,
    machine: host,
    mpush: m,
    bare,
    targets: targets([
      ['connections', m.boundConnections, { atLeast: 19_000 }],
      ['rssPerConnectionBytes', m.rssPerConnectionBytes, { atMost: 4096 }],
      ['serverCpuUsPerHandshakeBind', m.serverCpuUsPerHandshakeBind, { atMost: 150 }],
      ['handshakesPerSec', m.handshakesPerSec, { atLeast: 6000 }],
    ]),
  });
  return m.boundConnections >= params.n && m.heldAfterIdle.serverBound >= params.n ? 0 : 1;
}

runMain(main, log);
