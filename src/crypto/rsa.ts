// RSA for the MPush handshake (mpush-wire §5): 1024-bit keys, PKCS#1 v1.5 padding, ECB-style blocks of
// (modulusBytes - 11) plain bytes -> modulusBytes cipher bytes, exactly as MPush's Java RSAUtils.
// This file holds the block cipher (encryption, the raw decryptor) and the handshake's RSA ciphers;
// keys are in rsa-keys.ts (DER reading in rsa-der.ts, non-CRT keys in rsa-recover.ts), and the
// padding removal with implicit rejection in rsa-unpad.ts.

import {
  constants,
  createHash,
  type KeyObject,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import type { Cipher } from './cipher.js';
import { CryptoError, keyError, MPUSH_ERR_KEY, MPUSH_ERR_RSA_BLOCK } from './errors.js';
import { modulusBytes, requirePrivate, rsaPublicNumbers } from './rsa-keys.js';
import { SyntheticMessages, unpadPkcs1 } from './rsa-unpad.js';

/** PKCS#1 v1.5 needs 0x00 0x02, at least 8 padding bytes and a 0x00 separator. */
const PKCS1_OVERHEAD = 11;

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
  readonly #k: number;
  readonly #modulus: Buffer;
  readonly #synthetic: SyntheticMessages;

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
    this.#k = modulusBytes(privateKey);
    if (this.#k < PKCS1_OVERHEAD + 1 || this.#k > 4096) throw keyError('unsupported modulus size');
    const n = rsaPublicNumbers(privateKey).n;
    this.#modulus = Buffer.from(n.toString(16).padStart(this.#k * 2, '0'), 'hex');
    const secret = rejectionSecret ?? randomBytes(32);
    this.#synthetic = new SyntheticMessages(secret, this.#k);
    if (rejectionSecret === undefined) secret.fill(0);
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
    const synthetic = this.#synthetic.of(block);

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

    return unpadPkcs1(em, synthetic);
  }
}

// ---------------------------------------------------------------------------------------------------
// The handshake's ciphers (mpush-wire §5): RSA until the AES session key is agreed
// ---------------------------------------------------------------------------------------------------

/**
 * The server's cipher before the handshake: decrypts the RSA-encrypted Handshake body. The server
 * never RSA-encrypts (its HandshakeOk goes out under AES), so {@link RsaServerCipher.encrypt} throws.
 * Stateless: one instance can serve every connection.
 */
export class RsaServerCipher implements Cipher {
  readonly #decryptor: RsaDecryptor;

  constructor(decryptor: RsaDecryptor) {
    this.#decryptor = decryptor;
  }

  /** @throws CryptoError `MPUSH_ERR_KEY` always. */
  encrypt(_plain: Buffer): Buffer {
    throw new CryptoError(MPUSH_ERR_KEY, 'the server has no RSA public-key encryption: reply under AES');
  }

  /** See {@link RsaDecryptor.decrypt}. */
  decrypt(cipher: Buffer): Buffer {
    return this.#decryptor.decrypt(cipher);
  }
}

/**
 * A client's cipher before the handshake (test clients, benchmarks): encrypts the Handshake body with
 * the server's public key. It cannot decrypt (no private key), so {@link RsaClientCipher.decrypt} throws.
 */
export class RsaClientCipher implements Cipher {
  readonly #publicKey: KeyObject;

  constructor(publicKey: KeyObject) {
    this.#publicKey = publicKey;
  }

  /** See {@link rsaEncrypt}. */
  encrypt(plain: Buffer): Buffer {
    return rsaEncrypt(this.#publicKey, plain);
  }

  /** @throws CryptoError `MPUSH_ERR_KEY` always. */
  decrypt(_cipher: Buffer): Buffer {
    throw new CryptoError(MPUSH_ERR_KEY, 'an RSA client cipher holds no private key and cannot decrypt');
  }
}
