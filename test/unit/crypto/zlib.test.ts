import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { createDeflate, gzipSync } from 'node:zlib';
import {
  CryptoError,
  deflate,
  inflate,
  MPUSH_ERR_INFLATE,
  MPUSH_ERR_INFLATE_TOO_LARGE,
} from '../../../src/crypto/index.js';

const MiB = 1024 * 1024;

function isCryptoError(code: string): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof CryptoError, `expected a CryptoError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  };
}

/** Deflates `total` zero bytes by streaming one small buffer, so building the bomb stays cheap. */
async function zeroBomb(total: number): Promise<Buffer> {
  const z = createDeflate({ level: 9 });
  const chunks: Buffer[] = [];
  z.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((resolve, reject) => {
    z.on('end', resolve);
    z.on('error', reject);
  });
  const zeros = Buffer.alloc(MiB);
  for (let written = 0; written < total; written += zeros.length) {
    if (!z.write(zeros)) await new Promise((resolve) => z.once('drain', resolve));
  }
  z.end();
  await done;
  return Buffer.concat(chunks);
}

describe('zlib', () => {
  test('round trips empty, small, text and random data', () => {
    const inputs = [
      Buffer.alloc(0),
      Buffer.from('a'),
      Buffer.alloc(2000, 'a'),
      Buffer.from('{"title":"hello","content":"推送"}'.repeat(100)),
      randomBytes(50_000),
    ];
    for (const input of inputs) {
      const packed = deflate(input);
      assert.equal(packed[0], 0x78, 'zlib header, not gzip');
      assert.deepEqual(inflate(packed, input.length), input);
    }
  });

  test('the bound is inclusive', () => {
    const packed = deflate(Buffer.alloc(5000, 'x'));
    assert.equal(inflate(packed, 5000).length, 5000);
    assert.throws(() => inflate(packed, 4999), isCryptoError(MPUSH_ERR_INFLATE_TOO_LARGE));
    assert.equal(inflate(deflate(Buffer.alloc(0)), 0).length, 0);
    assert.throws(() => inflate(deflate(Buffer.from('x')), 0), isCryptoError(MPUSH_ERR_INFLATE_TOO_LARGE));
  });

  test('a 100 MiB bomb with a 1 MiB bound throws MPUSH_ERR_INFLATE_TOO_LARGE without allocating it', async () => {
    const bomb = await zeroBomb(100 * MiB);
    assert.ok(bomb.length < 200 * 1024, `bomb is ${bomb.length} bytes`);
    const rssBefore = process.resourceUsage().maxRSS; // KiB, a high-water mark
    const started = process.hrtime.bigint();
    assert.throws(() => inflate(bomb, MiB), isCryptoError(MPUSH_ERR_INFLATE_TOO_LARGE));
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    const grewMiB = (process.resourceUsage().maxRSS - rssBefore) / 1024;
    // Inflating it all would raise the peak by 100 MiB or more and take far longer.
    assert.ok(grewMiB < 32, `peak RSS grew by ${grewMiB.toFixed(1)} MiB`);
    assert.ok(elapsedMs < 2000, `took ${elapsedMs.toFixed(0)} ms`);
  });

  test('corrupt, truncated or gzip data throws MPUSH_ERR_INFLATE', () => {
    const good = deflate(Buffer.from('hello mpush '.repeat(50)));
    const bad = [
      Buffer.alloc(0),
      randomBytes(64),
      Buffer.from('789c', 'hex'),
      good.subarray(0, good.length - 6),
      Buffer.concat([good.subarray(0, 10), Buffer.alloc(10, 0xff)]),
      gzipSync(Buffer.from('hello')),
    ];
    for (const input of bad) {
      assert.throws(() => inflate(input, MiB), isCryptoError(MPUSH_ERR_INFLATE), input.toString('hex'));
    }
  });

  test('maxBytes must be a non-negative integer', () => {
    assert.throws(() => inflate(deflate(Buffer.from('x')), -1), RangeError);
    assert.throws(() => inflate(deflate(Buffer.from('x')), Number.NaN), RangeError);
  });
});
