import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { BusMessage } from '../../src/cluster/cluster-bus.js';
import { RedisClusterBus } from '../../src/cluster/redis-cluster-bus.js';
import { waitFor } from '../helpers/wait.js';
import { closeTestRedis, freshPrefix, newClient } from './shared-redis.js';

after(closeTestRedis);

describe('RedisClusterBus: what it reads back', () => {
  it('a message that is not a JSON object is skipped; the next one is delivered', async () => {
    const prefix = await freshPrefix();
    const conn = await newClient();
    const bus = new RedisClusterBus(conn, prefix);
    try {
      const received: BusMessage[] = [];
      await bus.subscribe('t', (m) => received.push(m));
      // On one connection, in order: whatever reaches the handler before the last one is a bug.
      for (const raw of ['not json', 'null', '5', '"text"', '[1,2]'])
        await conn.publish(`${prefix}bus:t`, raw);
      await bus.publish('t', { userId: 'u1', clientType: 1 });
      await waitFor(() => received.length > 0, 3000, 'the valid message');
      assert.deepEqual(received, [{ userId: 'u1', clientType: 1 }]);
    } finally {
      await bus.close();
      conn.disconnect();
    }
  });
});
