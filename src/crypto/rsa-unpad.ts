// PKCS#1 v1.5 (type 2) unpadding with implicit rejection, as OpenSSL 3.2+ does it
// (draft-irtf-cfrg-rsa-guidance): a block whose padding is bad yields a synthetic message derived from
// a secret and the ciphertext, never an error, so a padding oracle (the Marvin attack) learns nothing
// from the answer. The raw RSA operation itself is in rsa.ts.

import { HMAC_SHA256_BYTES, HmacSha256 } from './hmac-sha256.js';

/** What a rejected block decrypts to: derived from the secret and the ciphertext only. */
export interface SyntheticMessage {
  /** Modulus-size pseudo-random bytes; the message is their last `length` bytes. */
  readonly bytes: Buffer;
  readonly length: number;
}

/** Smallest all-ones mask covering the largest message length (k - 10) for a k-byte modulus, as in OpenSSL. */
export function syntheticLengthMask(k: number): number {
  let m = k - 10;
  m |= m >> 1;
  m |= m >> 2;
  m |= m >> 4;
  m |= m >> 8;
  return m;
}

/** Bytes of the length PRF: 128 16-bit candidates, as in OpenSSL. */
const LENGTH_PRF_BYTES = 256;

/**
 * The synthetic messages of one decryptor (one secret, one modulus size), as OpenSSL's
 * ossl_rsa_padding_check_PKCS1_type_2: KDK = HMAC(secret, ciphertext), then the IRPRF of
 * draft-irtf-cfrg-rsa-guidance (HMAC-SHA256 in counter mode under the KDK) gives the message bytes
 * and the candidate lengths. The secret's HMAC state, the PRF inputs and the outputs are kept and
 * reused from block to block.
 */
export class SyntheticMessages {
  readonly #bySecret: HmacSha256;
  readonly #byKdk: HmacSha256;
  readonly #kdk = Buffer.alloc(HMAC_SHA256_BYTES);
  readonly #k: number;
  readonly #lenMask: number;
  readonly #messageInput: Buffer;
  readonly #lengthInput: Buffer;
  readonly #bytes: Buffer;
  readonly #lengths = Buffer.alloc(LENGTH_PRF_BYTES);

  /**
   * @param secret the decryptor's rejection secret.
   * @param k the modulus size in bytes.
   */
  constructor(secret: Buffer, k: number) {
    this.#bySecret = new HmacSha256(secret);
    this.#byKdk = new HmacSha256(this.#kdk);
    this.#k = k;
    this.#lenMask = syntheticLengthMask(k);
    this.#messageInput = prfInput('message', k);
    this.#lengthInput = prfInput('length', LENGTH_PRF_BYTES);
    this.#bytes = Buffer.alloc(roundUp(k));
  }

  /**
   * The synthetic message for one ciphertext block. Computed before the block is decrypted, and
   * whether or not it is needed, so the work done does not depend on the padding. The result's
   * bytes are overwritten by the next call.
   *
   * @param block one modulus-size ciphertext block.
   */
  of(block: Buffer): SyntheticMessage {
    this.#bySecret.mac(block, this.#kdk);
    this.#byKdk.setKey(this.#kdk);
    prf(this.#byKdk, this.#messageInput, this.#bytes);
    const lengths = this.#lengths;
    prf(this.#byKdk, this.#lengthInput, lengths);
    const maxLen = this.#k - 10;
    let length = 0;
    for (let i = 0; i < LENGTH_PRF_BYTES; i += 2) {
      const candidate = ((lengths[i]! << 8) | lengths[i + 1]!) & this.#lenMask;
      const ok = ctLt(candidate, maxLen);
      length = (candidate & ok) | (length & ~ok);
    }
    return { bytes: this.#bytes, length };
  }
}

/**
 * Removes the PKCS#1 v1.5 encryption padding of a raw decrypted block (`00 02 PS 00 M`, PS at least
 * 8 bytes), or returns `synthetic`'s message when the padding is bad. Zeroes `em` afterwards.
 *
 * @param em the raw decryption, exactly modulus-size (left-padded with zeros by the caller).
 */
export function unpadPkcs1(em: Buffer, synthetic: SyntheticMessage): Buffer {
  const k = em.length;
  const bytes = synthetic.bytes;
  // Constant-time in spirit, as far as JavaScript allows: every byte is visited, there is no early
  // exit, and the decision is kept in all-ones/all-zeros masks combined with bitwise operators
  // rather than in branches. JavaScript gives no guarantee, though: the JIT may compile these
  // expressions differently between tiers, small integers may change representation, and the
  // allocation below is sized by the selected length (which, as in OpenSSL, is either the real or
  // a pseudo-random length and so does not reveal which one was chosen). This narrows the timing
  // signal, it cannot prove its absence; that is why MPush's weak handshake should stay behind
  // rate limits.
  let good = ctIsZero(em[0]!) & ctEq(em[1]!, 2);
  let found = 0;
  let zeroIndex = 0;
  for (let i = 2; i < k; i++) {
    const isZero = ctIsZero(em[i]!);
    const first = ~found & isZero;
    zeroIndex = (i & first) | (zeroIndex & ~first);
    found |= isZero;
  }
  // At least 8 padding bytes; with no separator zeroIndex stays 0 and this fails too.
  good &= ~ctLt(zeroIndex, 2 + 8);
  const msgIndex = ((zeroIndex + 1) & good) | ((k - synthetic.length) & ~good);

  const out = Buffer.allocUnsafe(k - msgIndex);
  for (let i = msgIndex, j = 0; i < k; i++, j++) {
    out[j] = ((em[i]! & good) | (bytes[i]! & ~good)) & 0xff;
  }
  em.fill(0);
  return out;
}

const roundUp = (n: number) => Math.ceil(n / HMAC_SHA256_BYTES) * HMAC_SHA256_BYTES;

/** The IRPRF's input for `length` output bytes: a 16-bit counter (set by {@link prf}), the label, the length in bits. */
function prfInput(label: string, length: number): Buffer {
  const input = Buffer.alloc(2 + label.length + 2);
  input.write(label, 2, 'latin1');
  input.writeUInt16BE((length * 8) & 0xffff, 2 + label.length);
  return input;
}

/**
 * The IRPRF of draft-irtf-cfrg-rsa-guidance / OpenSSL's ossl_rsa_prf: HMAC-SHA256 in counter mode,
 * filling `out` (a multiple of 32 bytes; callers use the first `length` bytes of {@link prfInput}).
 */
function prf(mac: HmacSha256, input: Buffer, out: Buffer): void {
  for (let pos = 0, iter = 0; pos < out.length; pos += HMAC_SHA256_BYTES, iter++) {
    input.writeUInt16BE(iter, 0);
    mac.mac(input, out, pos);
  }
}

// Masks are -1 (all ones) for true and 0 for false. Inputs are small non-negative integers, far from
// the 32-bit edges where these identities break.
function ctIsZero(x: number): number {
  return ~((x | -x) >> 31);
}
function ctEq(a: number, b: number): number {
  return ctIsZero(a ^ b);
}
function ctLt(a: number, b: number): number {
  return (a - b) >> 31;
}
