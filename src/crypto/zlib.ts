// zlib (RFC 1950: Deflate with the zlib header, not gzip) for COMPRESS-flagged bodies (mpush-wire §5).

import { constants as bufferConstants } from 'node:buffer';
import { deflateSync, inflateSync } from 'node:zlib';
import { CryptoError, MPUSH_ERR_INFLATE, MPUSH_ERR_INFLATE_TOO_LARGE } from './errors.js';

/** Compresses like Java's `DeflaterOutputStream` (zlib format, default level 6). */
export function deflate(buf: Buffer): Buffer {
  return deflateSync(buf);
}

/**
 * Decompresses a zlib stream, refusing to produce more than `maxBytes` bytes. MPush inflates without
 * a bound (a decompression bomb); here inflation stops as soon as the output passes the bound, so
 * memory stays within about `maxBytes` plus one 16 KiB chunk whatever the input claims.
 *
 * @throws CryptoError `MPUSH_ERR_INFLATE_TOO_LARGE` past the bound, `MPUSH_ERR_INFLATE` for corrupt or
 *   truncated data.
 */
export function inflate(buf: Buffer, maxBytes: number): Buffer {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new RangeError(`bad maxBytes: ${maxBytes}`);
  let out: Buffer;
  try {
    // Node requires maxOutputLength >= 1; a bound of 0 is enforced by the length check below.
    out = inflateSync(buf, { maxOutputLength: Math.min(Math.max(maxBytes, 1), bufferConstants.MAX_LENGTH) });
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new CryptoError(MPUSH_ERR_INFLATE_TOO_LARGE, `inflated data exceeds ${maxBytes} bytes`, {
        cause: err,
      });
    }
    throw new CryptoError(MPUSH_ERR_INFLATE, 'corrupt zlib data', { cause: err });
  }
  if (out.length > maxBytes) {
    throw new CryptoError(MPUSH_ERR_INFLATE_TOO_LARGE, `inflated data exceeds ${maxBytes} bytes`);
  }
  return out;
}
