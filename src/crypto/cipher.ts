// The per-connection cipher abstraction: a connection starts with RSA (handshake) and switches to AES
// (mpush-wire §5). Codecs only see this interface.

import type { KeyObject } from 'node:crypto';
import { CryptoError, MPUSH_ERR_KEY } from './errors.js';
import { type RsaDecryptor, rsaEncrypt } from './rsa.js';

/** A body cipher. Both methods are synchronous and throw {@link CryptoError} on bad input. */
export interface Cipher {
  encrypt(plain: Buffer): Buffer;
  decrypt(cipher: Buffer): Buffer;
  /** Frees what an idle connection need not hold (native contexts); the cipher stays usable. */
  release?(): void;
  /** Frees only the decrypt context. */
  releaseDecrypt?(): void;
}

export { AesCipher } from './aes.js';

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
