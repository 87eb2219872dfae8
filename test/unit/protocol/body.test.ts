import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  BodyReader,
  BodyWriter,
  LONG_LENGTH_MARK,
  ProtocolError,
  type ProtocolErrorCode,
} from '../../../src/protocol/index.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function assertProtocolError(fn: () => unknown, code: ProtocolErrorCode): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ProtocolError, `expected ProtocolError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

describe('BodyWriter / BodyReader numbers', () => {
  it('writes bytes as one signed byte', () => {
    const out = new BodyWriter()
      .writeByte(0)
      .writeByte(1)
      .writeByte(-1)
      .writeByte(127)
      .writeByte(-128)
      .writeByte(103)
      .finish();
    assert.equal(out.toString('hex'), '0001ff7f8067');
    const r = new BodyReader(out);
    assert.deepEqual(
      [r.readByte(), r.readByte(), r.readByte(), r.readByte(), r.readByte(), r.readByte()],
      [0, 1, -1, 127, -128, 103],
    );
    assert.equal(r.remaining, 0);
  });

  it('writes shorts big-endian', () => {
    const out = new BodyWriter()
      .writeShort(0)
      .writeShort(-1)
      .writeShort(0x7fff)
      .writeShort(-0x8000)
      .writeShort(258)
      .finish();
    assert.equal(out.toString('hex'), '0000ffff7fff80000102');
    const r = new BodyReader(out);
    assert.deepEqual(
      [r.readShort(), r.readShort(), r.readShort(), r.readShort(), r.readShort()],
      [0, -1, 0x7fff, -0x8000, 258],
    );
  });

  it('writes ints big-endian', () => {
    const values = [0, -1, 1, 0x7fffffff, -0x80000000, 240000, 180000];
    const w = new BodyWriter(1);
    for (const v of values) w.writeInt(v);
    const out = w.finish();
    assert.equal(out.toString('hex'), '00000000ffffffff000000017fffffff800000000003a9800002bf20');
    const r = new BodyReader(out);
    assert.deepEqual(
      values.map(() => r.readInt()),
      values,
    );
  });

  it('writes longs as Java longs', () => {
    const cases: Array<[number, string]> = [
      [0, '0000000000000000'],
      [-1, 'ffffffffffffffff'],
      [1, '0000000000000001'],
      [0x7fffffff, '000000007fffffff'],
      [-0x80000000, 'ffffffff80000000'],
      [2 ** 32, '0000000100000000'],
      [1700000000000, '0000018bcfe56800'],
      [1700086400000, '0000018bd50bc400'],
      [-1700000000000, 'fffffe74301a9800'],
      [Number.MAX_SAFE_INTEGER, '001fffffffffffff'],
      [Number.MIN_SAFE_INTEGER, 'ffe0000000000001'],
    ];
    for (const [v, h] of cases) {
      const out = new BodyWriter().writeLong(v).finish();
      assert.equal(out.toString('hex'), h, `write ${v}`);
      assert.equal(new BodyReader(out).readLong(), v, `read ${v}`);
    }
  });

  it('round-trips every safe integer as a long (property)', () => {
    fc.assert(
      fc.property(fc.maxSafeInteger(), (v) => {
        assert.equal(new BodyReader(new BodyWriter(2).writeLong(v).finish()).readLong(), v);
      }),
      { numRuns: 1000 },
    );
  });

  it('throws MPUSH_ERR_TRUNCATED for a number past the end', () => {
    assertProtocolError(() => new BodyReader(Buffer.alloc(0)).readByte(), 'MPUSH_ERR_TRUNCATED');
    assertProtocolError(() => new BodyReader(Buffer.alloc(1)).readShort(), 'MPUSH_ERR_TRUNCATED');
    assertProtocolError(() => new BodyReader(Buffer.alloc(3)).readInt(), 'MPUSH_ERR_TRUNCATED');
    assertProtocolError(() => new BodyReader(Buffer.alloc(7)).readLong(), 'MPUSH_ERR_TRUNCATED');
    const r = new BodyReader(hex('0000000001'));
    r.readInt();
    assertProtocolError(() => r.readInt(), 'MPUSH_ERR_TRUNCATED');
  });
});

describe('BodyWriter / BodyReader strings and bytes', () => {
  it('writes null, undefined and empty as 00 00 and reads them back empty', () => {
    const out = new BodyWriter()
      .writeString(null)
      .writeString(undefined)
      .writeString('')
      .writeBytes(null)
      .writeBytes(undefined)
      .writeBytes(Buffer.alloc(0))
      .finish();
    assert.equal(out.toString('hex'), '000000000000000000000000');
    const r = new BodyReader(out);
    assert.equal(r.readString(), '');
    assert.equal(r.readString(), '');
    assert.equal(r.readString(), '');
    assert.equal(r.readBytes().length, 0);
    assert.equal(r.readBytes().length, 0);
    assert.equal(r.readBytes().length, 0);
    assert.equal(r.remaining, 0);
  });

  it('writes strings as UTF-8 with a byte-count prefix', () => {
    const out = new BodyWriter().writeString('dev-1').writeString('héllo 推送 😀').finish();
    const utf8 = Buffer.from('héllo 推送 😀', 'utf8');
    assert.equal(
      out.toString('hex'),
      `00056465762d31${utf8.length.toString(16).padStart(4, '0')}${utf8.toString('hex')}`,
    );
    const r = new BodyReader(out);
    assert.equal(r.readString(), 'dev-1');
    assert.equal(r.readString(), 'héllo 推送 😀');
  });

  it('round-trips any string and byte field (property)', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 200 }),
        fc.uint8Array({ maxLength: 200 }),
        fc.string({ unit: 'grapheme', maxLength: 50 }),
        (s, b, g) => {
          const out = new BodyWriter(1).writeString(s).writeBytes(b).writeString(g).finish();
          const r = new BodyReader(out);
          assert.equal(r.readString(), s);
          assert.equal(r.readBytes().toString('hex'), Buffer.from(b).toString('hex'));
          assert.equal(r.readString(), g);
          assert.equal(r.remaining, 0);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('uses a short length below 32767 bytes', () => {
    assert.equal(LONG_LENGTH_MARK, 0x7fff);
    const data = Buffer.alloc(32766, 0x61);
    const out = new BodyWriter().writeBytes(data).finish();
    assert.equal(out.length, 2 + 32766);
    assert.equal(out.subarray(0, 2).toString('hex'), '7ffe');
    assert.ok(out.subarray(2).equals(data));
    const r = new BodyReader(out);
    assert.ok(r.readBytes().equals(data));
    assert.equal(r.remaining, 0);
  });

  it('uses 0x7FFF + int(length - 32767) from 32767 bytes on', () => {
    const cases: Array<[number, string]> = [
      [32767, '7fff00000000'],
      [32768, '7fff00000001'],
      [70000, '7fff00009171'],
    ];
    for (const [n, prefix] of cases) {
      const data = Buffer.alloc(n);
      for (let i = 0; i < n; i++) data[i] = i & 0xff;
      const out = new BodyWriter().writeBytes(data).writeInt(42).finish();
      assert.equal(out.length, 6 + n + 4, `length ${n}`);
      assert.equal(out.subarray(0, 6).toString('hex'), prefix, `prefix for ${n}`);
      assert.ok(out.subarray(6, 6 + n).equals(data));
      const r = new BodyReader(out);
      assert.ok(r.readBytes().equals(data), `read ${n}`);
      assert.equal(r.readInt(), 42);
      assert.equal(r.remaining, 0);
    }
  });

  it('applies the long-length rule to strings by UTF-8 byte count', () => {
    // 10923 three-byte characters = 32769 bytes although the string has 10923 code units.
    const s = '推'.repeat(10923);
    const out = new BodyWriter().writeString(s).finish();
    assert.equal(out.subarray(0, 6).toString('hex'), '7fff00000002');
    assert.equal(out.length, 6 + 32769);
    assert.equal(new BodyReader(out).readString(), s);
    const short = 'a'.repeat(32766);
    const shortOut = new BodyWriter().writeString(short).finish();
    assert.equal(shortOut.subarray(0, 2).toString('hex'), '7ffe');
    assert.equal(new BodyReader(shortOut).readString(), short);
  });

  it('throws MPUSH_ERR_TRUNCATED for a field past the end', () => {
    assertProtocolError(() => new BodyReader(hex('00')).readString(), 'MPUSH_ERR_TRUNCATED');
    assertProtocolError(() => new BodyReader(hex('0005 64657631')).readString(), 'MPUSH_ERR_TRUNCATED');
    assertProtocolError(() => new BodyReader(hex('0005 64657631')).readBytes(), 'MPUSH_ERR_TRUNCATED');
    assertProtocolError(() => new BodyReader(hex('7fff 000000')).readBytes(), 'MPUSH_ERR_TRUNCATED');
    assertProtocolError(() => new BodyReader(hex('7fff 00000000 61')).readBytes(), 'MPUSH_ERR_TRUNCATED');
  });

  it('throws MPUSH_ERR_BAD_LENGTH for a negative long-length extension', () => {
    assertProtocolError(() => new BodyReader(hex('7fff ffffffff 00')).readBytes(), 'MPUSH_ERR_BAD_LENGTH');
    assertProtocolError(() => new BodyReader(hex('7fff 80000000')).readString(), 'MPUSH_ERR_BAD_LENGTH');
  });

  it('throws MPUSH_ERR_BAD_LENGTH for a negative short length', () => {
    for (const h of ['ffff', '8000', '8001 00']) {
      assertProtocolError(() => new BodyReader(hex(h)).readBytes(), 'MPUSH_ERR_BAD_LENGTH');
      assertProtocolError(() => new BodyReader(hex(h)).readString(), 'MPUSH_ERR_BAD_LENGTH');
    }
  });

  it('throws MPUSH_ERR_INVALID_UTF8 for invalid UTF-8', () => {
    const bad = [
      'c328', // bad continuation byte
      'eda080', // lone high surrogate U+D800 encoded as UTF-8
      'edbfbf', // lone low surrogate U+DFFF
      'c0af', // overlong '/'
      'ff',
      'e282', // truncated sequence
      'f4908080', // above U+10FFFF
    ];
    for (const h of bad) {
      const data = hex(h);
      const field = Buffer.concat([Buffer.from([0, data.length]), data]);
      assertProtocolError(() => new BodyReader(field).readString(), 'MPUSH_ERR_INVALID_UTF8');
      // The same bytes are a valid byte field.
      assert.equal(new BodyReader(field).readBytes().toString('hex'), h);
    }
  });

  it('checks a claimed length against what remains before allocating anything', () => {
    // 0x7FFF + 0x7FFFFFFF claims ~2 GiB; a reader that allocated first would fail with a RangeError
    // or exhaust memory instead of a typed error.
    const before = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 1000; i++) {
      assertProtocolError(() => new BodyReader(hex('7fff 7fffffff 0102')).readBytes(), 'MPUSH_ERR_TRUNCATED');
      assertProtocolError(
        () => new BodyReader(hex('7fff 7fffffff 0102')).readString(),
        'MPUSH_ERR_TRUNCATED',
      );
      assertProtocolError(() => new BodyReader(hex('7ffe 0102')).readBytes(), 'MPUSH_ERR_TRUNCATED');
    }
    const grown = process.memoryUsage().arrayBuffers - before;
    assert.ok(grown < 64 * 1024 * 1024, `array buffers grew by ${grown} bytes`);
  });

  it('hands out byte fields as views of the body', () => {
    const body = hex('0003 010203 0000');
    const r = new BodyReader(body);
    const v = r.readBytes();
    assert.equal(v.buffer, body.buffer);
    assert.equal(v.byteOffset, body.byteOffset + 2);
    assert.equal(r.readBytes().length, 0);
  });

  it('readRest returns the remaining bytes', () => {
    const r = new BodyReader(hex('01 68656c6c6f'));
    assert.equal(r.readByte(), 1);
    assert.equal(r.readRest().toString(), 'hello');
    assert.equal(r.remaining, 0);
    assert.equal(r.readRest().length, 0);
  });

  it('grows its buffer across many writes', () => {
    const w = new BodyWriter(1);
    for (let i = 0; i < 1000; i++) w.writeInt(i).writeString(`s${i}`);
    const r = new BodyReader(w.finish());
    for (let i = 0; i < 1000; i++) {
      assert.equal(r.readInt(), i);
      assert.equal(r.readString(), `s${i}`);
    }
    assert.equal(r.remaining, 0);
  });
});

describe('BodyWriter capacity', () => {
  it('grows from an initial capacity of 0 instead of looping forever', () => {
    const out = new BodyWriter(0).writeInt(7).writeString('abc').finish();
    assert.equal(out.toString('hex'), '00000007' + '0003616263');
    assert.equal(new BodyWriter(0).finish().length, 0);
  });
});
