// Crypto figures for the codec benchmark: AES per 100-byte body, RSA handshake block decrypts.
// Numbers only; tests never assert on them.

import {
  AesCipher,
  loadPrivateKey,
  publicKeyOf,
  RsaDecryptor,
  randomKey,
  rsaEncrypt,
} from '../../src/crypto/index.js';

/** MPush 0.8.1's published default private key (non-CRT PKCS#8), as its servers run out of the box. */
const MPUSH_DEFAULT_PRIVATE_KEY =
  'MIIBNgIBADANBgkqhkiG9w0BAQEFAASCASAwggEcAgEAAoGBAKCE8JYKhsbydMPbiO7BJVq1pbuJWJHFxOR7L8Hv3ZVkSG4eNC8DdwAmDHYu/wad' +
  'fw0ihKFm2gKDcLHp5yz5UQ8PZ8FyDYvgkrvGV0ak4nc40QDJWws621dm01e/INlGKOIStAAsxOityCLv0zm5Vf3+My/YaBvZcB5mGUsPbx8fAgEA' +
  'AoGAAy0+WanRqwRHXUzt89OsupPXuNNqBlCEqgTqGAt4Nimq6Ur9u2R1KXKXUotxjp71Ubw6JbuUWvJg+5Rmd9RjT0HOUEQF3rvzEepKtaraPhV5' +
  'ejEIrB+nJWNfGye4yzLdfEXJBGUQzrG+wNe13izfRNXI4dN/6Q5npzqaqv0E1CkCAQACAQACAQACAQACAQA=';

const MIN_NS = 500_000_000n;
const BODY_BYTES = 100;

/** Runs `fn` in batches for at least 0.5 s after a warm-up; returns ns per call. */
function nsPerCall(fn: () => number, batch: number): number {
  let sink = 0;
  for (let i = 0; i < batch * 5; i++) sink += fn();
  let calls = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0n;
  do {
    for (let i = 0; i < batch; i++) sink += fn();
    calls += batch;
    elapsed = process.hrtime.bigint() - start;
  } while (elapsed < MIN_NS);
  if (sink === -1) console.error('unreachable'); // keeps the results observable
  return Number(elapsed) / calls;
}

/** Measures the crypto layer on this machine. */
export async function runCryptoBench(): Promise<{
  aesEncryptNsPer100B: number;
  aesDecryptNsPer100B: number;
  aesEncryptPerSec: number;
  aesDecryptPerSec: number;
  rsaHandshakeDecryptsPerSec: number;
}> {
  const body = Buffer.alloc(BODY_BYTES);
  for (let i = 0; i < BODY_BYTES; i++) body[i] = (i * 31) & 0xff;
  const aes = new AesCipher(randomKey(), randomKey());
  const sealed = aes.encrypt(body);
  if (!aes.decrypt(sealed).equals(body)) throw new Error('AES round trip failed');

  const aesEncryptNs = nsPerCall(() => aes.encrypt(body).length, 10_000);
  const aesDecryptNs = nsPerCall(() => aes.decrypt(sealed).length, 10_000);

  // One handshake block: a 79-byte Handshake body under the default key, as an SDK sends it.
  const privateKey = loadPrivateKey(MPUSH_DEFAULT_PRIVATE_KEY);
  const handshakeBody = Buffer.alloc(79, 0x42);
  const block = rsaEncrypt(publicKeyOf(privateKey), handshakeBody);
  const decryptor = new RsaDecryptor(privateKey);
  if (!decryptor.decrypt(block).equals(handshakeBody)) throw new Error('RSA round trip failed');
  const rsaNs = nsPerCall(() => decryptor.decrypt(block).length, 200);

  return {
    aesEncryptNsPer100B: Math.round(aesEncryptNs),
    aesDecryptNsPer100B: Math.round(aesDecryptNs),
    aesEncryptPerSec: Math.round(1e9 / aesEncryptNs),
    aesDecryptPerSec: Math.round(1e9 / aesDecryptNs),
    rsaHandshakeDecryptsPerSec: Math.round(1e9 / rsaNs),
  };
}
