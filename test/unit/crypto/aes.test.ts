import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  AesCipher,
  CryptoError,
  MPUSH_ERR_AES_DECRYPT,
  MPUSH_ERR_KEY,
  mixKey,
  randomKey,
} from '../../../src/crypto/index.js';

function nodeEncrypt(key: Buffer, iv: Buffer, plain: Buffer): Buffer {
  const c = createCipheriv('aes-128-cbc', key, iv);
  return Buffer.concat([c.update(plain), c.final()]);
}

function nodeDecrypt(key: Buffer, iv: Buffer, cipher: Buffer): Buffer {
  const d = createDecipheriv('aes-128-cbc', key, iv);
  return Buffer.concat([d.update(cipher), d.final()]);
}

/** Raw CBC with no padding, to build ciphertexts whose decrypted padding is whatever we choose. */
function rawCbc(key: Buffer, iv: Buffer, blocks: Buffer): Buffer {
  const c = createCipheriv('aes-128-cbc', key, iv);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(blocks), c.final()]);
}

function isCryptoError(code: string): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof CryptoError, `expected a CryptoError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  };
}

describe('AesCipher', () => {
  test('matches aes-128-cbc for every length 0..100, fresh instance and random key each time', () => {
    for (let len = 0; len <= 100; len++) {
      const key = randomKey();
      const iv = randomKey();
      const plain = randomBytes(len);
      const expected = nodeEncrypt(key, iv, plain);
      assert.deepEqual(new AesCipher(key, iv).encrypt(plain), expected, `encrypt length ${len}`);
      assert.deepEqual(new AesCipher(key, iv).decrypt(expected), plain, `decrypt length ${len}`);
    }
  });

  test('one instance stays correct across many messages, encrypts and decrypts interleaved', () => {
    for (let round = 0; round < 5; round++) {
      const key = randomKey();
      const iv = randomKey();
      const cipher = new AesCipher(key, iv);
      for (let len = 0; len <= 100; len++) {
        const plain = randomBytes(len);
        const expected = nodeEncrypt(key, iv, plain);
        assert.deepEqual(cipher.encrypt(plain), expected, `encrypt length ${len}`);
        assert.deepEqual(cipher.decrypt(expected), plain, `decrypt length ${len}`);
        const other = nodeEncrypt(key, iv, randomBytes((len * 7) % 50));
        assert.deepEqual(cipher.decrypt(other), nodeDecrypt(key, iv, other));
      }
      // Larger messages, then small again: the chaining value must follow.
      for (const len of [1000, 4096, 3, 10 * 1024, 0]) {
        const plain = randomBytes(len);
        const expected = nodeEncrypt(key, iv, plain);
        assert.deepEqual(cipher.encrypt(plain), expected);
        assert.deepEqual(cipher.decrypt(expected), plain);
      }
    }
  });

  test('encrypt does not keep references to caller buffers', () => {
    const key = randomKey();
    const iv = randomKey();
    const cipher = new AesCipher(key, iv);
    const first = cipher.encrypt(Buffer.from('first message'));
    first.fill(0);
    const plain = Buffer.from('second message');
    assert.deepEqual(cipher.encrypt(plain), nodeEncrypt(key, iv, plain));
    const ct = nodeEncrypt(key, iv, plain);
    assert.deepEqual(cipher.decrypt(ct), plain);
    ct.fill(0);
    assert.deepEqual(cipher.decrypt(nodeEncrypt(key, iv, plain)), plain);
  });

  test('decrypt rejects lengths that are not a positive multiple of 16', () => {
    const cipher = new AesCipher(randomKey(), randomKey());
    for (const len of [0, 1, 15, 17, 31, 33]) {
      assert.throws(() => cipher.decrypt(randomBytes(len)), isCryptoError(MPUSH_ERR_AES_DECRYPT));
    }
  });

  test('decrypt rejects bad padding, and the next message still decrypts', () => {
    const key = randomKey();
    const iv = randomKey();
    const cipher = new AesCipher(key, iv);
    const badPlains = [
      Buffer.concat([randomBytes(15), Buffer.from([0])]), // pad 0
      Buffer.concat([randomBytes(15), Buffer.from([17])]), // pad > 16
      Buffer.concat([randomBytes(13), Buffer.from([2, 3, 3])]), // pad 3, first pad byte off
      Buffer.concat([randomBytes(16), Buffer.from([15]), Buffer.alloc(15, 16)]), // pad 16, first pad byte off
    ];
    for (const bad of badPlains) {
      assert.throws(() => cipher.decrypt(rawCbc(key, iv, bad)), isCryptoError(MPUSH_ERR_AES_DECRYPT));
      const plain = randomBytes(40);
      assert.deepEqual(cipher.decrypt(nodeEncrypt(key, iv, plain)), plain);
    }
    // A full block of padding is valid.
    assert.deepEqual(cipher.decrypt(rawCbc(key, iv, Buffer.alloc(16, 16))), Buffer.alloc(0));
  });

  test('a wrong key is reported as MPUSH_ERR_AES_DECRYPT, never as a raw Node error', () => {
    const iv = randomKey();
    const cipher = new AesCipher(randomKey(), iv);
    let rejected = 0;
    for (let i = 0; i < 50; i++) {
      const ct = nodeEncrypt(randomKey(), iv, randomBytes(20));
      try {
        cipher.decrypt(ct);
      } catch (err) {
        assert.ok(err instanceof CryptoError);
        assert.equal(err.code, MPUSH_ERR_AES_DECRYPT);
        rejected++;
      }
    }
    // A random last byte is valid padding about once in 256 tries.
    assert.ok(rejected >= 45);
  });

  test('key and iv must be 16 bytes', () => {
    assert.throws(() => new AesCipher(Buffer.alloc(15), Buffer.alloc(16)), isCryptoError(MPUSH_ERR_KEY));
    assert.throws(() => new AesCipher(Buffer.alloc(16), Buffer.alloc(32)), isCryptoError(MPUSH_ERR_KEY));
  });

  test('MPush vector: hello mpush under the mixed key', () => {
    const iv = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
    const key = mixKey(Buffer.from('101112131415161718191a1b1c1d1e1f', 'hex'), iv);
    const cipher = new AesCipher(key, iv);
    assert.equal(
      cipher.encrypt(Buffer.from('hello mpush')).toString('hex'),
      '3e3f593615c46cc737e2288718be1686',
    );
    assert.equal(
      cipher.decrypt(Buffer.from('3e3f593615c46cc737e2288718be1686', 'hex')).toString(),
      'hello mpush',
    );
  });
});

describe('mixKey and randomKey', () => {
  test('mixKey is byte-wise XOR', () => {
    const a = Buffer.from('101112131415161718191a1b1c1d1e1f', 'hex');
    const b = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
    assert.equal(mixKey(a, b).toString('hex'), '10'.repeat(16));
    const x = randomKey();
    const y = randomKey();
    const m = mixKey(x, y);
    for (let i = 0; i < 16; i++) assert.equal(m[i], x[i]! ^ y[i]!);
    assert.deepEqual(mixKey(m, y), x);
  });

  test('mixKey needs two 16-byte keys', () => {
    assert.throws(() => mixKey(Buffer.alloc(16), Buffer.alloc(15)), isCryptoError(MPUSH_ERR_KEY));
    assert.throws(() => mixKey(Buffer.alloc(0), Buffer.alloc(16)), isCryptoError(MPUSH_ERR_KEY));
  });

  test('randomKey gives 16 fresh bytes', () => {
    const a = randomKey();
    assert.equal(a.length, 16);
    assert.notDeepEqual(randomKey(), a);
  });

  test('randomKey keeps giving distinct keys past its pool of 64, and a key is not shared', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const key = randomKey();
      assert.equal(key.length, 16);
      seen.add(key.toString('hex'));
      key.fill(0); // the caller owns its copy: zeroing it changes no later key
    }
    assert.equal(seen.size, 300);
    assert.ok(!seen.has('00'.repeat(16)));
  });
});
