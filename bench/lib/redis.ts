// Redis as the benchmarks read it: the commands it ran (INFO commandstats, every client's, those run
// inside scripts and MULTI included) and the deletion of one run's keys.

import type { Redis } from 'ioredis';

/** Commands Redis ran so far, by name, `info` (ours) left out. */
export async function commandStats(redis: Redis): Promise<Map<string, number>> {
  const text = await redis.info('commandstats');
  const all = [...text.matchAll(/^cmdstat_(\S+?):calls=(\d+)/gm)].map((m) => [m[1]!, Number(m[2])] as const);
  return new Map(all.filter(([k]) => k !== 'info'));
}

/** Per-command counts run between two commandStats. */
export function commandsBetween(a: Map<string, number>, b: Map<string, number>): Map<string, number> {
  return new Map([...b].map(([k, v]) => [k, v - (a.get(k) ?? 0)] as const).filter(([, d]) => d > 0));
}

/** Deletes every key under `prefix`; how many there were. */
export async function deleteKeys(redis: Redis, prefix: string): Promise<number> {
  let deleted = 0;
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (found.length) deleted += await redis.del(...found);
  } while (cursor !== '0');
  return deleted;
}
