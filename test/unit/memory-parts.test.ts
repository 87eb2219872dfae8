import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import { describe, it } from 'node:test';
import { MemorySessionStore } from '../../src/cluster/session-store.js';
import { AesCipher } from '../../src/crypto/index.js';
import { BindUserCodec, Command, HEADER_LENGTH } from '../../src/protocol/index.js';
import { intern } from '../../src/util/intern.js';
import { memoryServer } from '../helpers/memory-server.js';

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

describe('MemorySessionStore keys', () => {
  it('gives back every key and iv as stored, hex or not', async () => {
    const store = new MemorySessionStore();
    const stored = [
      ['0123456789abcdef'.repeat(2), 'fedcba9876543210'.repeat(2)],
      ['00'.repeat(16), 'ff'.repeat(16)],
      ['0123456789ABCDEF'.repeat(2), '00'.repeat(16)],
      ['00'.repeat(15), '00'.repeat(16)],
      ['not hex at all', ''],
    ].map(([sessionKey, iv], i) => ({ ...session(`d${i}`), sessionKey: sessionKey!, iv: iv! }));
    for (const [i, s] of stored.entries()) await store.set(`s${i}`, s, 60_000);
    for (const [i, s] of stored.entries()) assert.deepEqual(await store.get(`s${i}`), s);
    await store.close();
  });
});

/** A fresh Node cipher per message: what every AesCipher call must equal. */
function cbc(key: Buffer, iv: Buffer, plain: Buffer): Buffer {
  const c = createCipheriv('aes-128-cbc', key, iv);
  return Buffer.concat([c.update(plain), c.final()]);
}

describe('AesCipher.release', () => {
  it('frees the contexts of an idle cipher and stays byte-exact afterwards', () => {
    const key = Buffer.alloc(16, 7);
    const iv = Buffer.alloc(16, 9);
    const reference = (plain: Buffer) => cbc(key, iv, plain);
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

describe('AesCipher store', () => {
  it('is made on first use, dropped with the last context, and made again byte-exact', () => {
    const key = Buffer.alloc(16, 3);
    const iv = Buffer.alloc(16, 5);
    const reference = (plain: Buffer) => cbc(key, iv, plain);
    const a = new AesCipher(key, iv);
    const b = new AesCipher(key, iv);
    assert.equal(a.holdsContext, false, 'a new cipher keeps only its key and iv');
    const one = Buffer.from('one message, longer than a block');
    assert.deepEqual(a.encrypt(one), reference(one));
    assert.equal(a.holdsContext, true);
    // Decrypt alone: releasing it drops the store; with an encrypt context alive, it stays.
    assert.deepEqual(b.decrypt(reference(one)), one);
    b.releaseDecrypt();
    assert.equal(b.holdsContext, false);
    assert.deepEqual(b.decrypt(reference(one)), one, 'decrypts again from the iv');
    b.encrypt(one);
    b.releaseDecrypt();
    assert.equal(b.holdsContext, true, 'the encrypt context keeps the store');
    assert.deepEqual(b.encrypt(one), reference(one));
    a.release();
    assert.equal(a.holdsContext, false);
    assert.deepEqual(a.encrypt(one), reference(one), 'encrypts again from the iv');
  });
});

describe('Connection decoder', () => {
  it('is held only while a frame straddles reads', async () => {
    const s = memoryServer();
    try {
      const d = s.connect();
      d.handshake(s.publicKey);
      assert.equal(d.conn.holdsDecoder, false, 'nothing held after a whole frame');
      const frame = d.frame(Command.BIND, BindUserCodec.encode({ userId: 'u-split', data: '', tags: '' }));
      // Cut inside the header, then inside the body.
      const cuts = [5, HEADER_LENGTH + 3, frame.length];
      for (let i = 0, at = 0; i < cuts.length; at = cuts[i++]!) {
        d.transport.feed(frame.subarray(at, cuts[i]));
        assert.equal(d.conn.holdsDecoder, i < cuts.length - 1, `after ${cuts[i]} of ${frame.length} bytes`);
      }
      assert.equal(d.conn.userId, 'u-split', 'the frame was decoded whole');
      // Two frames in one read, the second cut: the decoder stays for its rest.
      d.transport.feed(Buffer.concat([frame, frame.subarray(0, 2)]));
      assert.equal(d.conn.holdsDecoder, true);
    } finally {
      await s.close();
    }
  });
});

describe('intern', () => {
  it('returns the same value for any string, names of Object.prototype and index-like ones too', () => {
    for (const v of [
      'android',
      '',
      '10',
      '0',
      '4294967295',
      '-1',
      '1.0.0',
      '__proto__',
      'constructor',
      'iOS 17 ✓',
    ]) {
      const decoded = Buffer.from(v).toString('utf8');
      assert.equal(intern(decoded), v);
      assert.equal(typeof intern(decoded), 'string');
    }
  });
});
