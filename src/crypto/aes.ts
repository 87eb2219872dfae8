// AES-128-CBC with PKCS#7 padding and one fixed iv for every packet of a session: MPush's session
// cipher (mpush-wire §5; the reused iv is MPush's weakness, kept for wire compatibility).

import {
  createCipheriv,
  createDecipheriv,
  type Decipher,
  type Cipher as NodeCipher,
  randomFillSync,
} from 'node:crypto';
import type { Cipher } from './cipher.js';
import { CryptoError, MPUSH_ERR_AES_DECRYPT, MPUSH_ERR_KEY } from './errors.js';

const BLOCK = 16;
/** Offsets in an AesCipher's store. */
const KEY = 0;
const IV = 16;
const ENC_LAST = 32;
const DEC_LAST = 48;

/**
 * AES-128-CBC/PKCS#7 with a fixed key and iv, as MPush's `AesCipher`.
 *
 * Creating a Node cipher per packet costs about 4 µs, more than the encryption itself. Instead each
 * direction keeps one long-lived CBC context with padding off, never finalised. Such a context
 * carries the last ciphertext block over from the previous call as its chaining value; to restart
 * from the iv, the first block is XORed with (iv XOR that previous block) before encrypting, and
 * after decrypting. One native call per packet remains.
 *
 * Every call is synchronous and leaves the chaining values consistent (also when decrypt throws), so
 * any sequence of calls gives the same bytes as a fresh `createCipheriv` per message.
 */
export class AesCipher implements Cipher {
  /**
   * Key then iv as 32 latin1 chars: all an idle cipher keeps. A 48-byte string, where a Buffer costs
   * about 250 bytes with its ArrayBuffer and native backing store, per connection.
   */
  readonly #keyIv: string;
  /**
   * Key, iv and the two chaining blocks in one unpooled 64-byte store, addressed by offset (four
   * pooled 16-byte copies would each pin a slice of an 8 KiB pool slab); made from `#keyIv` when a
   * context is, dropped with the last one.
   */
  #s: Buffer | undefined;
  #enc: NodeCipher | undefined;
  #dec: Decipher | undefined;

  /**
   * @param key 16-byte AES key.
   * @param iv 16-byte initialisation vector, used for every message.
   * @throws CryptoError `MPUSH_ERR_KEY` if either is not 16 bytes.
   */
  constructor(key: Buffer, iv: Buffer) {
    if (key.length !== BLOCK)
      throw new CryptoError(MPUSH_ERR_KEY, `AES key must be 16 bytes, got ${key.length}`);
    if (iv.length !== BLOCK)
      throw new CryptoError(MPUSH_ERR_KEY, `AES iv must be 16 bytes, got ${iv.length}`);
    // One flat string: `key.toString() + iv.toString()` would keep a cons string and its two halves.
    this.#keyIv = Buffer.concat([key, iv], 2 * BLOCK).toString('latin1');
  }

  /** The store, made on first need, both chaining blocks at the iv as a fresh cipher's. */
  #store(): Buffer {
    if (this.#s !== undefined) return this.#s;
    const s = Buffer.alloc(4 * BLOCK);
    s.write(this.#keyIv, KEY, 'latin1');
    s.copyWithin(ENC_LAST, IV, IV + BLOCK);
    s.copyWithin(DEC_LAST, IV, IV + BLOCK);
    this.#s = s;
    return s;
  }

  /** True while the cipher holds a native context (and its store); false once released. */
  get holdsContext(): boolean {
    return this.#s !== undefined;
  }

  /**
   * Drops the decrypt context; the next message creates it again (about 5 µs), starting from the
   * iv as a fresh cipher would.
   */
  releaseDecrypt(): void {
    this.#dec = undefined;
    if (this.#enc === undefined) this.#s = undefined;
    else this.#s?.copyWithin(DEC_LAST, IV, IV + BLOCK);
  }

  /** Drops both native contexts (about 1 KB each) and the store of an idle connection. */
  release(): void {
    this.#enc = undefined;
    this.#dec = undefined;
    this.#s = undefined;
  }

  /** Encrypts one message; the result is 1 to 16 bytes longer than the input (PKCS#7). */
  encrypt(plain: Buffer): Buffer {
    const s = this.#store();
    // Contexts are created on first use: many connections only ever decrypt or never send.
    if (this.#enc === undefined) {
      this.#enc = createCipheriv('aes-128-cbc', s.subarray(KEY, KEY + BLOCK), s.subarray(IV, IV + BLOCK));
      this.#enc.setAutoPadding(false);
    }
    const n = plain.length;
    const total = (n & ~(BLOCK - 1)) + BLOCK;
    const buf = Buffer.allocUnsafe(total);
    plain.copy(buf, 0);
    buf.fill(total - n, n);
    for (let i = 0; i < BLOCK; i++) buf[i] = buf[i]! ^ s[IV + i]! ^ s[ENC_LAST + i]!;
    const out = this.#enc.update(buf);
    out.copy(s, ENC_LAST, total - BLOCK, total);
    return out;
  }

  /**
   * Decrypts one message.
   *
   * @throws CryptoError `MPUSH_ERR_AES_DECRYPT` if the length is not a positive multiple of 16 or the
   *   padding is wrong (typically: wrong key).
   */
  decrypt(cipher: Buffer): Buffer {
    const n = cipher.length;
    if (n === 0 || (n & (BLOCK - 1)) !== 0) {
      throw new CryptoError(
        MPUSH_ERR_AES_DECRYPT,
        `AES ciphertext length ${n} is not a positive multiple of 16`,
      );
    }
    const s = this.#store();
    if (this.#dec === undefined) {
      this.#dec = createDecipheriv('aes-128-cbc', s.subarray(KEY, KEY + BLOCK), s.subarray(IV, IV + BLOCK));
      this.#dec.setAutoPadding(false);
    }
    const out = this.#dec.update(cipher);
    for (let i = 0; i < BLOCK; i++) out[i] = out[i]! ^ s[IV + i]! ^ s[DEC_LAST + i]!;
    cipher.copy(s, DEC_LAST, n - BLOCK, n);

    // Unauthenticated CBC is a padding oracle whatever this check does (MPush has no MAC); the check
    // still looks at every padding byte so garbage is not mistaken for a message.
    const pad = out[n - 1]!;
    let bad = pad === 0 || pad > BLOCK ? 1 : 0;
    if (bad === 0) {
      for (let i = n - pad; i < n; i++) bad |= out[i]! ^ pad;
    }
    if (bad !== 0)
      throw new CryptoError(MPUSH_ERR_AES_DECRYPT, 'bad AES padding (wrong key or corrupt data)');
    return out.subarray(0, n - pad);
  }
}

/**
 * The session key of mpush-wire §5: byte-wise XOR of the client's and server's 16-byte keys (MPush's
 * `CipherBox.mixKey`, whose odd/even branches both reduce to XOR).
 *
 * @throws CryptoError `MPUSH_ERR_KEY` if either key is not 16 bytes.
 */
export function mixKey(clientKey: Buffer, serverKey: Buffer): Buffer {
  if (clientKey.length !== BLOCK || serverKey.length !== BLOCK) {
    throw new CryptoError(MPUSH_ERR_KEY, 'mixKey needs two 16-byte keys');
  }
  const out = Buffer.allocUnsafe(BLOCK);
  for (let i = 0; i < BLOCK; i++) out[i] = clientKey[i]! ^ serverKey[i]!;
  return out;
}

// Keys are cut from a pool filled 64 at a time: one randomFillSync costs about what one
// randomBytes(16) does (3 µs, mostly the call), and every handshake draws a serverKey. A key's bytes
// are zeroed in the pool as it is handed out.
const keyPool = Buffer.alloc(64 * BLOCK);
let keyPoolUsed = keyPool.length;

/** 16 cryptographically random bytes: an AES key, a serverKey or an iv. */
export function randomKey(): Buffer {
  if (keyPoolUsed === keyPool.length) {
    randomFillSync(keyPool);
    keyPoolUsed = 0;
  }
  const key = Buffer.allocUnsafe(BLOCK);
  keyPool.copy(key, 0, keyPoolUsed, keyPoolUsed + BLOCK);
  keyPool.fill(0, keyPoolUsed, keyPoolUsed + BLOCK);
  keyPoolUsed += BLOCK;
  return key;
}
