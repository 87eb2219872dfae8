// The pusher process for bench/cluster: single-user AUTO_ACK pushes, `concurrency` in flight, for
// a warm-up then a measured window. Forked by main.ts, driven over IPC (`push`, `exit`); emits
// `{event:'window', edge:'start'|'end'}` at the window's edges so the driver samples Redis
// INFO commandstats and per-process CPU at the same instants.
//
// Modes:
//   sender  a PushSender (src/client/push) with gateways = [the first node]; routes from a
//           GatewayRouteSource via that node (the PushSender default: GATEWAY_ROUTE_QUERY, one
//           HGETALL per user on the node) or, with routeSource 'redis', a StoreRouteSource over a
//           RedisRouteStore read by the pusher itself. Routes are cached `routeCacheMs`. Each push
//           goes straight to the gateway of the user's node.
//   http    POST /api/push {userId, content, ackModel: AUTO_ACK} to one node's HTTP port over
//           keep-alive connections (one per slot); that node pushes through its in-process
//           PushSender, i.e. forwards to the user's node's gateway when the user is elsewhere.

import { Agent, request } from 'node:http';
import { Redis } from 'ioredis';
import { PushSender } from '../../src/client/push/push-sender.js';
import { StoreRouteSource } from '../../src/client/push/route-source.js';
import { RedisRouteStore } from '../../src/cluster/redis-route-store.js';
import { emit, type Percentiles, percentiles, type Request, serveRequests } from './ipc.js';

export interface PushParams {
  mode: 'sender' | 'http';
  /** sender: gateways (the first one seeds route queries). */
  gateways: Array<{ host: string; port: number }>;
  routeSource: 'gateway' | 'redis';
  redis: string;
  prefix: string;
  routeCacheMs: number;
  /** http: base URL of the node the pushes enter at. */
  httpUrl: string;
  users: string[];
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  timeoutMs: number;
  contentBytes: number;
}

export interface PushReport {
  mode: string;
  windowMs: number;
  /** Completed inside the window, by result. */
  results: Record<string, number>;
  acked: number;
  pushesPerSec: number;
  latencyMs: Percentiles;
  redirects: number;
  /** Sends completed during the warm-up (route cache filling), by result. */
  warmup: Record<string, number>;
  sampleErrors: string[];
}

async function runPush(p: PushParams): Promise<PushReport> {
  const content = 'x'.repeat(p.contentBytes);
  let redis: Redis | undefined;
  let sender: PushSender | undefined;
  let agent: Agent | undefined;
  let send: (userId: string) => Promise<{ result: string; redirects: number; reason?: string }>;

  if (p.mode === 'sender') {
    if (p.routeSource === 'redis') redis = new Redis(p.redis, { maxRetriesPerRequest: 3 });
    sender = PushSender.create({
      gateways: p.gateways,
      ...(redis ? { routeSource: new StoreRouteSource(new RedisRouteStore(redis, p.prefix)) } : {}),
      routeCacheMs: p.routeCacheMs,
      timeout: p.timeoutMs,
      clientId: 'bench-cluster',
    });
    await sender.start();
    const s = sender;
    send = async (userId) => {
      const [r] = await s.send({ userId, content, ackModel: 'AUTO_ACK', timeout: p.timeoutMs });
      return { result: r!.result, redirects: r!.redirects, ...(r!.reason ? { reason: r!.reason } : {}) };
    };
  } else {
    agent = new Agent({ keepAlive: true, maxSockets: p.concurrency, maxFreeSockets: p.concurrency });
    const url = new URL('/api/push', p.httpUrl);
    const a = agent;
    send = (userId) =>
      new Promise((resolve) => {
        const body = JSON.stringify({ userId, content, ackModel: 'AUTO_ACK', timeout: p.timeoutMs });
        const req = request(
          url,
          {
            method: 'POST',
            agent: a,
            headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              const text = Buffer.concat(chunks).toString('utf8');
              if (res.statusCode !== 200) {
                return resolve({
                  result: `http ${res.statusCode}`,
                  redirects: 0,
                  reason: text.slice(0, 200),
                });
              }
              try {
                const r = (
                  JSON.parse(text) as {
                    results: Array<{ result: string; redirects: number; reason?: string }>;
                  }
                ).results[0]!;
                resolve({
                  result: r.result,
                  redirects: r.redirects ?? 0,
                  ...(r.reason ? { reason: r.reason } : {}),
                });
              } catch (err) {
                resolve({ result: 'bad reply', redirects: 0, reason: (err as Error).message });
              }
            });
          },
        );
        req.on('error', (err) => resolve({ result: 'http error', redirects: 0, reason: err.message }));
        req.end(body);
      });
  }

  const lat = new Float64Array(2_000_000);
  let n = 0;
  const results: Record<string, number> = {};
  const warmup: Record<string, number> = {};
  const sampleErrors: string[] = [];
  let redirects = 0;
  let phase: 'warmup' | 'window' | 'done' = 'warmup';
  let windowStart = 0;
  let windowEnd = 0;
  let next = 0;

  const slot = async () => {
    while (phase !== 'done') {
      const userId = p.users[next++ % p.users.length]!;
      const t0 = performance.now();
      let r: { result: string; redirects: number; reason?: string };
      try {
        r = await send(userId);
      } catch (err) {
        r = { result: 'exception', redirects: 0, reason: (err as Error).message };
      }
      const t1 = performance.now();
      if (r.result !== 'success' && sampleErrors.length < 5)
        sampleErrors.push(`${userId}: ${r.result} ${r.reason ?? ''}`);
      // By completion time: what completes inside the window counts (and its latency).
      if (phase === 'warmup') {
        warmup[r.result] = (warmup[r.result] ?? 0) + 1;
      } else if (phase === 'window') {
        results[r.result] = (results[r.result] ?? 0) + 1;
        redirects += r.redirects;
        if (r.result === 'success' && n < lat.length) lat[n++] = t1 - t0;
      }
    }
  };
  const slots = Array.from({ length: p.concurrency }, slot);
  await new Promise((r) => setTimeout(r, p.warmupMs));
  windowStart = performance.now();
  phase = 'window';
  emit('window', { edge: 'start' });
  await new Promise((r) => setTimeout(r, p.durationMs));
  windowEnd = performance.now();
  phase = 'done';
  emit('window', { edge: 'end' });
  await Promise.all(slots);
  await sender?.stop();
  agent?.destroy();
  redis?.disconnect();
  const windowMs = windowEnd - windowStart;
  const acked = results.success ?? 0;
  return {
    mode: p.mode,
    windowMs: Math.round(windowMs),
    results,
    acked,
    pushesPerSec: Math.round((acked * 1000) / windowMs),
    latencyMs: percentiles(lat, n),
    redirects,
    warmup,
    sampleErrors,
  };
}

serveRequests({
  push: (req: Request) => runPush(req.params as PushParams),
  exit: () => {
    setTimeout(() => process.exit(0), 20);
    return true;
  },
});
emit('ready');
