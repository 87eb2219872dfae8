import { once } from 'node:events';
import { Redis } from 'ioredis';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';

let shared: Promise<TestRedis> | undefined;
let n = 0;

/** One test Redis per test file; the file registers `after(closeTestRedis)`. */
export function testRedis(): Promise<TestRedis> {
  shared ??= startTestRedis();
  return shared;
}

/** Deletes this file's keys and closes the shared test Redis. */
export async function closeTestRedis(): Promise<void> {
  if (shared) await (await shared).close();
  shared = undefined;
}

/** A key prefix of its own under this run's prefix: one per test, so tests never share keys. */
export async function freshPrefix(): Promise<string> {
  return `${(await testRedis()).prefix}${++n}:`;
}

/** A new connection to the test Redis (as another node would have); the caller closes it. */
export async function newClient(): Promise<Redis> {
  const client = new Redis((await testRedis()).url);
  // Ready before use: ioredis writes a SUBSCRIBE issued while it is still connecting at once, and
  // its own ready check then fails "Connection in subscriber mode".
  await once(client, 'ready');
  return client;
}
