// The crypto layer's errors. The shape (and the answer table's vocabulary) is protocol/errors.ts's,
// the only file outside crypto/ this layer imports.

import { Answer, type ErrorAnswer, MPushError } from '../protocol/errors.js';

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
 * What each crypto failure is answered with: all of them are bad input inside a framed packet
 * (a handshake that is not valid RSA, AES text under the wrong key, a zlib bomb), answered
 * DISPATCH_ERROR as MPush does (mpush-wire §12).
 */
const CRYPTO_ANSWERS: Readonly<Record<CryptoErrorCode, ErrorAnswer>> = Object.freeze({
  MPUSH_ERR_RSA_BLOCK: Answer.BAD_INPUT,
  MPUSH_ERR_AES_DECRYPT: Answer.BAD_INPUT,
  MPUSH_ERR_INFLATE_TOO_LARGE: Answer.BAD_INPUT,
  MPUSH_ERR_INFLATE: Answer.BAD_INPUT,
  MPUSH_ERR_KEY: Answer.BAD_INPUT,
});

/**
 * Error thrown by the crypto layer, in the shape every layer shares ({@link MPushError}: machine code,
 * ErrorCode to send, disconnect reason). Callers branch on {@link CryptoError.code}, never on the
 * message, which is for humans and may change.
 */
export class CryptoError extends MPushError<CryptoErrorCode> {
  constructor(code: CryptoErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, CRYPTO_ANSWERS[code], options);
    this.name = 'CryptoError';
  }
}

/** A {@link CryptoError} `MPUSH_ERR_KEY`: the one error every key check throws. */
export function keyError(message: string, cause?: unknown): CryptoError {
  return new CryptoError(MPUSH_ERR_KEY, message, cause === undefined ? undefined : { cause });
}
