import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DeviceClient, MemorySessionStorage } from '../../src/client/device/index.js';
import type { PushResult } from '../../src/client/push/types.js';
import { decodeRoute } from '../../src/cluster/redis-route-store.js';
import { loadPublicKey } from '../../src/crypto/index.js';
import { api, eventually, liveNodeIds, type NodeProcess, spawnNode } from '../helpers/node-process.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';
import { mpushDefaultKeys } from '../helpers/shared.js';

/**
 * Routing consistency under churn: 1,000 devices bind, move between three node processes and
 * leave at random, a few of them (HOT) again and again; once it stops, Redis's routes (and each node's online set) are exactly the
 * devices that are connected, where they are connected.
 */
const SECONDS = Number(process.env.MPUSH_CHURN_SECONDS ?? 30);
const DEVICES = 1000;
/** Operations in flight at once. */
const WORKERS = 12;
/**
 * A few devices take a share of the operations: phones on a bad network, each moving again within
 * milliseconds of its last bind, while a node may still be writing that bind's route.
 */
const HOT = 20;
const HOT_SHARE = 0.3;
const SEED = Number(process.env.MPUSH_CHURN_SEED ?? Date.now() % 2 ** 31);

/** mulberry32: a seeded PRNG, so a failing run can be replayed with MPUSH_CHURN_SEED. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

interface Slot {
  userId: string;
  deviceId: string;
  /** Kept across this device's connections: a move fast-connects with the session in Redis. */
  storage: MemorySessionStorage;
  client: DeviceClient | undefined;
  /** Index of the node the current client is bound on (the ground truth). */
  node: number | undefined;
  busy: boolean;
}

describe('routing consistency under churn (three node processes, 1,000 devices)', () => {
  let redis: TestRedis;
  let nodes: NodeProcess[] = [];
  const publicKey = loadPublicKey(mpushDefaultKeys().publicKey);
  const slots: Slot[] = [];
  /** Things that must not happen: a live device kicked or dropped, an operation failing. */
  const anomalies: string[] = [];
  const counts = { binds: 0, moves: 0, leaves: 0, fast: 0 };

  before(async () => {
    redis = await startTestRedis();
    const opts = { redisUrl: redis.url, prefix: redis.prefix, registryTtlMs: 3000, registryRefreshMs: 500 };
    nodes = await Promise.all([spawnNode(opts), spawnNode(opts), spawnNode(opts)]);
    const ids = nodes.map((n) => n.id).sort();
    await eventually(
      async () => JSON.stringify(await liveNodeIds(redis.client, redis.prefix)) === JSON.stringify(ids),
      'the registry to list the three nodes',
    );
    for (let i = 0; i < DEVICES; i++) {
      slots.push({
        userId: `churn-${i}`,
        deviceId: `churn-dev-${process.pid}-${i}`,
        storage: new MemorySessionStorage(),
        client: undefined,
        node: undefined,
        busy: false,
      });
    }
  });

  after(async () => {
    await Promise.all(slots.map((s) => s.client?.close()));
    await Promise.all(nodes.map((n) => n.stop()));
    await redis?.close();
  });

  async function bind(slot: Slot, node: number): Promise<void> {
    const client = new DeviceClient({
      servers: [{ host: '127.0.0.1', port: nodes[node]!.tcpPort }],
      publicKey,
      deviceId: slot.deviceId,
      osName: 'android',
      autoReconnect: false,
      sessionStorage: slot.storage,
    });
    client.on('handshake', (h) => {
      if (h.fast) counts.fast++;
    });
    client.on('kick', () => anomalies.push(`${slot.userId} kicked on node ${node}`));
    client.on('disconnected', ({ reason }) => {
      if (slot.client === client) anomalies.push(`${slot.userId} dropped by node ${node}: ${reason}`);
    });
    try {
      await client.connect();
      await client.bindUser(slot.userId);
    } catch (err) {
      anomalies.push(`${slot.userId} bind on node ${node}: ${(err as Error).message}`);
      await client.close();
      return;
    }
    slot.client = client;
    slot.node = node;
    counts.binds++;
  }

  async function leave(slot: Slot): Promise<void> {
    const client = slot.client!;
    slot.client = undefined;
    slot.node = undefined;
    await client.close();
  }

  /** What differs between Redis (routes and online sets), the nodes and the ground truth. */
  async function mismatches(): Promise<string[]> {
    const out: string[] = [];
    const routes = new Map<string, Record<string, string>>();
    let cursor = '0';
    do {
      const [next, keys] = await redis.client.scan(cursor, 'MATCH', `${redis.prefix}ur:*`, 'COUNT', 1000);
      cursor = next;
      const pipe = redis.client.pipeline();
      for (const k of keys) pipe.hgetall(k);
      const replies = (await pipe.exec()) ?? [];
      keys.forEach((k, i) => {
        const v = replies[i]?.[1] as Record<string, string> | undefined;
        if (v && Object.keys(v).length > 0) routes.set(k.slice(`${redis.prefix}ur:`.length), v);
      });
    } while (cursor !== '0');
    const known = new Set(slots.map((s) => s.userId));
    for (const u of routes.keys()) if (!known.has(u)) out.push(`route for unknown user ${u}`);
    for (const s of slots) {
      const hash = routes.get(s.userId);
      if (s.node === undefined) {
        if (hash) out.push(`${s.userId} is disconnected but has a route ${JSON.stringify(hash)}`);
        continue;
      }
      const n = nodes[s.node]!;
      const route = hash?.['1'] ? decodeRoute(hash['1']) : undefined;
      if (!route) out.push(`${s.userId} is bound on node ${s.node} but has no route`);
      else if (route.port !== n.gatewayPort || !route.connId.startsWith(`${n.id}:`))
        out.push(`${s.userId} is bound on node ${s.node} (${n.id}) but its route says ${route.connId}`);
      else if (route.deviceId !== s.deviceId) out.push(`${s.userId}: route of device ${route.deviceId}`);
      if (hash && Object.keys(hash).length !== 1) out.push(`${s.userId}: fields ${Object.keys(hash)}`);
      if (s.client?.boundUserId !== s.userId || s.client.state !== 'ready')
        out.push(`${s.userId}: client ${s.client?.state}, bound to ${s.client?.boundUserId}`);
    }
    for (let i = 0; i < nodes.length; i++) {
      const n = nodes[i]!;
      const expected = slots
        .filter((s) => s.node === i)
        .map((s) => s.userId)
        .sort();
      const online = (await redis.client.zrange(`${redis.prefix}oul:${n.id}`, 0, -1)).sort();
      if (JSON.stringify(online) !== JSON.stringify(expected)) {
        const extra = online.filter((u) => !expected.includes(u));
        const missing = expected.filter((u) => !online.includes(u));
        out.push(`online set of node ${i}: extra [${extra.slice(0, 5)}] missing [${missing.slice(0, 5)}]`);
      }
      const { boundConnections } = await api<{ boundConnections: number }>(n, 'GET', '/api/stats');
      if (boundConnections !== expected.length)
        out.push(`node ${i} holds ${boundConnections} bound connections, ${expected.length} expected`);
    }
    return out;
  }

  it(`routes match the live connections after ${SECONDS} s of binds, moves and disconnects`, async (t) => {
    t.diagnostic(`seed ${SEED} (MPUSH_CHURN_SEED), ${SECONDS} s (MPUSH_CHURN_SECONDS)`);
    const random = prng(SEED);
    const pick = (n: number) => Math.floor(random() * n);

    // Everyone binds first, spread over the nodes.
    let next = 0;
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        while (next < slots.length) {
          const i = next++;
          await bind(slots[i]!, i % nodes.length);
        }
      }),
    );
    assert.deepEqual(anomalies, []);

    // Churn: each worker takes a free device and binds it, moves it or disconnects it.
    const deadline = Date.now() + SECONDS * 1000;
    await Promise.all(
      Array.from({ length: WORKERS }, async () => {
        while (Date.now() < deadline) {
          const among = random() < HOT_SHARE ? HOT : slots.length;
          let slot = slots[pick(among)]!;
          while (slot.busy) slot = slots[pick(among)]!;
          slot.busy = true;
          try {
            if (slot.client === undefined) {
              await bind(slot, pick(nodes.length));
            } else if (random() < 0.65) {
              const to = (slot.node! + 1 + pick(nodes.length - 1)) % nodes.length;
              await leave(slot);
              await bind(slot, to);
              counts.moves++;
            } else {
              await leave(slot);
              counts.leaves++;
            }
          } finally {
            slot.busy = false;
          }
          // Air between operations: churn, not a handshake flood that starves the other test files.
          await new Promise((r) => setTimeout(r, pick(40)));
        }
      }),
    );
    const connected = slots.filter((s) => s.client).length;
    t.diagnostic(
      `binds ${counts.binds} (fast ${counts.fast}), moves ${counts.moves}, leaves ${counts.leaves}; ${connected} connected at the end`,
    );
    assert.ok(counts.moves > 0 && counts.leaves > 0, 'devices moved and left');
    assert.ok(counts.fast > 0, 'moves fast-connect with the session in Redis');

    // Settle: the nodes' last writes land; then Redis must be exactly the ground truth.
    let last: string[] = [];
    try {
      await eventually(
        async () => {
          last = await mismatches();
          return last.length === 0;
        },
        'Redis to match the live connections',
        20_000,
        250,
      );
    } catch {
      assert.deepEqual(last.slice(0, 20), [], `${last.length} mismatches`);
    }
    assert.deepEqual(anomalies.slice(0, 20), [], `${anomalies.length} anomalies`);

    // End to end: a sample of users, through a node each did not bind on.
    const sample = Array.from({ length: 30 }, () => slots[pick(slots.length)]!);
    for (const s of sample) {
      const via = nodes[((s.node ?? 0) + 1) % nodes.length]!;
      const { results } = await api<{ results: PushResult[] }>(via, 'POST', '/api/push', {
        userId: s.userId,
        content: 'after the churn',
        ackModel: 'AUTO_ACK',
      });
      assert.equal(results[0]!.result, s.node === undefined ? 'offline' : 'success', JSON.stringify(results));
    }
  });
});
