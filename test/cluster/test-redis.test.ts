import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';

describe('test Redis helper', () => {
  let redis: TestRedis;
  before(async () => {
    redis = await startTestRedis();
  });
  after(async () => {
    await redis.close();
  });

  it('answers, and gives each call its own key prefix', async () => {
    const other = await startTestRedis();
    try {
      assert.notEqual(other.prefix, redis.prefix);
      await redis.client.set(`${redis.prefix}k`, 'v');
      assert.equal(await redis.client.get(`${redis.prefix}k`), 'v');
      assert.equal(await other.client.get(`${other.prefix}k`), null);
    } finally {
      await other.close();
    }
  });

  it('close() removes the keys of its prefix', async () => {
    const tmp = await startTestRedis();
    await tmp.client.set(`${tmp.prefix}a`, '1');
    const key = `${tmp.prefix}a`;
    await tmp.close();
    assert.equal(await redis.client.exists(key), 0);
  });
});
