/** Ciphertext length is 0, not a multiple of the RSA modulus size, or a block is not below the modulus. */
export const MPUSH_ERR_RSA_BLOCK = 'MPUSH_ERR_RSA_BLOCK';
/** AES ciphertext length is not a positive multiple of 16, or its PKCS#7 padding is wrong. */
export const MPUSH_ERR_AES_DECRYPT = 'MPUSH_ERR_AES_DECRYPT';
/** Inflating would produce more bytes than allowed (decompression bomb). */
export const MPUSH_ERR_INFLATE_TOO_LARGE = 'MPUSH_ERR_INFLATE_TOO_LARGE';
/** The zlib stream is corrupt or truncated. */
export const MPUSH_ERR_INFLATE = 'MPUSH_ERR_INFLATE';
/** A key, iv or key encoding is unusable. */
export const MPUSH_ERR_KEY = 'MPUSH_ERR_KEY';

/** Every machine code a {@link CryptoError} can carry. */
export type CryptoErrorCode =
  | typeof MPUSH_ERR_RSA_BLOCK
  | typeof MPUSH_ERR_AES_DECRYPT
  | typeof MPUSH_ERR_INFLATE_TOO_LARGE
  | typeof MPUSH_ERR_INFLATE
  | typeof MPUSH_ERR_KEY;

/**
 * Error thrown by the crypto layer. Callers branch on {@link CryptoError.code}, never on the message,
 * which is for humans and may change.
 */
export class CryptoError extends Error {
  /** Machine-readable code, one of the `MPUSH_ERR_*` constants. */
  readonly code: CryptoErrorCode;

  constructor(code: CryptoErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CryptoError';
    this.code = code;
  }
}

/** A {@link CryptoError} `MPUSH_ERR_KEY`: the one error every key check throws. */
export function keyError(message: string, cause?: unknown): CryptoError {
  return new CryptoError(MPUSH_ERR_KEY, message, cause === undefined ? undefined : { cause });
}
