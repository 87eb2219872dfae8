// Codec benchmark, in this process: frame decoding under three chunkings, packet and body encoding,
// AES on a 100-byte body and the handshake's RSA block decrypt. No flags; one JSON report on stdout.

import os from 'node:os';
import {
  AesCipher,
  loadPrivateKey,
  publicKeyOf,
  RsaDecryptor,
  randomKey,
  rsaEncrypt,
} from '../../src/crypto/index.js';
import { Command, encodePacket, Flags, FrameDecoder, HandshakeCodec } from '../../src/protocol/index.js';
import { defaultKeys } from '../lib/keys.js';
import { printReport } from '../lib/report.js';

const FRAMES = 200_000;
const BODY_BYTES = 100;

/** Calls per second of `fn`, in batches, for at least `seconds` after one warm-up batch. */
function perSec(fn: () => number, batch: number, seconds = 1): number {
  let sink = 0;
  for (let i = 0; i < batch; i++) sink += fn();
  let calls = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    for (let i = 0; i < batch; i++) sink += fn();
    calls += batch;
    elapsed = performance.now() - start;
  } while (elapsed < seconds * 1000);
  if (sink === -1) console.error('unreachable'); // keeps the results observable
  return calls / (elapsed / 1000);
}

/** xorshift32, seeded, so every run cuts the stream the same way. */
function xorshift(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

const body = Buffer.alloc(BODY_BYTES);
for (let i = 0; i < BODY_BYTES; i++) body[i] = (i * 31) & 0xff;
const stream = Buffer.concat(
  Array.from({ length: FRAMES }, (_, i) =>
    encodePacket({ cmd: Command.PUSH, flags: Flags.CRYPTO | Flags.BIZ_ACK, sessionId: i, body }),
  ),
);
const next = xorshift(0x5eed);

/** `stream` cut into views of min..max bytes. */
function cut(min: number, max: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let pos = 0; pos < stream.length; ) {
    const size = min + (next() % (max - min + 1));
    chunks.push(stream.subarray(pos, pos + size));
    pos += size;
  }
  return chunks;
}

/** Frames per second decoding `chunks`, once every frame was seen to come out. */
function decodeRate(chunks: Buffer[]): number {
  let seen = 0;
  const decoder = new FrameDecoder({ onPacket: () => void seen++, onHeartbeat() {} });
  for (const c of chunks) decoder.push(c);
  if (seen !== FRAMES || decoder.bufferedBytes !== 0) throw new Error(`decoded ${seen} of ${FRAMES} frames`);
  const pass = () => {
    for (let i = 0; i < chunks.length; i++) decoder.push(chunks[i]!);
    return 0;
  };
  return Math.round(perSec(pass, 1) * FRAMES);
}

const handshake = {
  deviceId: 'device-0123456789',
  osName: 'android',
  osVersion: '14',
  clientVersion: '1.0.0',
  iv: Buffer.alloc(16, 1),
  clientKey: Buffer.alloc(16, 2),
  minHeartbeat: 240_000,
  maxHeartbeat: 240_000,
  timestamp: 0,
};
const aes = new AesCipher(randomKey(), randomKey());
const sealed = aes.encrypt(body);
if (!aes.decrypt(sealed).equals(body)) throw new Error('AES round trip failed');
// One handshake block: a 79-byte Handshake body under MPush's default key, as an SDK sends it.
const privateKey = loadPrivateKey(defaultKeys().privateKey);
const rsaBody = Buffer.alloc(79, 0x42);
const block = rsaEncrypt(publicKeyOf(privateKey), rsaBody);
const rsa = new RsaDecryptor(privateKey);
if (!rsa.decrypt(block).equals(rsaBody)) throw new Error('RSA round trip failed');

const push = { cmd: Command.PUSH, flags: Flags.CRYPTO, sessionId: 42, body: Buffer.alloc(BODY_BYTES, 0x61) };
const aesEncrypt = perSec(() => aes.encrypt(body).length, 10_000, 0.5);
const aesDecrypt = perSec(() => aes.decrypt(sealed).length, 10_000, 0.5);
const rsaPerSec = perSec(() => rsa.decrypt(block).length, 200, 0.5);
printReport({
  bench: 'codec',
  node: process.version,
  cpus: os.cpus().length,
  timestamp: new Date().toISOString(),
  frames: FRAMES,
  bodyBytes: BODY_BYTES,
  framesDecodedPerSec: decodeRate(cut(1, 64 * 1024)),
  framesDecodedPerSecWholeChunks: decodeRate(cut(64 * 1024, 64 * 1024)),
  framesDecodedPerSecSmallChunks: decodeRate(cut(1, 200)),
  framesEncodedPerSec: Math.round(perSec(() => encodePacket(push).length, 10_000)),
  bodyEncodesPerSec: Math.round(perSec(() => HandshakeCodec.encode(handshake).length, 10_000)),
  aesEncryptNsPer100B: Math.round(1e9 / aesEncrypt),
  aesDecryptNsPer100B: Math.round(1e9 / aesDecrypt),
  rsaHandshakeDecryptsPerSec: Math.round(rsaPerSec),
});
