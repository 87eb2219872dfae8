// A minimal ASN.1 DER reader for RSA private keys: PKCS#8 PrivateKeyInfo around a PKCS#1
// RSAPrivateKey, or the PKCS#1 structure alone. Only what reading MPush's keys needs, and it reads
// the numbers even when OpenSSL would refuse the key (MPush's non-CRT keys, see rsa-keys.ts).

import { keyError } from './errors.js';

/** The numbers of an RSAPrivateKey that loading needs; 0 where a non-CRT key leaves them empty. */
export interface RsaPrivateParts {
  n: bigint;
  e: bigint;
  d: bigint;
  p: bigint;
  q: bigint;
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

/**
 * Whether DER bytes are a PKCS#8 PrivateKeyInfo (version followed by an AlgorithmIdentifier
 * SEQUENCE) rather than a bare PKCS#1 RSAPrivateKey (version followed by INTEGERs).
 *
 * @throws CryptoError `MPUSH_ERR_KEY` if the bytes do not start like either.
 */
export function isPkcs8(der: Buffer): boolean {
  const outer = expectElement(der, 0, der.length, TAG_SEQUENCE, 'SEQUENCE');
  const version = expectElement(der, outer.start, outer.end, TAG_INTEGER, 'version');
  return version.end < outer.end && readElement(der, version.end, outer.end).tag === TAG_SEQUENCE;
}

/** DER of OID 1.2.840.113549.1.1.1 (rsaEncryption), content bytes only. */
const RSA_ENCRYPTION_OID = Buffer.from('2a864886f70d010101', 'hex');

/**
 * Reads n, e, d, p and q from a PKCS#8 or PKCS#1 RSA private key.
 *
 * @throws CryptoError `MPUSH_ERR_KEY` for malformed DER, trailing bytes or a non-RSA algorithm.
 */
export function parseRsaPrivateKey(der: Buffer): RsaPrivateParts {
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
