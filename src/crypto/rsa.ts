// RSA for the MPush handshake (mpush-wire §5): 1024-bit keys, PKCS#1 v1.5 padding, ECB-style blocks of
// (modulusBytes - 11) plain bytes -> modulusBytes cipher bytes, exactly as MPush's Java RSAUtils.

import {
  constants,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import { CryptoError, MPUSH_ERR_KEY, MPUSH_ERR_RSA_BLOCK } from './errors.js';

/** PKCS#1 v1.5 needs 0x00 0x02, at least 8 padding bytes and a 0x00 separator. */
const PKCS1_OVERHEAD = 11;

// ---------------------------------------------------------------------------------------------------
// Key generation, import and export
// ---------------------------------------------------------------------------------------------------

/** Generates an RSA key pair (public exponent 65537). MPush clients use 1024-bit keys. */
export function generateRsaKeyPair(bits = 1024): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('rsa', { modulusLength: bits, publicExponent: 65537 });
}

/**
 * Loads an RSA private key.
 *
 * Accepts PEM (`PRIVATE KEY` = PKCS#8 or `RSA PRIVATE KEY` = PKCS#1), base64 of PKCS#8 (or PKCS#1)
 * DER as MPush's `mp.security.private-key` holds it, or the DER bytes themselves.
 *
 * MPush's tooling writes non-CRT keys (only n and d; e and the CRT fields are 0) which OpenSSL cannot
 * use. For those, e is taken from `publicKey` when given (its modulus must match), else from the key,
 * else 65537 (and a few other common exponents) are tried and verified; the primes are recovered from
 * (n, e, d) and the full key is imported.
 *
 * @throws CryptoError `MPUSH_ERR_KEY` when the input is not a usable RSA private key.
 */
export function loadPrivateKey(input: string | Buffer, publicKey?: KeyObject): KeyObject {
  const der = decodePrivateKeyInput(input);
  const parts = parseRsaPrivateKey(der.bytes);
  let given: { n: bigint; e: bigint } | undefined;
  if (publicKey !== undefined) {
    given = rsaPublicNumbers(publicKey);
    if (given.n !== parts.n) throw keyError('the public key does not belong to this private key');
  }

  const { n, d } = parts;
  if (n < 3n || (n & 1n) === 0n || d < 2n || d >= n) throw keyError('not a valid RSA private key');

  const complete = parts.e > 0n && parts.p > 1n && parts.q > 1n && parts.p * parts.q === n;
  if (complete) {
    if (given !== undefined && given.e !== parts.e) {
      throw keyError('the public key does not belong to this private key');
    }
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: der.bytes, format: 'der', type: der.type });
    } catch (err) {
      throw keyError('OpenSSL refused the private key', err);
    }
    return selfTest(key);
  }

  const e = given?.e ?? (parts.e > 0n ? parts.e : guessPublicExponent(n, d));
  const [p, q] = recoverPrimes(n, e, d);
  const lambda = lcm(p - 1n, q - 1n);
  if ((e * d) % lambda !== 1n) throw keyError('e and d do not match');
  const jwk: JsonWebKey = {
    kty: 'RSA',
    n: bigToB64u(n),
    e: bigToB64u(e),
    d: bigToB64u(d),
    p: bigToB64u(p),
    q: bigToB64u(q),
    dp: bigToB64u(d % (p - 1n)),
    dq: bigToB64u(d % (q - 1n)),
    qi: bigToB64u(modInverse(q, p)),
  };
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: jwk, format: 'jwk' });
  } catch (err) {
    throw keyError('OpenSSL refused the recovered private key', err);
  }
  return selfTest(key);
}

/**
 * OpenSSL imports some broken keys and only fails on first use (a non-CRT key imports fine, then
 * every decryption fails), so one raw round trip at load time moves that failure to startup.
 */
function selfTest(key: KeyObject): KeyObject {
  const k = modulusBytes(key);
  const probe = Buffer.alloc(k, 0x5a);
  probe[0] = 0;
  try {
    const cipher = publicEncrypt({ key, padding: constants.RSA_NO_PADDING }, probe);
    if (privateDecrypt({ key, padding: constants.RSA_NO_PADDING }, cipher).equals(probe)) return key;
  } catch (err) {
    throw keyError('the private key does not work', err);
  }
  throw keyError('the private key does not decrypt what its public key encrypts');
}

/**
 * Loads an RSA public key: PEM, base64 of X.509 SubjectPublicKeyInfo DER (what MPush SDKs are
 * configured with), or the DER bytes.
 *
 * @throws CryptoError `MPUSH_ERR_KEY` when the input is not an RSA public key.
 */
export function loadPublicKey(input: string | Buffer): KeyObject {
  let key: KeyObject;
  try {
    const text = asText(input);
    if (text?.includes('-----BEGIN')) {
      key = createPublicKey(text);
    } else {
      const der = text === undefined ? (input as Buffer) : base64Strict(text);
      key = createPublicKey({ key: der, format: 'der', type: 'spki' });
    }
  } catch (err) {
    if (err instanceof CryptoError) throw err;
    throw keyError('not an RSA public key', err);
  }
  if (key.asymmetricKeyType !== 'rsa') throw keyError(`not an RSA key (${key.asymmetricKeyType})`);
  return key;
}

/** Base64 of the X.509 SubjectPublicKeyInfo DER: the form MPush client SDKs are configured with. */
export function publicKeyToBase64(key: KeyObject): string {
  return publicKeyOf(key).export({ type: 'spki', format: 'der' }).toString('base64');
}

/** PEM (`-----BEGIN PUBLIC KEY-----`, SubjectPublicKeyInfo). */
export function publicKeyToPem(key: KeyObject): string {
  return publicKeyOf(key).export({ type: 'spki', format: 'pem' }).toString();
}

/**
 * Base64 of the PKCS#8 DER: the form of MPush's `mp.security.private-key`. The export always holds
 * the full CRT key, which MPush's Java side reads as well as its own non-CRT form.
 */
export function privateKeyToBase64(key: KeyObject): string {
  return requirePrivate(key).export({ type: 'pkcs8', format: 'der' }).toString('base64');
}

/** PEM (`-----BEGIN PRIVATE KEY-----`, PKCS#8). */
export function privateKeyToPem(key: KeyObject): string {
  return requirePrivate(key).export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** The public half of a private key (a public key is returned as it is). */
export function publicKeyOf(privateKey: KeyObject): KeyObject {
  if (privateKey.type === 'public') return privateKey;
  if (privateKey.type !== 'private') throw keyError('not an asymmetric key');
  return createPublicKey(privateKey);
}

// ---------------------------------------------------------------------------------------------------
// Encryption (client side, and tests)
// ---------------------------------------------------------------------------------------------------

/**
 * RSA PKCS#1 v1.5 encryption in blocks, as MPush's Java `RSAUtils.encryptByPublicKey`: the plaintext
 * is cut into (modulusBytes - 11)-byte pieces (117 for 1024-bit keys), each encrypted to one
 * modulus-size block, the blocks concatenated. An empty plaintext gives an empty result, as in Java.
 */
export function rsaEncrypt(publicKey: KeyObject, plain: Buffer): Buffer {
  const k = modulusBytes(publicKey);
  const step = k - PKCS1_OVERHEAD;
  const blocks: Buffer[] = [];
  for (let off = 0; off < plain.length; off += step) {
    const chunk = plain.subarray(off, Math.min(off + step, plain.length));
    blocks.push(publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, chunk));
  }
  return blocks.length === 1 ? blocks[0]! : Buffer.concat(blocks, blocks.length * k);
}

// ---------------------------------------------------------------------------------------------------
// Decryption with implicit rejection (server side)
// ---------------------------------------------------------------------------------------------------

/**
 * Decrypts MPush handshake bodies: RSA PKCS#1 v1.5, one modulus-size block at a time.
 *
 * Node 20 refuses `RSA_PKCS1_PADDING` for private decryption (CVE-2023-46809, the Marvin attack), so
 * each block is decrypted raw (`RSA_NO_PADDING`) and the padding is removed here with implicit
 * rejection, as OpenSSL 3.2+ does (draft-irtf-cfrg-rsa-guidance): when the padding is bad, the
 * result is a synthetic message whose length and bytes are derived from a secret and the ciphertext,
 * instead of an error. The same ciphertext always gives the same output for one decryptor, so an
 * attacker cannot tell a rejected block from a real one by asking twice; the handshake simply fails
 * later, when the body does not decode.
 *
 * The rejection secret is, by default, 32 random bytes drawn once per decryptor. Pass
 * {@link RsaDecryptor.deriveRejectionSecret} to get OpenSSL's exact outputs (SHA-256 of d), e.g. to
 * keep answers identical across restarts or nodes.
 */
export class RsaDecryptor {
  readonly #key: KeyObject;
  readonly #secret: Buffer;
  readonly #k: number;
  readonly #modulus: Buffer;
  readonly #lenMask: number;

  /**
   * @param privateKey RSA private key (see {@link loadPrivateKey}).
   * @param rejectionSecret key for deriving synthetic messages, at least 16 bytes; random if omitted.
   * @throws CryptoError `MPUSH_ERR_KEY` for a non-RSA or public key, or a short secret.
   */
  constructor(privateKey: KeyObject, rejectionSecret?: Buffer) {
    requirePrivate(privateKey);
    if (privateKey.asymmetricKeyType !== 'rsa') throw keyError('not an RSA key');
    if (rejectionSecret !== undefined && rejectionSecret.length < 16) {
      throw keyError('the rejection secret must be at least 16 bytes');
    }
    this.#key = privateKey;
    this.#secret = rejectionSecret === undefined ? randomBytes(32) : Buffer.from(rejectionSecret);
    this.#k = modulusBytes(privateKey);
    if (this.#k < PKCS1_OVERHEAD + 1 || this.#k > 4096) throw keyError('unsupported modulus size');
    const n = rsaPublicNumbers(privateKey).n;
    this.#modulus = Buffer.from(n.toString(16).padStart(this.#k * 2, '0'), 'hex');
    // Smallest all-ones mask covering the largest message length, as in OpenSSL.
    let m = this.#k - 10;
    m |= m >> 1;
    m |= m >> 2;
    m |= m >> 4;
    m |= m >> 8;
    this.#lenMask = m;
  }

  /**
   * The secret OpenSSL 3.2+ uses for implicit rejection: SHA-256 of the private exponent d, padded
   * to the modulus size. With it this decryptor returns the same synthetic messages as OpenSSL.
   */
  static deriveRejectionSecret(privateKey: KeyObject): Buffer {
    const jwk = requirePrivate(privateKey).export({ format: 'jwk' });
    if (jwk.d === undefined) throw keyError('not an RSA private key');
    const d = Buffer.from(jwk.d, 'base64url');
    const k = modulusBytes(privateKey);
    const padded = Buffer.alloc(Math.max(k, d.length));
    d.copy(padded, padded.length - d.length);
    const secret = createHash('sha256').update(padded).digest();
    padded.fill(0);
    return secret;
  }

  /** Cipher block size in bytes (the modulus size: 128 for 1024-bit keys). */
  get blockSize(): number {
    return this.#k;
  }

  /**
   * Decrypts a whole body: one or more modulus-size blocks, the plaintexts concatenated. Never throws
   * on bad padding (see the class comment).
   *
   * @throws CryptoError `MPUSH_ERR_RSA_BLOCK` if the length is 0 or not a multiple of the block size,
   *   or a block is not below the modulus (all public facts about the ciphertext).
   */
  decrypt(cipher: Buffer): Buffer {
    const k = this.#k;
    if (cipher.length === 0 || cipher.length % k !== 0) {
      throw new CryptoError(
        MPUSH_ERR_RSA_BLOCK,
        `RSA ciphertext length ${cipher.length} is not a positive multiple of ${k}`,
      );
    }
    if (cipher.length === k) return this.#decryptBlock(cipher);
    const parts: Buffer[] = [];
    let total = 0;
    for (let off = 0; off < cipher.length; off += k) {
      const part = this.#decryptBlock(cipher.subarray(off, off + k));
      parts.push(part);
      total += part.length;
    }
    return Buffer.concat(parts, total);
  }

  #decryptBlock(block: Buffer): Buffer {
    const k = this.#k;
    if (Buffer.compare(block, this.#modulus) >= 0) {
      throw new CryptoError(MPUSH_ERR_RSA_BLOCK, 'RSA ciphertext block is not below the modulus');
    }

    // Everything derived from the ciphertext and the secret (not from the plaintext) is computed
    // first and unconditionally, so the work done does not depend on whether the padding is good.
    const kdk = createHmac('sha256', this.#secret).update(block).digest();
    const synthetic = prf(kdk, 'message', k);
    const lengths = prf(kdk, 'length', 256);
    const maxLen = k - 10;
    let synthLen = 0;
    for (let i = 0; i < 256; i += 2) {
      const candidate = ((lengths[i]! << 8) | lengths[i + 1]!) & this.#lenMask;
      const ok = ctLt(candidate, maxLen);
      synthLen = (candidate & ok) | (synthLen & ~ok);
    }

    let em: Buffer;
    try {
      em = privateDecrypt({ key: this.#key, padding: constants.RSA_NO_PADDING }, block);
    } catch (err) {
      throw new CryptoError(MPUSH_ERR_RSA_BLOCK, 'RSA decryption failed', { cause: err });
    }
    if (em.length !== k) {
      // OpenSSL pads raw output to the modulus size; keep the scan below fixed-length regardless.
      const padded = Buffer.alloc(k);
      em.copy(padded, k - em.length);
      em.fill(0);
      em = padded;
    }

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
    const msgIndex = ((zeroIndex + 1) & good) | ((k - synthLen) & ~good);

    const out = Buffer.allocUnsafe(k - msgIndex);
    for (let i = msgIndex, j = 0; i < k; i++, j++) {
      out[j] = ((em[i]! & good) | (synthetic[i]! & ~good)) & 0xff;
    }
    em.fill(0);
    return out;
  }
}

/** The IRPRF of draft-irtf-cfrg-rsa-guidance / OpenSSL's ossl_rsa_prf: HMAC-SHA256 in counter mode. */
function prf(kdk: Buffer, label: string, length: number): Buffer {
  const bits = length * 8;
  const header = Buffer.allocUnsafe(2 + label.length + 2);
  header.write(label, 2, 'latin1');
  header.writeUInt16BE(bits & 0xffff, 2 + label.length);
  const out = Buffer.allocUnsafe(Math.ceil(length / 32) * 32);
  for (let pos = 0, iter = 0; pos < length; pos += 32, iter++) {
    header.writeUInt16BE(iter, 0);
    createHmac('sha256', kdk).update(header).digest().copy(out, pos);
  }
  return out.subarray(0, length);
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

// ---------------------------------------------------------------------------------------------------
// Key input decoding and a minimal ASN.1 DER reader
// ---------------------------------------------------------------------------------------------------

interface RsaPrivateParts {
  n: bigint;
  e: bigint;
  d: bigint;
  p: bigint;
  q: bigint;
}

interface KeyDer {
  bytes: Buffer;
  type: 'pkcs8' | 'pkcs1';
}

function keyError(message: string, cause?: unknown): CryptoError {
  return new CryptoError(MPUSH_ERR_KEY, message, cause === undefined ? undefined : { cause });
}

function requirePrivate(key: KeyObject): KeyObject {
  if (key.type !== 'private') throw keyError('a private key is required');
  return key;
}

function modulusBytes(key: KeyObject): number {
  if (key.asymmetricKeyType !== 'rsa') throw keyError('not an RSA key');
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (bits === undefined) throw keyError('RSA key without a modulus length');
  return Math.ceil(bits / 8);
}

function rsaPublicNumbers(key: KeyObject): { n: bigint; e: bigint } {
  if (key.asymmetricKeyType !== 'rsa') throw keyError('not an RSA key');
  const jwk = publicKeyOf(key).export({ format: 'jwk' });
  if (jwk.n === undefined || jwk.e === undefined) throw keyError('not an RSA key');
  return { n: b64uToBig(jwk.n), e: b64uToBig(jwk.e) };
}

const TAG_INTEGER = 0x02;
const TAG_OCTET_STRING = 0x04;
const TAG_OID = 0x06;
const TAG_SEQUENCE = 0x30;

interface DerElement {
  tag: number;
  start: number;
  end: number;
}

function readElement(buf: Buffer, pos: number, limit: number): DerElement {
  if (pos + 2 > limit) throw keyError('malformed DER: truncated');
  const tag = buf[pos]!;
  let len = buf[pos + 1]!;
  let start = pos + 2;
  if (len & 0x80) {
    const count = len & 0x7f;
    // 0x80 is BER's indefinite length (not DER); more than 4 length bytes is not a key.
    if (count === 0 || count > 4 || start + count > limit) throw keyError('malformed DER: bad length');
    len = 0;
    for (let i = 0; i < count; i++) len = len * 256 + buf[start + i]!;
    start += count;
  }
  if (start + len > limit) throw keyError('malformed DER: length past the end');
  return { tag, start, end: start + len };
}

/** A Buffer that does not start like DER is taken as text (PEM or base64 read from a file). */
function asText(input: string | Buffer): string | undefined {
  if (typeof input === 'string') return input;
  if (input.length > 0 && input[0] === 0x30) return undefined;
  return input.toString('latin1');
}

function base64Strict(text: string): Buffer {
  const compact = text.replace(/\s+/g, '');
  if (compact.length === 0 || compact.length % 4 === 1 || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) {
    throw keyError('key is neither PEM nor base64');
  }
  return Buffer.from(compact, 'base64');
}

function decodePrivateKeyInput(input: string | Buffer): KeyDer {
  const text = asText(input);
  let bytes: Buffer;
  if (text === undefined) {
    bytes = input as Buffer;
  } else if (text.includes('-----BEGIN')) {
    const m = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/.exec(text);
    if (m === null) throw keyError('malformed PEM');
    const label = m[1]!;
    if (label !== 'PRIVATE KEY' && label !== 'RSA PRIVATE KEY') {
      throw keyError(`PEM "${label}" is not an unencrypted RSA private key`);
    }
    bytes = base64Strict(m[2]!);
  } else {
    bytes = base64Strict(text);
  }
  return { bytes, type: isPkcs8(bytes) ? 'pkcs8' : 'pkcs1' };
}

function isPkcs8(der: Buffer): boolean {
  const outer = expectElement(der, 0, der.length, TAG_SEQUENCE, 'SEQUENCE');
  const version = expectElement(der, outer.start, outer.end, TAG_INTEGER, 'version');
  return version.end < outer.end && readElement(der, version.end, outer.end).tag === TAG_SEQUENCE;
}

/** DER of OID 1.2.840.113549.1.1.1 (rsaEncryption), content bytes only. */
const RSA_ENCRYPTION_OID = Buffer.from('2a864886f70d010101', 'hex');

function parseRsaPrivateKey(der: Buffer): RsaPrivateParts {
  if (!isPkcs8(der)) return parsePkcs1(der, 0, der.length);
  // PrivateKeyInfo ::= SEQUENCE { version, AlgorithmIdentifier, OCTET STRING privateKey, ... }
  const outer = expectElement(der, 0, der.length, TAG_SEQUENCE, 'SEQUENCE');
  if (outer.end !== der.length) throw keyError('malformed DER: trailing bytes');
  const version = expectElement(der, outer.start, outer.end, TAG_INTEGER, 'version');
  const alg = expectElement(der, version.end, outer.end, TAG_SEQUENCE, 'AlgorithmIdentifier');
  const oid = expectElement(der, alg.start, alg.end, TAG_OID, 'OID');
  if (!der.subarray(oid.start, oid.end).equals(RSA_ENCRYPTION_OID)) throw keyError('not an RSA key');
  const inner = expectElement(der, alg.end, outer.end, TAG_OCTET_STRING, 'OCTET STRING');
  return parsePkcs1(der, inner.start, inner.end);
}

function parsePkcs1(der: Buffer, from: number, to: number): RsaPrivateParts {
  // RSAPrivateKey ::= SEQUENCE { version, n, e, d, p, q, dp, dq, qi, ... }
  const seq = expectElement(der, from, to, TAG_SEQUENCE, 'RSAPrivateKey');
  if (seq.end !== to) throw keyError('malformed DER: trailing bytes');
  const values: bigint[] = [];
  let pos = seq.start;
  for (let i = 0; i < 9; i++) {
    const el = expectElement(der, pos, seq.end, TAG_INTEGER, 'INTEGER');
    values.push(integerValue(der, el));
    pos = el.end;
  }
  const [, n, e, d, p, q] = values as [bigint, bigint, bigint, bigint, bigint, bigint];
  return { n, e, d, p, q };
}

function expectElement(buf: Buffer, pos: number, limit: number, tag: number, what: string): DerElement {
  const el = readElement(buf, pos, limit);
  if (el.tag !== tag) throw keyError(`malformed DER: expected ${what}`);
  return el;
}

function integerValue(buf: Buffer, el: DerElement): bigint {
  if (el.end === el.start || buf[el.start]! & 0x80) throw keyError('malformed DER: bad INTEGER');
  return BigInt(`0x${buf.toString('hex', el.start, el.end)}`);
}

// ---------------------------------------------------------------------------------------------------
// BigInt arithmetic for recovering a non-CRT key
// ---------------------------------------------------------------------------------------------------

function modPow(base: bigint, exp: bigint, mod: bigint): bigint {
  let result = 1n;
  let b = base % mod;
  let x = exp;
  while (x > 0n) {
    if (x & 1n) result = (result * b) % mod;
    b = (b * b) % mod;
    x >>= 1n;
  }
  return result;
}

function gcd(a: bigint, b: bigint): bigint {
  let x = a < 0n ? -a : a;
  let y = b < 0n ? -b : b;
  while (y !== 0n) [x, y] = [y, x % y];
  return x;
}

function lcm(a: bigint, b: bigint): bigint {
  return (a / gcd(a, b)) * b;
}

function modInverse(a: bigint, m: bigint): bigint {
  let [oldR, r] = [a % m, m];
  let [oldS, s] = [1n, 0n];
  while (r !== 0n) {
    const q = oldR / r;
    [oldR, r] = [r, oldR - q * r];
    [oldS, s] = [s, oldS - q * s];
  }
  if (oldR !== 1n) throw keyError('CRT coefficient does not exist');
  return ((oldS % m) + m) % m;
}

/** Exponents seen in practice, most likely first (MPush's key pairs use 65537). */
const COMMON_EXPONENTS = [65537n, 3n, 5n, 17n, 257n];

/** Finds e by checking (m^e)^d = m mod n for two test values. */
function guessPublicExponent(n: bigint, d: bigint): bigint {
  for (const e of COMMON_EXPONENTS) {
    let ok = true;
    for (const m of [2n, 3n]) {
      if (modPow(modPow(m, e, n), d, n) !== m) {
        ok = false;
        break;
      }
    }
    if (ok) return e;
  }
  throw keyError('cannot find the public exponent: pass the public key');
}

const SMALL_PRIMES = [2n, 3n, 5n, 7n, 11n, 13n, 17n, 19n, 23n, 29n, 31n, 37n, 41n, 43n, 47n, 53n, 59n, 61n];

/**
 * Factors n from (e, d) (NIST SP 800-56B rev. 2, appendix C): k = e·d − 1 = 2^t·r with r odd; for a
 * base g, some g^(r·2^i) is a square root of 1 other than ±1, and gcd(it − 1, n) is a prime factor.
 * Each base succeeds with probability at least 1/2, so a fixed list of bases is plenty and the loop
 * is bounded (t is at most the bit length of k).
 */
function recoverPrimes(n: bigint, e: bigint, d: bigint): [bigint, bigint] {
  const k = e * d - 1n;
  if (k <= 0n || (k & 1n) === 1n) throw keyError('e and d do not match');
  let r = k;
  let t = 0;
  while ((r & 1n) === 0n) {
    r >>= 1n;
    t++;
  }
  const minusOne = n - 1n;
  for (const g of SMALL_PRIMES) {
    let y = modPow(g, r, n);
    if (y === 1n || y === minusOne) continue;
    for (let i = 0; i < t; i++) {
      const x = (y * y) % n;
      if (x === 1n) {
        const p = gcd(y - 1n, n);
        if (p <= 1n || p >= n) break;
        const q = n / p;
        return p > q ? [p, q] : [q, p];
      }
      if (x === minusOne) break;
      y = x;
    }
  }
  throw keyError('cannot factor the modulus from (n, e, d): e or d is wrong');
}

function bigToB64u(x: bigint): string {
  const hex = x.toString(16);
  return Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex').toString('base64url');
}

function b64uToBig(s: string): bigint {
  const buf = Buffer.from(s, 'base64url');
  return buf.length === 0 ? 0n : BigInt(`0x${buf.toString('hex')}`);
}
