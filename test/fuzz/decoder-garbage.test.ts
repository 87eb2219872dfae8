import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BindUserCodec,
  decodeJsonPacket,
  ErrorCodec,
  encodePacket,
  FastConnectCodec,
  FastConnectOkCodec,
  FrameDecoder,
  GatewayKickCodec,
  GatewayPushCodec,
  HandshakeCodec,
  HandshakeOkCodec,
  HEADER_LENGTH,
  HttpRequestCodec,
  HttpResponseCodec,
  KickCodec,
  type MessageCodec,
  OkCodec,
  type Packet,
  ProtocolError,
} from '../../src/protocol/index.js';

const MAX_BODY = 10 * 1024;
const STREAM_BYTES = 1024 * 1024;

/** xorshift32: a tiny seeded PRNG so a failing run can be replayed from its seed. */
function xorshift(seed: number): () => number {
  let x = seed | 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

function randomBytes(next: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = next() & 0xff;
  return b;
}

const codecs: Array<[string, MessageCodec<unknown>]> = [
  ['Handshake', HandshakeCodec],
  ['HandshakeOk', HandshakeOkCodec],
  ['FastConnect', FastConnectCodec],
  ['FastConnectOk', FastConnectOkCodec],
  ['BindUser', BindUserCodec],
  ['Ok', OkCodec],
  ['Error', ErrorCodec],
  ['Kick', KickCodec],
  ['HttpRequest', HttpRequestCodec],
  ['HttpResponse', HttpResponseCodec],
  ['GatewayPush', GatewayPushCodec],
  ['GatewayKick', GatewayKickCodec],
] as [string, MessageCodec<unknown>][];

interface Stats {
  packets: number;
  heartbeats: number;
  protocolErrors: number;
  codes: Set<string>;
  decodedBodies: number;
}

/** Runs every body decoder over `body`; any exception but a ProtocolError fails the test. */
function decodeEverything(body: Buffer, stats: Stats): void {
  for (const [name, codec] of codecs) {
    try {
      codec.decode(body);
      stats.decodedBodies++;
    } catch (err) {
      if (!(err instanceof ProtocolError)) {
        assert.fail(`${name}.decode threw ${String(err)} on ${body.toString('hex').slice(0, 200)}`);
      }
      assert.match(err.code, /^MPUSH_ERR_/);
    }
  }
  try {
    decodeJsonPacket(body.toString());
  } catch (err) {
    if (!(err instanceof ProtocolError)) assert.fail(`decodeJsonPacket threw ${String(err)}`);
    assert.equal(err.code, 'MPUSH_ERR_BAD_JSON_PACKET');
  }
}

function newStats(): Stats {
  return { packets: 0, heartbeats: 0, protocolErrors: 0, codes: new Set(), decodedBodies: 0 };
}

function newDecoder(stats: Stats): FrameDecoder {
  return new FrameDecoder(
    {
      onPacket: (p: Packet) => {
        stats.packets++;
        assert.ok(p.body.length <= MAX_BODY);
        decodeEverything(p.body, stats);
      },
      onHeartbeat: () => {
        stats.heartbeats++;
      },
    },
    { maxBodyLength: MAX_BODY },
  );
}

/** Pushes one chunk; on a ProtocolError checks it is typed, resets and returns false. */
function pushChecked(decoder: FrameDecoder, chunk: Buffer, stats: Stats): boolean {
  let ok = true;
  try {
    decoder.push(chunk);
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    assert.match(err.code, /^MPUSH_ERR_/);
    assert.ok(
      err.code === 'MPUSH_ERR_PACKET_TOO_LARGE' || err.code === 'MPUSH_ERR_NEGATIVE_LENGTH',
      `unexpected code ${err.code}`,
    );
    assert.equal(decoder.failed, true);
    stats.protocolErrors++;
    stats.codes.add(err.code);
    decoder.reset();
    ok = false;
  }
  assert.ok(decoder.bufferedBytes <= HEADER_LENGTH + MAX_BODY, `bufferedBytes ${decoder.bufferedBytes}`);
  return ok;
}

/** Feeds `stream` in random chunks of 1..maxChunk bytes; resets after each ProtocolError. */
function feed(stream: Buffer, next: () => number, maxChunk: number): Stats {
  const stats = newStats();
  const decoder = newDecoder(stats);
  let pos = 0;
  while (pos < stream.length) {
    const chunk = stream.subarray(pos, pos + 1 + (next() % maxChunk));
    pos += chunk.length;
    pushChecked(decoder, chunk, stats);
  }
  return stats;
}

/**
 * Garbage that looks like frames: each segment is a run of frames with random small lengths,
 * random cmd/flags/sessionId and random bodies, with heartbeats between them, ending in something
 * bad (a negative or oversized length, or stray random bytes). Each segment plays one connection:
 * it is fed in random chunks and the decoder is reset after it, so the body decoders see many
 * real frames whatever the chunking.
 */
function frameLikeSegments(next: () => number, size: number): Buffer[] {
  const segments: Buffer[] = [];
  let total = 0;
  while (total < size) {
    const parts: Buffer[] = [];
    const frames = next() % 40;
    for (let i = 0; i < frames; i++) {
      if (next() % 10 === 0) parts.push(Buffer.alloc(1 + (next() % 4), 0xdf));
      const len = next() % 8 === 0 ? next() % 2048 : next() % 160;
      parts.push(
        encodePacket({
          cmd: next() & 0xff,
          flags: next() & 0xff,
          sessionId: next() | 0,
          body: randomBytes(next, len),
        }),
      );
    }
    const end = next() % 3;
    if (end === 2) {
      parts.push(randomBytes(next, 1 + (next() % 40)));
    } else {
      const bad = Buffer.alloc(HEADER_LENGTH + (next() % 64));
      bad.writeInt32BE(end === 0 ? -1 - (next() % 0x7fffffff) : MAX_BODY + 1 + (next() % 0x7fffd000), 0);
      parts.push(bad);
    }
    const segment = Buffer.concat(parts);
    segments.push(segment);
    total += segment.length;
  }
  return segments;
}

function heapUsedAfterGc(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc === 'function') gc();
  return process.memoryUsage().heapUsed;
}

describe('FrameDecoder on garbage', () => {
  const heapBefore = heapUsedAfterGc();

  it('survives 1 MiB of random bytes in random chunks with typed errors only', () => {
    const next = xorshift(0x12345678);
    const stream = randomBytes(next, STREAM_BYTES);
    const stats = feed(stream, next, 4096);
    assert.ok(stats.protocolErrors > 0, 'random headers must trip the length checks');
    assert.ok(stats.heartbeats > 0);
  });

  it('survives 1 MiB of random bytes in tiny chunks', () => {
    const next = xorshift(0x0badf00d);
    const stats = feed(randomBytes(next, STREAM_BYTES), next, 16);
    assert.ok(stats.protocolErrors > 0);
  });

  it('survives 1 MiB of frame-like garbage and feeds every body to every decoder', () => {
    const next = xorshift(0xc0ffee);
    const stats = newStats();
    const decoder = newDecoder(stats);
    for (const segment of frameLikeSegments(next, STREAM_BYTES)) {
      let pos = 0;
      while (pos < segment.length) {
        const chunk = segment.subarray(pos, pos + 1 + (next() % 512));
        pos += chunk.length;
        if (!pushChecked(decoder, chunk, stats)) break;
      }
      decoder.reset();
    }
    assert.ok(stats.packets > 1000, `only ${stats.packets} packets decoded`);
    assert.ok(stats.decodedBodies > 0, 'some random bodies happen to decode');
    assert.ok(stats.codes.has('MPUSH_ERR_PACKET_TOO_LARGE'));
    assert.ok(stats.codes.has('MPUSH_ERR_NEGATIVE_LENGTH'));
  });

  it('keeps heap growth bounded after the runs', () => {
    const grown = heapUsedAfterGc() - heapBefore;
    assert.ok(grown < 64 * 1024 * 1024, `heap grew by ${(grown / 1048576).toFixed(1)} MiB`);
  });
});
