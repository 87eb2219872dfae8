import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  encodePacket,
  FrameDecoder,
  type FrameDecoderOptions,
  HEADER_LENGTH,
  HEARTBEAT_FRAME,
  type Packet,
  ProtocolError,
  type ProtocolErrorCode,
} from '../../../src/protocol/index.js';

/** What the decoder emitted, in order; packet bodies are kept as the very buffers handed out. */
type Event = { kind: 'heartbeat' } | { kind: 'packet'; packet: Packet };

function collector(options?: FrameDecoderOptions): { decoder: FrameDecoder; events: Event[] } {
  const events: Event[] = [];
  const decoder = new FrameDecoder(
    {
      onPacket: (packet) => events.push({ kind: 'packet', packet }),
      onHeartbeat: () => events.push({ kind: 'heartbeat' }),
    },
    options,
  );
  return { decoder, events };
}

/** A comparable form of the events: body as hex, cc/lrc included. */
function describeEvents(events: Event[]): unknown[] {
  return events.map((e) =>
    e.kind === 'heartbeat'
      ? 'heartbeat'
      : {
          cmd: e.packet.cmd,
          flags: e.packet.flags,
          sessionId: e.packet.sessionId,
          cc: e.packet.cc ?? 0,
          lrc: e.packet.lrc ?? 0,
          body: e.packet.body.toString('hex'),
        },
  );
}

function expected(items: Array<Packet | 'heartbeat'>): unknown[] {
  return items.map((p) =>
    p === 'heartbeat'
      ? 'heartbeat'
      : {
          cmd: p.cmd,
          flags: p.flags,
          sessionId: p.sessionId,
          cc: p.cc ?? 0,
          lrc: p.lrc ?? 0,
          body: p.body.toString('hex'),
        },
  );
}

function decodeChunks(chunks: Buffer[], options?: FrameDecoderOptions): Event[] {
  const { decoder, events } = collector(options);
  for (const c of chunks) decoder.push(c);
  assert.equal(decoder.bufferedBytes, 0, 'nothing left over after complete frames');
  return events;
}

function header(length: number, cmd = 15, sessionId = 1): Buffer {
  const h = Buffer.alloc(HEADER_LENGTH);
  h.writeInt32BE(length, 0);
  h[4] = cmd;
  h.writeInt32BE(sessionId, 8);
  return h;
}

function assertProtocolError(fn: () => void, code: ProtocolErrorCode): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ProtocolError, `expected ProtocolError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

const push = (body: string, sessionId = 7, flags = 5): Packet => ({
  cmd: 15,
  flags,
  sessionId,
  body: Buffer.from(body),
});

describe('FrameDecoder', () => {
  it('emits heartbeat runs and packets in wire order', () => {
    const a = push('first');
    const b = push('second', 8);
    const wire = Buffer.concat([
      Buffer.from('dfdfdf', 'hex'),
      encodePacket(a),
      HEARTBEAT_FRAME,
      HEARTBEAT_FRAME,
      encodePacket(b),
      Buffer.from('dfdfdf', 'hex'),
    ]);
    const want = expected([
      'heartbeat',
      'heartbeat',
      'heartbeat',
      a,
      'heartbeat',
      'heartbeat',
      b,
      'heartbeat',
      'heartbeat',
      'heartbeat',
    ]);
    assert.deepEqual(describeEvents(decodeChunks([wire])), want);
    assert.deepEqual(describeEvents(decodeChunks([...wire].map((x) => Buffer.from([x])))), want);
  });

  it('reads 0xDF inside a header or body as data, not as a heartbeat', () => {
    // sessionId 0xdfdfdfdf and a body of 0xdf bytes.
    const p: Packet = {
      cmd: 0xdf,
      flags: 0xdf,
      sessionId: 0xdfdfdfdf | 0,
      body: Buffer.alloc(20, 0xdf),
      cc: -8225,
      lrc: 0xdf,
    };
    const wire = encodePacket(p);
    for (let i = 1; i < wire.length; i++) {
      assert.deepEqual(describeEvents(decodeChunks([wire.subarray(0, i), wire.subarray(i)])), expected([p]));
    }
  });

  it('decodes a frame whole, byte by byte and split at every boundary', () => {
    const p: Packet = {
      cmd: 5,
      flags: 1,
      sessionId: 2,
      body: Buffer.from('0123456789abcdef0123456789abcdef'),
      cc: 0x1234,
      lrc: 0x56,
    };
    const wire = encodePacket(p);
    const want = expected([p]);
    assert.deepEqual(describeEvents(decodeChunks([wire])), want, 'whole');
    assert.deepEqual(
      describeEvents(decodeChunks([...wire].map((x) => Buffer.from([x])))),
      want,
      'byte by byte',
    );
    for (let i = 0; i <= wire.length; i++) {
      assert.deepEqual(
        describeEvents(decodeChunks([wire.subarray(0, i), wire.subarray(i)])),
        want,
        `split at ${i}`,
      );
    }
  });

  it('decodes many frames from one chunk', () => {
    const packets: Packet[] = [];
    for (let i = 0; i < 100; i++)
      packets.push({ cmd: i % 25, flags: i & 0x1f, sessionId: i * 1000 - 50_000, body: Buffer.alloc(i, i) });
    const wire = Buffer.concat(packets.map(encodePacket));
    assert.deepEqual(describeEvents(decodeChunks([wire])), expected(packets));
  });

  it('decodes a zero-length body at once, as an empty buffer', () => {
    const ack: Packet = { cmd: 23, flags: 0, sessionId: 7, body: Buffer.alloc(0) };
    const wire = encodePacket(ack);
    assert.equal(wire.toString('hex'), '00000000170000000000000700');
    const { decoder, events } = collector();
    decoder.push(wire.subarray(0, 12));
    assert.equal(events.length, 0);
    decoder.push(wire.subarray(12));
    assert.deepEqual(describeEvents(events), expected([ack]));
    assert.equal(events[0]?.kind === 'packet' && events[0].packet.body.length, 0);
    // Two empty frames back to back, then a heartbeat.
    assert.deepEqual(
      describeEvents(decodeChunks([Buffer.concat([wire, wire, HEARTBEAT_FRAME])])),
      expected([ack, ack, 'heartbeat']),
    );
  });

  it('accepts a body of exactly maxBodyLength', () => {
    const p = push('x'.repeat(64));
    assert.deepEqual(describeEvents(decodeChunks([encodePacket(p)], { maxBodyLength: 64 })), expected([p]));
  });

  it('rejects an oversized declared length as soon as the header is complete, before any body byte', () => {
    const { decoder, events } = collector({ maxBodyLength: 1024 });
    const h = header(1025);
    decoder.push(h.subarray(0, 12));
    assert.equal(decoder.failed, false);
    assertProtocolError(() => decoder.push(h.subarray(12)), 'MPUSH_ERR_PACKET_TOO_LARGE');
    assert.equal(decoder.failed, true);
    assert.equal(decoder.bufferedBytes, 0);
    assert.equal(events.length, 0);
  });

  it('rejects an oversized header that arrives in one chunk, with the default 10 KiB limit', () => {
    const { decoder } = collector();
    assertProtocolError(() => decoder.push(header(10 * 1024 + 1)), 'MPUSH_ERR_PACKET_TOO_LARGE');
    const big = collector();
    assertProtocolError(() => big.decoder.push(header(0x7fffffff)), 'MPUSH_ERR_PACKET_TOO_LARGE');
  });

  it('carries the MPush error code for the ERROR reply', () => {
    const { decoder } = collector({ maxBodyLength: 10 });
    try {
      decoder.push(header(11));
      assert.fail('expected a throw');
    } catch (err) {
      assert.ok(err instanceof ProtocolError);
      assert.equal(typeof err.errorCode, 'number');
      assert.equal(err.name, 'ProtocolError');
    }
  });

  it('rejects a negative declared length', () => {
    for (const len of [-1, -0x80000000]) {
      const { decoder } = collector();
      assertProtocolError(() => decoder.push(header(len)), 'MPUSH_ERR_NEGATIVE_LENGTH');
      const split = collector();
      const h = header(len);
      split.decoder.push(h.subarray(0, 5));
      assertProtocolError(() => split.decoder.push(h.subarray(5)), 'MPUSH_ERR_NEGATIVE_LENGTH');
    }
  });

  it('ignores input after a failure until reset()', () => {
    const { decoder, events } = collector({ maxBodyLength: 100 });
    const good = encodePacket(push('ok'));
    decoder.push(good);
    assert.equal(events.length, 1);
    // The bad header shares a chunk with a good frame and heartbeats after it: none are emitted.
    assertProtocolError(
      () => decoder.push(Buffer.concat([header(101), good, HEARTBEAT_FRAME])),
      'MPUSH_ERR_PACKET_TOO_LARGE',
    );
    decoder.push(good);
    decoder.push(HEARTBEAT_FRAME);
    decoder.push(header(1000));
    assert.equal(events.length, 1);
    assert.equal(decoder.failed, true);
    assert.equal(decoder.bufferedBytes, 0);
    decoder.reset();
    assert.equal(decoder.failed, false);
    decoder.push(Buffer.concat([HEARTBEAT_FRAME, good]));
    assert.deepEqual(describeEvents(events.slice(1)), expected(['heartbeat', push('ok')]));
  });

  it('buffers only the bytes actually received, never the declared length', () => {
    const { decoder, events } = collector();
    decoder.push(header(10 * 1024).subarray(0, 7));
    assert.equal(decoder.bufferedBytes, 7);
    decoder.push(header(10 * 1024).subarray(7));
    assert.equal(decoder.bufferedBytes, 0, 'a complete header is parsed, not kept');
    decoder.push(Buffer.from([1, 2, 3, 4, 5]));
    assert.equal(decoder.bufferedBytes, 5);
    decoder.push(Buffer.alloc(10 * 1024 - 6));
    assert.equal(decoder.bufferedBytes, 10 * 1024 - 1);
    assert.equal(events.length, 0);
    decoder.push(Buffer.from([9]));
    assert.equal(decoder.bufferedBytes, 0);
    assert.equal(events.length, 1);
    decoder.reset();
    assert.equal(decoder.bufferedBytes, 0);
  });

  it('reset() drops a partial frame', () => {
    const { decoder, events } = collector();
    const wire = encodePacket(push('partial'));
    decoder.push(wire.subarray(0, 15));
    assert.equal(decoder.bufferedBytes, 2);
    decoder.reset();
    assert.equal(decoder.bufferedBytes, 0);
    decoder.push(wire);
    assert.deepEqual(describeEvents(events), expected([push('partial')]));
  });

  it('hands out a view of the chunk when the frame lies inside it', () => {
    const { decoder, events } = collector();
    const chunk = Buffer.concat([HEARTBEAT_FRAME, encodePacket(push('viewed'))]);
    decoder.push(chunk);
    const ev = events[1];
    assert.ok(ev?.kind === 'packet');
    assert.equal(ev.packet.body.buffer, chunk.buffer, 'same memory');
    assert.equal(ev.packet.body.byteOffset, chunk.byteOffset + 1 + HEADER_LENGTH);
  });

  it('with copyBodies, hands out copies: the caller may overwrite its chunk once push() returns', () => {
    const { decoder, events } = collector({ copyBodies: true });
    const wire = Buffer.concat([encodePacket(push('first body')), encodePacket(push('second'))]);
    // One reused buffer, as a socket reading into a lent buffer fills it: the whole frames, then
    // the same buffer again with a frame cut after its header.
    const lent = Buffer.from(wire);
    decoder.push(lent);
    lent.fill(0xee);
    const third = encodePacket(push('third, cut'));
    third.copy(lent);
    decoder.push(lent.subarray(0, HEADER_LENGTH + 3));
    lent.fill(0xee);
    third.copy(lent, 0, HEADER_LENGTH + 3);
    decoder.push(lent.subarray(0, third.length - HEADER_LENGTH - 3));
    lent.fill(0xee);
    const bodies = events.map((e) => (e.kind === 'packet' ? e.packet.body.toString() : ''));
    assert.deepEqual(bodies, ['first body', 'second', 'third, cut']);
  });

  it('copies a body that straddles chunks, so the caller may reuse its chunks', () => {
    const wire = encodePacket(push('straddling body'));
    for (let cut = HEADER_LENGTH + 1; cut < wire.length; cut++) {
      const { decoder, events } = collector();
      const first = Buffer.from(wire.subarray(0, cut));
      const second = Buffer.from(wire.subarray(cut));
      // The caller may reuse a chunk as soon as push() returns, even mid-frame.
      decoder.push(first);
      first.fill(0);
      decoder.push(second);
      second.fill(0);
      const ev = events[0];
      assert.ok(ev?.kind === 'packet');
      assert.equal(ev.packet.body.toString(), 'straddling body', `cut at ${cut}`);
    }
  });

  it('copies a header that straddles chunks', () => {
    const p = push('header straddles', 0x01020304);
    const wire = encodePacket(p);
    for (let cut = 1; cut < HEADER_LENGTH; cut++) {
      const { decoder, events } = collector();
      const first = Buffer.from(wire.subarray(0, cut));
      decoder.push(first);
      first.fill(0xff);
      decoder.push(Buffer.from(wire.subarray(cut)));
      assert.deepEqual(describeEvents(events), expected([p]), `cut at ${cut}`);
    }
  });

  it('copies the earlier pieces of a body spread over many chunks', () => {
    const p = push('0123456789'.repeat(10));
    const wire = encodePacket(p);
    const { decoder, events } = collector();
    for (let i = 0; i < wire.length; i += 7) {
      const chunk = Buffer.from(wire.subarray(i, i + 7));
      decoder.push(chunk);
      chunk.fill(0);
    }
    assert.deepEqual(describeEvents(events), expected([p]));
  });

  it('decodes any packet sequence with heartbeats, however the stream is cut (property)', () => {
    const packetArb = fc.record({
      cmd: fc.integer({ min: 0, max: 255 }),
      flags: fc.integer({ min: 0, max: 255 }),
      sessionId: fc.integer({ min: -0x80000000, max: 0x7fffffff }),
      body: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
    });
    const itemArb = fc.oneof(
      { weight: 3, arbitrary: packetArb },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: 4 }) },
    );
    fc.assert(
      fc.property(
        fc.array(itemArb, { maxLength: 30 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (items, cutSeeds) => {
          const want: Array<Packet | 'heartbeat'> = [];
          const parts: Buffer[] = [];
          for (const item of items) {
            if (typeof item === 'number') {
              for (let i = 0; i < item; i++) want.push('heartbeat');
              parts.push(Buffer.alloc(item, 0xdf));
            } else {
              want.push(item);
              parts.push(encodePacket(item));
            }
          }
          const wire = Buffer.concat(parts);
          const cuts = [
            ...new Set(cutSeeds.map((s) => (wire.length === 0 ? 0 : s % (wire.length + 1)))),
          ].sort((a, b) => a - b);
          const chunks: Buffer[] = [];
          let at = 0;
          for (const c of [...cuts, wire.length]) {
            chunks.push(wire.subarray(at, c));
            at = c;
          }
          assert.deepEqual(describeEvents(decodeChunks(chunks, { maxBodyLength: 300 })), expected(want));
        },
      ),
      { numRuns: 300 },
    );
  });
});
