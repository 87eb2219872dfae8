// The business server: one PushSender (the TS push SDK, default options but a long route cache)
// connected to the node's gateway, in its own process. Forked by bench/push/main.ts, driven over
// IPC. Routes come from the default route source (GATEWAY_ROUTE_QUERY to the gateway); the
// warm-up pushes once to every user, which fills the cache, so the measured phases never wait
// on a route lookup.
//
// Commands:
//   start      {host, port, timeoutMs, routeCacheMs}    creates and starts the PushSender
//   warmup     {users, concurrency}                     one AUTO_ACK push to each user 0..users-1
//   closed     {users, total, concurrency}              closed loop: `concurrency` requests in
//              flight, each result starts the next, to random users, until `total` were sent
//   open       {users, rate, durationMs}                open loop: `rate` pushes/s on a schedule,
//              whatever the results do
//   broadcast  {content}                                PushSender.broadcast, NO_ACK; returns the
//              Date.now() just before the call (sentAt) and at its reply (the node's task done)
// Latency is per request: from the call of PushSender.send to its result (success = acked by
// the device), in ms from performance.now().

import { performance } from 'node:perf_hooks';
import type { PushResult } from '../../src/client/push/index.js';
import { PushSender } from '../../src/client/push/index.js';
import { type Percentiles, percentiles, type Request, round, serveRequests, watchLoop } from './ipc.js';

export interface PhaseResult {
  sent: number;
  results: { success: number; failure: number; offline: number; timeout: number };
  /** A few distinct reasons of non-success results, with counts. */
  reasons: Record<string, number>;
  seconds: number;
  perSec: number;
  /** Acked (success) results per second of the phase. */
  ackedPerSec: number;
  latencyMs: Percentiles;
  /** Node-side time from gateway receipt to the device's ack (the node's own time points, ms resolution). */
  nodeReceivedToAckedMs: Percentiles;
  /** Open loop only: how late the pushes left against their schedule. */
  scheduleLagMs?: Percentiles;
  startedAt: number;
  endedAt: number;
}

let sender: PushSender | undefined;
let content = Buffer.alloc(0);
let userIds: string[] = [];

function users(n: number): string[] {
  if (userIds.length !== n) userIds = Array.from({ length: n }, (_, i) => `user-${i}`);
  return userIds;
}

class Phase {
  readonly lat: Float64Array;
  readonly node: Float64Array;
  nLat = 0;
  nNode = 0;
  sent = 0;
  readonly results = { success: 0, failure: 0, offline: 0, timeout: 0 };
  readonly reasons: Record<string, number> = {};
  readonly t0 = performance.now();
  readonly startedAt = Date.now();

  constructor(capacity: number) {
    this.lat = new Float64Array(capacity);
    this.node = new Float64Array(capacity);
  }

  record(r: PushResult, ms: number): void {
    this.results[r.result]++;
    if (this.nLat < this.lat.length) this.lat[this.nLat++] = ms;
    if (r.result !== 'success') {
      const key = `${r.result}: ${r.reason ?? ''}`;
      if (this.reasons[key] !== undefined || Object.keys(this.reasons).length < 20)
        this.reasons[key] = (this.reasons[key] ?? 0) + 1;
      return;
    }
    const tp = r.timePoints;
    if (tp && tp.acked !== undefined && tp.received !== undefined && this.nNode < this.node.length)
      this.node[this.nNode++] = tp.acked - tp.received;
  }

  fail(err: unknown, ms: number): void {
    this.results.failure++;
    if (this.nLat < this.lat.length) this.lat[this.nLat++] = ms;
    const key = `thrown: ${err instanceof Error ? err.message : String(err)}`;
    this.reasons[key] = (this.reasons[key] ?? 0) + 1;
  }

  finish(): PhaseResult {
    const seconds = (performance.now() - this.t0) / 1000;
    return {
      sent: this.sent,
      results: this.results,
      reasons: this.reasons,
      seconds: round(seconds, 3),
      perSec: round(this.sent / seconds),
      ackedPerSec: round(this.results.success / seconds),
      latencyMs: percentiles(this.lat, this.nLat),
      nodeReceivedToAckedMs: percentiles(this.node, this.nNode),
      startedAt: this.startedAt,
      endedAt: Date.now(),
    };
  }
}

/** One push to one user; records its latency and result in `phase`. */
function pushOne(phase: Phase, userId: string): Promise<void> {
  const t = performance.now();
  phase.sent++;
  return sender!.send({ userId, content, ackModel: 'AUTO_ACK' }).then(
    (rs) => {
      const ms = performance.now() - t;
      for (const r of rs) phase.record(r, ms);
    },
    (err: unknown) => phase.fail(err, performance.now() - t),
  );
}

/** `total` pushes with `concurrency` in flight; `pick(i)` names the user of push i. */
async function closedLoop(
  total: number,
  concurrency: number,
  pick: (i: number) => string,
): Promise<PhaseResult> {
  const phase = new Phase(total);
  let issued = 0;
  const worker = async () => {
    while (issued < total) {
      const i = issued++;
      await pushOne(phase, pick(i));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  return phase.finish();
}

/** Pushes at a fixed `rate` for `durationMs`, on a 1 ms schedule, whatever the results do. */
function openLoop(n: number, rate: number, durationMs: number): Promise<PhaseResult> {
  const ids = users(n);
  const total = Math.round((rate * durationMs) / 1000);
  const phase = new Phase(total);
  const lag = new Float64Array(total);
  const inflight: Array<Promise<void>> = [];
  return new Promise((resolve) => {
    const t0 = performance.now();
    const tick = () => {
      const now = performance.now();
      const due = Math.min(total, Math.floor(((now - t0) * rate) / 1000) + 1);
      while (phase.sent < due) {
        const i = phase.sent;
        lag[i] = now - (t0 + (i * 1000) / rate);
        inflight.push(pushOne(phase, ids[(Math.random() * n) | 0]!));
      }
      if (phase.sent < total) {
        setTimeout(tick, 1);
        return;
      }
      Promise.all(inflight).then(() => {
        const r = phase.finish();
        r.scheduleLagMs = percentiles(lag, total);
        resolve(r);
      });
    };
    tick();
  });
}

const loop = watchLoop();
serveRequests({
  loop: () => loop.take(),
  start: async (req: Request) => {
    sender = PushSender.create({
      gateways: [{ host: String(req.host), port: Number(req.port) }],
      timeout: Number(req.timeoutMs),
      routeCacheMs: Number(req.routeCacheMs),
    });
    await sender.start();
    content = Buffer.from(String(req.content), 'utf8');
    return true;
  },
  warmup: (req: Request) => {
    const ids = users(Number(req.users));
    return closedLoop(ids.length, Number(req.concurrency), (i) => ids[i]!);
  },
  closed: (req: Request) => {
    const n = Number(req.users);
    const ids = users(n);
    return closedLoop(Number(req.total), Number(req.concurrency), () => ids[(Math.random() * n) | 0]!);
  },
  open: (req: Request) => openLoop(Number(req.users), Number(req.rate), Number(req.durationMs)),
  broadcast: async (req: Request) => {
    const sentAt = Date.now();
    const result = await sender!.broadcast({
      broadcast: true,
      content: Buffer.from(String(req.content), 'utf8'),
      ackModel: 'NO_ACK',
      timeout: 60_000,
    });
    return { sentAt, repliedAt: Date.now(), result };
  },
  cpu: () => process.cpuUsage(),
  exit: async () => {
    await sender?.stop();
    setTimeout(() => process.exit(0), 20);
    return true;
  },
});
process.send?.({ event: 'ready' });
