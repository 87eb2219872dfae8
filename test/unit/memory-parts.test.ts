import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import { describe, it } from 'node:test';
import { MemorySessionStore } from '../../src/cluster/session-store.js';
import { AesCipher } from '../../src/crypto/index.js';

const session = (deviceId: string) => ({
  deviceId,
  osName: 'android',
  osVersion: '10',
  clientVersion: '1',
  sessionKey: '00'.repeat(16),
  iv: '00'.repeat(16),
  expireTime: Date.now() + 60_000,
});

describe('session.maxEntries', () => {
  it('keeps at most maxEntries sessions, dropping the oldest first', async () => {
    const store = new MemorySessionStore(60_000, Date.now, 3);
    for (const id of ['a', 'b', 'c', 'd']) await store.set(id, session(id), 60_000);
    assert.equal(store.size, 3);
    assert.equal(await store.get('a'), undefined);
    // Re-setting a session makes it the youngest.
    await store.set('b', session('b'), 60_000);
    await store.set('e', session('e'), 60_000);
    assert.equal(await store.get('c'), undefined);
    assert.ok(await store.get('b'));
    await store.close();
  });
});

describe('AesCipher.release', () => {
  it('frees the contexts of an idle cipher and stays byte-exact afterwards', () => {
    const key = Buffer.alloc(16, 7);
    const iv = Buffer.alloc(16, 9);
    const reference = (plain: Buffer) => {
      const c = createCipheriv('aes-128-cbc', key, iv);
      return Buffer.concat([c.update(plain), c.final()]);
    };
    const a = new AesCipher(key, iv);
    const b = new AesCipher(key, iv);
    for (const text of ['first', 'second message, longer than one block', 'third']) {
      const plain = Buffer.from(text);
      const enc = a.encrypt(plain);
      assert.deepEqual(enc, reference(plain));
      assert.deepEqual(b.decrypt(enc), plain);
      a.release();
      b.release();
    }
  });
});
