import { ProtocolError } from './errors.js';

/** Lengths at or above this are written as 0x7FFF followed by an int (mpush-wire §3). */
export const LONG_LENGTH_MARK = 0x7fff;

const utf8 = new TextDecoder('utf-8', { fatal: true });
const TWO_32 = 2 ** 32;

/**
 * Writes body fields in MPush's order-only encoding: big-endian numbers, and bytes/strings
 * prefixed by a short length (or `0x7FFF` + int for long ones). Null and empty both write `00 00`.
 */
export class BodyWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(initialCapacity = 64) {
    this.buf = Buffer.allocUnsafe(initialCapacity);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    // `|| 64`: a writer created with capacity 0 would otherwise double 0 forever.
    let size = this.buf.length * 2 || 64;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  writeByte(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v & 0xff;
    return this;
  }

  writeShort(v: number): this {
    this.ensure(2);
    this.buf.writeInt16BE(((v << 16) >> 16) | 0, this.pos);
    this.pos += 2;
    return this;
  }

  writeInt(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v | 0, this.pos);
    this.pos += 4;
    return this;
  }

  /** Writes a Java long. Exact for integers within ±2^53 (timestamps, ids). */
  writeLong(v: number): this {
    this.ensure(8);
    const hi = Math.floor(v / TWO_32);
    const lo = v - hi * TWO_32;
    this.buf.writeInt32BE(hi | 0, this.pos);
    this.buf.writeUInt32BE(lo >>> 0, this.pos + 4);
    this.pos += 8;
    return this;
  }

  private writeLength(n: number): void {
    if (n < LONG_LENGTH_MARK) {
      this.writeShort(n);
    } else {
      this.writeShort(LONG_LENGTH_MARK);
      this.writeInt(n - LONG_LENGTH_MARK);
    }
  }

  writeBytes(v: Uint8Array | null | undefined): this {
    const n = v ? v.length : 0;
    this.writeLength(n);
    if (n > 0) {
      this.ensure(n);
      this.buf.set(v!, this.pos);
      this.pos += n;
    }
    return this;
  }

  writeString(v: string | null | undefined): this {
    if (!v) return this.writeBytes(null);
    const n = Buffer.byteLength(v, 'utf8');
    this.writeLength(n);
    this.ensure(n);
    this.buf.write(v, this.pos, n, 'utf8');
    this.pos += n;
    return this;
  }

  /** The bytes written so far (a copy-free view when it fills the buffer exactly). */
  finish(): Buffer {
    return this.pos === this.buf.length ? this.buf : this.buf.subarray(0, this.pos);
  }
}

/**
 * Reads body fields with bounds checks: every length is checked against what remains before
 * anything is read or allocated, and failures throw a typed {@link ProtocolError}.
 */
export class BodyReader {
  private pos = 0;

  constructor(private readonly buf: Buffer) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number, what: string): void {
    if (this.buf.length - this.pos < n) {
      throw new ProtocolError(
        'MPUSH_ERR_TRUNCATED',
        `truncated body: ${what} needs ${n} bytes at offset ${this.pos}, ${this.remaining} left`,
      );
    }
  }

  readByte(): number {
    this.need(1, 'byte');
    return (this.buf[this.pos++]! << 24) >> 24;
  }

  readShort(): number {
    this.need(2, 'short');
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  readInt(): number {
    this.need(4, 'int');
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** Reads a Java long; exact within ±2^53. */
  readLong(): number {
    this.need(8, 'long');
    const hi = this.buf.readInt32BE(this.pos);
    const lo = this.buf.readUInt32BE(this.pos + 4);
    this.pos += 8;
    return hi * TWO_32 + lo;
  }

  private readLength(): number {
    let n = this.readShort();
    if (n === LONG_LENGTH_MARK) {
      const extra = this.readInt();
      if (extra < 0)
        throw new ProtocolError('MPUSH_ERR_BAD_LENGTH', `negative long length extension ${extra}`);
      n += extra;
    }
    if (n < 0) throw new ProtocolError('MPUSH_ERR_BAD_LENGTH', `negative field length ${n}`);
    return n;
  }

  /** Reads a length-prefixed byte field: a view into the body, empty for null. */
  readBytes(): Buffer {
    const n = this.readLength();
    this.need(n, 'bytes field');
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** Reads a length-prefixed UTF-8 string; `''` for null. Invalid UTF-8 is an error. */
  readString(): string {
    const bytes = this.readBytes();
    if (bytes.length === 0) return '';
    try {
      return utf8.decode(bytes);
    } catch {
      throw new ProtocolError(
        'MPUSH_ERR_INVALID_UTF8',
        `string field at offset ${this.pos - bytes.length} is not UTF-8`,
      );
    }
  }

  /** The rest of the body, as a view. */
  readRest(): Buffer {
    const v = this.buf.subarray(this.pos);
    this.pos = this.buf.length;
    return v;
  }
}
