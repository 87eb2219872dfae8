// Completing a non-CRT RSA key: MPush's tooling writes private keys holding only n and d (e and the
// CRT fields 0), which OpenSSL cannot use. From (n, e, d) the primes and the CRT values follow, with
// BigInt arithmetic; e itself is guessed among the common exponents when nothing gives it.

import type { JsonWebKey } from 'node:crypto';
import { keyError } from './errors.js';

/**
 * The full private key, as a JWK OpenSSL imports, of the non-CRT key (n, e, d).
 *
 * @throws CryptoError `MPUSH_ERR_KEY` when e and d do not match or n cannot be factored from them.
 */
export function completeNonCrtKey(n: bigint, e: bigint, d: bigint): JsonWebKey {
  const [p, q] = recoverPrimes(n, e, d);
  const lambda = lcm(p - 1n, q - 1n);
  if ((e * d) % lambda !== 1n) throw keyError('e and d do not match');
  return {
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
}

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

/**
 * Finds e by checking (m^e)^d = m mod n for two test values.
 *
 * @throws CryptoError `MPUSH_ERR_KEY` when none of the common exponents fits.
 */
export function guessPublicExponent(n: bigint, d: bigint): bigint {
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

/** A JWK number (base64url, big-endian) as a BigInt; empty is 0. */
export function b64uToBig(s: string): bigint {
  const buf = Buffer.from(s, 'base64url');
  return buf.length === 0 ? 0n : BigInt(`0x${buf.toString('hex')}`);
}
