// The crypto layer: RSA handshake, AES session cipher, bounded zlib. Depends on node: builtins and,
// for the one error shape every layer shares, protocol/errors.ts.

export { AesCipher, mixKey, randomKey } from './aes.js';
export type { Cipher } from './cipher.js';
export {
  CryptoError,
  type CryptoErrorCode,
  MPUSH_ERR_AES_DECRYPT,
  MPUSH_ERR_INFLATE,
  MPUSH_ERR_INFLATE_TOO_LARGE,
  MPUSH_ERR_KEY,
  MPUSH_ERR_RSA_BLOCK,
} from './errors.js';
export { RsaClientCipher, RsaDecryptor, RsaServerCipher, rsaEncrypt } from './rsa.js';
export {
  generateRsaKeyPair,
  loadPrivateKey,
  loadPublicKey,
  privateKeyToBase64,
  privateKeyToPem,
  publicKeyOf,
  publicKeyToBase64,
  publicKeyToPem,
} from './rsa-keys.js';
export { deflate, inflate } from './zlib.js';
