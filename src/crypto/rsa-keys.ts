// RSA keys for the MPush handshake (mpush-wire §5): generating, loading (PEM, base64 DER as MPush's
// configuration holds it, raw DER, MPush's non-CRT keys) and encoding them for SDKs and config.

import {
  constants,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  privateDecrypt,
  publicEncrypt,
} from 'node:crypto';
import { CryptoError, keyError } from './errors.js';
import { isPkcs8, parseRsaPrivateKey } from './rsa-der.js';
import { b64uToBig, completeNonCrtKey, guessPublicExponent } from './rsa-recover.js';

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
  const jwk = completeNonCrtKey(n, e, d);
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

/** @internal The key itself, if it is a private key; else `MPUSH_ERR_KEY`. */
export function requirePrivate(key: KeyObject): KeyObject {
  if (key.type !== 'private') throw keyError('a private key is required');
  return key;
}

/** @internal The modulus size in bytes (the RSA block size: 128 for 1024-bit keys). */
export function modulusBytes(key: KeyObject): number {
  if (key.asymmetricKeyType !== 'rsa') throw keyError('not an RSA key');
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (bits === undefined) throw keyError('RSA key without a modulus length');
  return Math.ceil(bits / 8);
}

/** @internal n and e of an RSA key, public or private. */
export function rsaPublicNumbers(key: KeyObject): { n: bigint; e: bigint } {
  if (key.asymmetricKeyType !== 'rsa') throw keyError('not an RSA key');
  const jwk = publicKeyOf(key).export({ format: 'jwk' });
  if (jwk.n === undefined || jwk.e === undefined) throw keyError('not an RSA key');
  return { n: b64uToBig(jwk.n), e: b64uToBig(jwk.e) };
}

// ---------------------------------------------------------------------------------------------------
// Key input decoding: PEM, base64 or DER
// ---------------------------------------------------------------------------------------------------

interface KeyDer {
  bytes: Buffer;
  type: 'pkcs8' | 'pkcs1';
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
