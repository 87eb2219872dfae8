// HMAC-SHA256 (RFC 2104, FIPS 180-4) in plain JavaScript, for the one place that needs many short
// MACs under keys that change per call: the implicit-rejection PRF of rsa-unpad.ts, 13 MACs per RSA
// block. Node's createHmac costs about 3 µs per MAC there (a new Hmac object and native context,
// the key schedule redone each time); here a key's inner and outer states are computed once and a
// MAC of a short message is two compressions. Everything else should use node:crypto.
//
// The arithmetic is on 32-bit integers only, with no branch or table index that depends on the key
// or the message (the round constants are indexed by the round number).

const K = Int32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
]);

const H0 = Int32Array.from([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

const BLOCK = 64;
/** Digest size in bytes. */
export const HMAC_SHA256_BYTES = 32;

// Scratch shared by every call: JavaScript runs one call at a time and none of them yields. W is
// the message schedule; its first 16 words hold the block being compressed.
const W = new Int32Array(64);
const keyPad = new Uint8Array(BLOCK);

/** Loads the 64 bytes of `b` at `off` into W[0..15], big-endian. */
function load(b: Uint8Array, off: number): void {
  for (let i = 0; i < 16; i++, off += 4) {
    W[i] = (b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!;
  }
}

/** One SHA-256 compression of the block in W[0..15] into state `h`. */
function compress(h: Int32Array): void {
  for (let i = 16; i < 64; i++) {
    const x = W[i - 15]!;
    const y = W[i - 2]!;
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    W[i] = (s0 + W[i - 7]! + s1 + W[i - 16]!) | 0;
  }
  let a = h[0]!;
  let b = h[1]!;
  let c = h[2]!;
  let d = h[3]!;
  let e = h[4]!;
  let f = h[5]!;
  let g = h[6]!;
  let hh = h[7]!;
  for (let i = 0; i < 64; i++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    // Ch(e, f, g) and Maj(a, b, c) in their shorter equivalent forms.
    const t1 = (hh + S1 + (g ^ (e & (f ^ g))) + K[i]! + W[i]!) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (S0 + ((a & b) | (c & (a | b)))) | 0;
    hh = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  h[0] = (h[0]! + a) | 0;
  h[1] = (h[1]! + b) | 0;
  h[2] = (h[2]! + c) | 0;
  h[3] = (h[3]! + d) | 0;
  h[4] = (h[4]! + e) | 0;
  h[5] = (h[5]! + f) | 0;
  h[6] = (h[6]! + g) | 0;
  h[7] = (h[7]! + hh) | 0;
}

/**
 * Finishes a hash: `st` holds the state after `done` bytes (a multiple of 64); absorbs `msg` and
 * the padding, leaving the final state (the digest, as eight big-endian words) in `st`.
 */
function finish(st: Int32Array, done: number, msg: Uint8Array): void {
  const n = msg.length;
  let off = 0;
  for (; off + BLOCK <= n; off += BLOCK) {
    load(msg, off);
    compress(st);
  }
  const rest = n - off;
  W.fill(0, 0, 16);
  for (let j = 0; j < rest; j++) W[j >> 2] = W[j >> 2]! | (msg[off + j]! << (24 - 8 * (j & 3)));
  W[rest >> 2] = W[rest >> 2]! | (0x80 << (24 - 8 * (rest & 3)));
  if (rest >= BLOCK - 8) {
    compress(st);
    W.fill(0, 0, 16);
  }
  const bits = (done + n) * 8;
  W[14] = Math.floor(bits / 0x1_0000_0000);
  W[15] = bits | 0;
  compress(st);
}

/** Writes state `st` (a digest) to `out` at `off`, big-endian. */
function store(st: Int32Array, out: Uint8Array, off: number): void {
  for (let i = 0; i < 8; i++, off += 4) {
    const v = st[i]!;
    out[off] = v >>> 24;
    out[off + 1] = (v >>> 16) & 0xff;
    out[off + 2] = (v >>> 8) & 0xff;
    out[off + 3] = v & 0xff;
  }
}

/** The state after compressing the padded key in `keyPad` XORed with `x` (ipad or opad). */
function keyState(state: Int32Array, x: number): void {
  for (let i = 0; i < BLOCK; i++) keyPad[i] = keyPad[i]! ^ x;
  state.set(H0);
  load(keyPad, 0);
  compress(state);
  for (let i = 0; i < BLOCK; i++) keyPad[i] = keyPad[i]! ^ x;
}

/**
 * HMAC-SHA256 under one key at a time. The key's inner and outer states are kept, so each MAC costs
 * only the message's compressions plus two; {@link HmacSha256.setKey} changes the key in place.
 */
export class HmacSha256 {
  readonly #inner = new Int32Array(8);
  readonly #outer = new Int32Array(8);
  readonly #st = new Int32Array(8);

  /** @param key any length; a key longer than 64 bytes is hashed first (RFC 2104). */
  constructor(key: Uint8Array) {
    this.setKey(key);
  }

  /** Replaces the key. */
  setKey(key: Uint8Array): void {
    keyPad.fill(0);
    if (key.length > BLOCK) {
      this.#st.set(H0);
      finish(this.#st, 0, key);
      store(this.#st, keyPad, 0);
      this.#st.fill(0);
    } else {
      keyPad.set(key);
    }
    keyState(this.#inner, 0x36);
    keyState(this.#outer, 0x5c);
    keyPad.fill(0);
  }

  /** Writes HMAC(key, msg), 32 bytes, to `out` at `outOff`. */
  mac(msg: Uint8Array, out: Uint8Array, outOff = 0): void {
    const st = this.#st;
    st.set(this.#inner);
    finish(st, BLOCK, msg);
    // The outer hash's one block: the inner digest, then the padding for 64 + 32 bytes.
    W.set(st, 0);
    W[8] = 0x80 << 24;
    W.fill(0, 9, 15);
    W[15] = (BLOCK + HMAC_SHA256_BYTES) * 8;
    st.set(this.#outer);
    compress(st);
    store(st, out, outOff);
    st.fill(0);
  }
}
