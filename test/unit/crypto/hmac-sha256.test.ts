import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { HmacSha256 } from '../../../src/crypto/hmac-sha256.js';

const nodeHmac = (key: Buffer, msg: Buffer) => createHmac('sha256', key).update(msg).digest();

function ours(h: HmacSha256, msg: Buffer): Buffer {
  const out = Buffer.alloc(40, 0xaa);
  h.mac(msg, out, 4);
  assert.equal(out.subarray(0, 4).toString('hex'), 'aaaaaaaa', 'nothing written before the offset');
  assert.equal(out.subarray(36).toString('hex'), 'aaaaaaaa', 'nothing written past the digest');
  return out.subarray(4, 36);
}

describe('HmacSha256', () => {
  // Around the one- and two-block padding edges (55/56, 119/120) and the 64-byte key edge.
  const msgLengths = [0, 1, 10, 11, 55, 56, 63, 64, 65, 119, 120, 128, 200, 256, 1000];
  const keyLengths = [0, 1, 16, 32, 63, 64, 65, 100, 300];

  test('matches node:crypto for key and message lengths around the block and padding edges', () => {
    for (const kl of keyLengths) {
      const key = randomBytes(kl);
      const h = new HmacSha256(key);
      for (const ml of msgLengths) {
        const msg = randomBytes(ml);
        assert.deepEqual(ours(h, msg), nodeHmac(key, msg), `key ${kl} bytes, message ${ml} bytes`);
      }
    }
  });

  test('RFC 4231 test case 2 (a short key)', () => {
    const h = new HmacSha256(Buffer.from('Jefe'));
    assert.equal(
      ours(h, Buffer.from('what do ya want for nothing?')).toString('hex'),
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
  });

  test('setKey replaces the key; the same key and message give the same MAC again', () => {
    const [k1, k2, msg] = [randomBytes(32), randomBytes(32), randomBytes(128)];
    const h = new HmacSha256(k1);
    const first = Buffer.from(ours(h, msg));
    h.setKey(k2);
    assert.deepEqual(ours(h, msg), nodeHmac(k2, msg));
    h.setKey(k1);
    assert.deepEqual(ours(h, msg), first);
    assert.deepEqual(ours(h, msg), first);
  });
});
