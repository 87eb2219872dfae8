// Codec benchmark: frame decoding under three chunkings, packet and body encoding, and the crypto
// layer's figures. Prints one JSON object on stdout. Numbers only; tests never assert on them.
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import {
  Command,
  encodePacket,
  Flags,
  FrameDecoder,
  type FrameHandler,
  HandshakeCodec,
  type HandshakeMessage,
  type Packet,
} from '../../src/protocol/index.js';
import { runCryptoBench } from './crypto-bench.js';

const FRAMES = 200_000;
const BODY_BYTES = 100;
const MIN_SECONDS = 1;

/** xorshift32, seeded, so every run cuts the stream the same way. */
function xorshift(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

function buildStream(): Buffer {
  const frameBytes = 13 + BODY_BYTES;
  const out = Buffer.allocUnsafe(FRAMES * frameBytes);
  const body = Buffer.alloc(BODY_BYTES);
  for (let i = 0; i < BODY_BYTES; i++) body[i] = (i * 31) & 0xff;
  for (let i = 0; i < FRAMES; i++) {
    encodePacket({ cmd: Command.PUSH, flags: Flags.CRYPTO | Flags.BIZ_ACK, sessionId: i, body }).copy(
      out,
      i * frameBytes,
    );
  }
  return out;
}

/** Cuts `stream` into views of min..max bytes. */
function cut(stream: Buffer, next: () => number, min: number, max: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let pos = 0; pos < stream.length; ) {
    const size = min + (next() % (max - min + 1));
    chunks.push(stream.subarray(pos, pos + size));
    pos += size;
  }
  return chunks;
}

function decodeAll(decoder: FrameDecoder, chunks: Buffer[]): void {
  for (let i = 0; i < chunks.length; i++) decoder.push(chunks[i]!);
}

/** Frames per second decoding `chunks` (one pass = FRAMES frames) for at least MIN_SECONDS. */
function decodeRate(chunks: Buffer[]): number {
  // Correctness first, outside the timing: every frame must come out.
  let seen = 0;
  const counting = new FrameDecoder({
    onPacket: () => {
      seen++;
    },
    onHeartbeat: () => {},
  });
  decodeAll(counting, chunks);
  if (seen !== FRAMES || counting.bufferedBytes !== 0) throw new Error(`decoded ${seen} of ${FRAMES} frames`);

  const noop: FrameHandler = { onPacket: (_p: Packet) => {}, onHeartbeat: () => {} };
  const decoder = new FrameDecoder(noop);
  decodeAll(decoder, chunks); // warm-up
  let passes = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    decodeAll(decoder, chunks);
    passes++;
    elapsed = performance.now() - start;
  } while (elapsed < MIN_SECONDS * 1000);
  return Math.round((passes * FRAMES) / (elapsed / 1000));
}

/** Calls `fn` in batches for at least MIN_SECONDS; returns calls per second. */
function rate(fn: () => number, batch = 10_000): number {
  let sink = 0;
  for (let i = 0; i < batch; i++) sink += fn(); // warm-up
  let calls = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    for (let i = 0; i < batch; i++) sink += fn();
    calls += batch;
    elapsed = performance.now() - start;
  } while (elapsed < MIN_SECONDS * 1000);
  if (sink === -1) console.error('unreachable'); // keeps `sink` alive
  return Math.round(calls / (elapsed / 1000));
}

async function main(): Promise<void> {
  const stream = buildStream();
  const next = xorshift(0x5eed);
  const randomChunks = cut(stream, next, 1, 64 * 1024);
  const wholeChunks = cut(stream, next, 64 * 1024, 64 * 1024);
  const smallChunks = cut(stream, next, 1, 200);

  const framesDecodedPerSec = decodeRate(randomChunks);
  const framesDecodedPerSecWholeChunks = decodeRate(wholeChunks);
  const framesDecodedPerSecSmallChunks = decodeRate(smallChunks);

  const pushPacket: Packet = {
    cmd: Command.PUSH,
    flags: Flags.CRYPTO,
    sessionId: 42,
    body: Buffer.alloc(BODY_BYTES, 0x61),
  };
  const framesEncodedPerSec = rate(() => encodePacket(pushPacket).length);

  const handshake: HandshakeMessage = {
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
  const bodyEncodesPerSec = rate(() => HandshakeCodec.encode(handshake).length);

  const crypto = await runCryptoBench();

  const report = {
    bench: 'codec',
    node: process.version,
    cpus: os.cpus().length,
    timestamp: new Date().toISOString(),
    frames: FRAMES,
    bodyBytes: BODY_BYTES,
    framesDecodedPerSec,
    framesDecodedPerSecWholeChunks,
    framesDecodedPerSecSmallChunks,
    framesEncodedPerSec,
    bodyEncodesPerSec,
    ...crypto,
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

await main();
