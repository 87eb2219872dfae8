import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort } from './free-port.js';

/**
 * A Redis for tests: the one at `REDIS_URL` (default redis://127.0.0.1:6379) when it answers,
 * otherwise a private `redis-server` spawned on a free port. Neither → a clear error naming
 * what to install. Tests never skip for want of Redis.
 */
export interface TestRedis {
  url: string;
  /** A key prefix unique to this test run and call, so runs never collide. */
  prefix: string;
  client: Redis;
  /** Deletes this run's keys, closes the client and stops a spawned server. */
  close(): Promise<void>;
}

let counter = 0;

async function ping(url: string): Promise<boolean> {
  const c = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 1000,
  });
  c.on('error', () => {});
  try {
    await c.connect();
    return (await c.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    c.disconnect();
  }
}

async function spawnRedis(): Promise<{ url: string; proc: ChildProcess }> {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error(
      'No Redis answers at REDIS_URL (default redis://127.0.0.1:6379) and redis-server is not installed: ' +
        'install it (apt-get install redis-server) or set REDIS_URL to a running Redis.',
    );
  }
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 50; i++) {
    if (await ping(url)) return { url, proc };
    await new Promise((r) => setTimeout(r, 100));
  }
  proc.kill();
  throw new Error(`spawned redis-server on port ${port} did not answer within 5 s`);
}

export async function startTestRedis(): Promise<TestRedis> {
  let url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  let proc: ChildProcess | undefined;
  if (!(await ping(url))) {
    ({ url, proc } = await spawnRedis());
  }
  const run = process.env.MPUSH_TEST_RUN ?? `${process.pid}-${Date.now()}`;
  const prefix = `mpt:${run}:${process.pid}:${++counter}:`;
  const client = new Redis(url);
  return {
    url,
    prefix,
    client,
    async close() {
      try {
        let cursor = '0';
        do {
          const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
          cursor = next;
          if (keys.length) await client.del(...keys);
        } while (cursor !== '0');
      } finally {
        client.disconnect();
        proc?.kill();
      }
    },
  };
}
