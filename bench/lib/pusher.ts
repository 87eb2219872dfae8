// The business server: a child process pushing to the node(s) under test. Latency is per request,
// from the call to its result, in ms.
//   start      `sender` (a PushSender on `gateways`) or `http` (POST /api/push to `httpUrl`, keep-alive);
//              with `store`, pushes are kept for later and sent as `msg` (each carries its messageId)
//   load       AUTO_ACK pushes to `users` (a user, or a list: a batch push), `concurrency` in flight,
//              until `total` were sent, or `warmupMs` then a window of `durationMs` whose edges are
//              announced (`{event: 'window', edge}`) so the driver samples at the same instants
//   open       `rate` pushes/s on a 1 ms schedule for `durationMs`, whatever the results do
//   broadcast  PushSender.broadcast, NO_ACK: Date.now() before the call (sentAt) and at its reply

import { Agent, request } from 'node:http';
import { type PushResult, PushSender } from '../../src/client/push/index.js';
import { percentiles, round } from './report.js';
import { emit, type Request, serveRequests, sleep } from './rpc.js';

export interface PusherOptions {
  mode: 'sender' | 'http';
  gateways: Array<{ host: string; port: number }>;
  routeCacheMs: number;
  timeoutMs: number;
  httpUrl?: string;
  concurrency?: number;
  content: string;
  store?: boolean;
}

export type LoadParams = {
  users: Array<string | string[]>;
  concurrency: number;
  random?: boolean;
  total?: number;
  warmupMs?: number;
  durationMs?: number;
};

type Outcome = Pick<PushResult, 'reason' | 'redirects' | 'timePoints'> & { result: string; stored?: boolean };

let options: PusherOptions | undefined;
let content = Buffer.alloc(0);
let sender: PushSender | undefined;
let agent: Agent | undefined;

async function start(o: PusherOptions): Promise<boolean> {
  await stop();
  options = o;
  content = Buffer.from(o.content, 'utf8');
  if (o.mode === 'http') {
    agent = new Agent({ keepAlive: true, maxSockets: o.concurrency, maxFreeSockets: o.concurrency });
    return true;
  }
  const { gateways, routeCacheMs } = o;
  sender = PushSender.create({ gateways, routeCacheMs, timeout: o.timeoutMs, clientId: 'bench' });
  await sender.start();
  return true;
}

async function stop(): Promise<void> {
  await sender?.stop();
  agent?.destroy();
  sender = agent = undefined;
}

const failed = (result: string, reason: string): Outcome[] => [{ result, reason, redirects: 0 }];

/** Whom a request pushes to, what, and whether it is kept for later. */
function push<C>(to: string | string[], body: C) {
  const who = typeof to === 'string' ? { userId: to } : { userIds: to };
  const o = options!;
  const what = o.store ? { msg: { msgType: 2, content: o.content }, store: true } : { content: body };
  return { ...who, ...what, ackModel: 'AUTO_ACK' as const };
}

function post(to: string | string[]): Promise<Outcome[]> {
  const o = options!;
  const body = JSON.stringify({ ...push(to, o.content), timeout: o.timeoutMs });
  const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
  return new Promise((resolve) => {
    const req = request(new URL('/api/push', o.httpUrl), { method: 'POST', agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) return resolve(failed(`http ${res.statusCode}`, text.slice(0, 200)));
        try {
          resolve((JSON.parse(text) as { results: Outcome[] }).results);
        } catch (err) {
          resolve(failed('bad reply', (err as Error).message));
        }
      });
    });
    req.on('error', (err) => resolve(failed('http error', err.message)));
    req.end(body);
  });
}

function send(to: string | string[]): Promise<Outcome[]> {
  const r = sender ? sender.send(push(to, content)) : post(to);
  return r.catch((err: Error) => failed('failure', `thrown: ${err.message}`));
}

/** What one phase saw: results and latencies of the requests completed while it counted. */
class Phase {
  readonly lat: number[] = [];
  /** The node's own time from gateway receipt to the device's ack. */
  readonly node: number[] = [];
  sent = 0;
  redirects = 0;
  /** Results `offline` with `stored: true`: kept for later. */
  stored = 0;
  counting = true;
  readonly results: Record<string, number> = { success: 0, failure: 0, offline: 0, timeout: 0 };
  readonly reasons: Record<string, number> = {};
  t0 = performance.now();
  t1 = 0;

  /** One request; its results are recorded if it completes while the phase counts. */
  async push(to: string | string[]): Promise<void> {
    this.sent++;
    const t = performance.now();
    const rs = await send(to);
    const ms = performance.now() - t;
    for (const r of rs) {
      if (!this.counting) continue;
      this.results[r.result] = (this.results[r.result] ?? 0) + 1;
      this.redirects += r.redirects ?? 0;
      if (r.stored && r.result === 'offline') this.stored++;
      this.lat.push(ms);
      const tp = r.timePoints;
      if (r.result !== 'success') {
        const key = `${r.result}: ${r.reason ?? ''}`;
        if (key in this.reasons || Object.keys(this.reasons).length < 20)
          this.reasons[key] = (this.reasons[key] ?? 0) + 1;
      } else if (tp?.acked !== undefined && tp.received !== undefined) this.node.push(tp.acked - tp.received);
    }
  }

  begin(): void {
    this.counting = true;
    this.t0 = performance.now();
  }

  end(): void {
    this.t1 ||= performance.now();
    this.counting = false;
  }

  finish() {
    this.end();
    const ms = this.t1 - this.t0;
    const { sent, results, reasons, redirects, stored } = this;
    const acked = results.success!;
    return {
      mode: options?.mode ?? 'sender',
      sent,
      results,
      reasons,
      acked,
      redirects,
      stored,
      seconds: round(ms / 1000, 3),
      /** Acked (success) results per second of the phase. */
      ackedPerSec: round((acked * 1000) / ms),
      latencyMs: percentiles(Float64Array.from(this.lat)),
      nodeReceivedToAckedMs: percentiles(Float64Array.from(this.node)),
      /** Open loop only: how late the pushes left against their schedule. */
      scheduleLagMs: undefined as ReturnType<typeof percentiles> | undefined,
    };
  }
}
export type PhaseResult = ReturnType<Phase['finish']>;

async function load(p: LoadParams): Promise<PhaseResult> {
  const total = p.total ?? Number.POSITIVE_INFINITY;
  const phase = new Phase();
  phase.counting = !p.durationMs;
  let issued = 0;
  const slot = async () => {
    while (issued < total && phase.t1 === 0) {
      const i = issued++;
      await phase.push(p.users[p.random ? (Math.random() * p.users.length) | 0 : i % p.users.length]!);
    }
  };
  const slots = Array.from({ length: Math.min(p.concurrency, total) }, slot);
  if (p.durationMs) {
    await sleep(p.warmupMs ?? 0);
    phase.begin();
    emit('window', { edge: 'start' });
    await sleep(p.durationMs);
    phase.end();
    emit('window', { edge: 'end' });
  }
  await Promise.all(slots);
  return phase.finish();
}

function openLoop(users: Array<string | string[]>, rate: number, durationMs: number): Promise<PhaseResult> {
  const total = Math.round((rate * durationMs) / 1000);
  const phase = new Phase();
  const lag = new Float64Array(total);
  const inflight: Array<Promise<void>> = [];
  return new Promise((resolve) => {
    const tick = () => {
      const now = performance.now();
      const due = Math.min(total, Math.floor(((now - phase.t0) * rate) / 1000) + 1);
      while (phase.sent < due) {
        lag[phase.sent] = now - (phase.t0 + (phase.sent * 1000) / rate);
        inflight.push(phase.push(users[(Math.random() * users.length) | 0]!));
      }
      if (phase.sent < total) return void setTimeout(tick, 1);
      Promise.all(inflight).then(() => resolve({ ...phase.finish(), scheduleLagMs: percentiles(lag) }));
    };
    tick();
  });
}

serveRequests({
  start: (req: Request) => start(req.options as PusherOptions),
  load: (req: Request) => load(req.params as LoadParams),
  open: (req: Request) =>
    openLoop(req.users as LoadParams['users'], Number(req.rate), Number(req.durationMs)),
  broadcast: async (req: Request) => {
    const sentAt = Date.now();
    const content = Buffer.from(String(req.content), 'utf8');
    const result = await sender!.broadcast({ broadcast: true, content, ackModel: 'NO_ACK', timeout: 60_000 });
    return { sentAt, repliedAt: Date.now(), result };
  },
  exit: async () => {
    await stop();
    setTimeout(() => process.exit(0), 20);
    return true;
  },
});
