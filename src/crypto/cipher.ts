// The per-connection cipher abstraction: a connection starts with RSA (handshake) and switches to AES
// (mpush-wire §5). Codecs only see this interface. It imports nothing, so its implementations
// (AesCipher in aes.ts, the RSA ciphers in rsa.ts) can all import it without an import cycle.

/** A body cipher. Both methods are synchronous and throw `CryptoError` on bad input. */
export interface Cipher {
  encrypt(plain: Buffer): Buffer;
  decrypt(cipher: Buffer): Buffer;
  /** Frees what an idle connection need not hold (native contexts); the cipher stays usable. */
  release?(): void;
  /** Frees only the decrypt context. */
  releaseDecrypt?(): void;
}
