import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  BodyWriter,
  BroadcastAction,
  BroadcastControlCodec,
  Command,
  decodeHelloReply,
  encodeHelloReply,
  encodeOkFrame,
  encodePacket,
  GatewayAuthCodec,
  GatewayHelloCodec,
  type MessageCodec,
  OkCodec,
  ProtocolError,
  type ProtocolErrorCode,
  pushOkData,
  RouteQueryCodec,
} from '../../../src/protocol/index.js';

function assertProtocolError(fn: () => unknown, code?: ProtocolErrorCode): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ProtocolError, `expected ProtocolError, got ${String(err)}`);
    if (code !== undefined) assert.equal(err.code, code);
    return true;
  });
}

function comparable(m: unknown): unknown {
  if (Buffer.isBuffer(m)) return { hex: m.toString('hex') };
  if (Array.isArray(m)) return m.map(comparable);
  if (m !== null && typeof m === 'object') {
    return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, comparable(v)]));
  }
  return m;
}

const str = fc.string({ unit: 'binary', maxLength: 40 });

const cases: Array<{ name: string; codec: MessageCodec<unknown>; arb: fc.Arbitrary<unknown> }> = [
  {
    name: 'RouteQuery',
    codec: RouteQueryCodec as MessageCodec<unknown>,
    arb: fc.record({ userIds: fc.array(str, { maxLength: 8 }) }),
  },
  {
    name: 'BroadcastControl',
    codec: BroadcastControlCodec as MessageCodec<unknown>,
    arb: fc.record({ taskId: str, action: fc.constantFrom(BroadcastAction.QUERY, BroadcastAction.CANCEL) }),
  },
  {
    name: 'GatewayAuth',
    codec: GatewayAuthCodec as MessageCodec<unknown>,
    arb: fc.record({
      clientId: str,
      mac: fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
    }),
  },
];

describe('gateway extension codecs', () => {
  // The bytes the push client and the gateway exchanged before these codecs existed, written
  // field by field with BodyWriter: the codecs must keep them exactly.
  it('GATEWAY_ROUTE_QUERY body is the ids as one JSON string field', () => {
    const body = RouteQueryCodec.encode({ userIds: ['u1', 'ü'] });
    assert.equal(body.toString('hex'), '000b5b227531222c22c3bc225d');
    assert.equal(RouteQueryCodec.encode({ userIds: [] }).toString('hex'), '00025b5d');
    assert.deepEqual(RouteQueryCodec.decode(body), { userIds: ['u1', 'ü'] });
  });

  it('GATEWAY_BROADCAST_CONTROL body is taskId string, action byte', () => {
    const cancel = BroadcastControlCodec.encode({ taskId: 'task-1', action: BroadcastAction.CANCEL });
    assert.equal(cancel.toString('hex'), '00067461736b2d3101');
    const query = BroadcastControlCodec.encode({ taskId: 't', action: BroadcastAction.QUERY });
    assert.equal(query.toString('hex'), '00017400');
    assert.deepEqual(BroadcastControlCodec.decode(cancel), { taskId: 'task-1', action: 1 });
    assert.deepEqual(BroadcastControlCodec.decode(query), { taskId: 't', action: 0 });
  });

  it('GATEWAY_AUTH body is clientId string, mac bytes', () => {
    const mac = Buffer.from('9f090c962cfa0c00eecaacf9f8bce262cc34f10828ec4cfb62f6ed297daa6ce8', 'hex');
    const body = GatewayAuthCodec.encode({ clientId: 'push-sender', mac });
    assert.equal(
      body.toString('hex'),
      '000b707573682d73656e646572' + // clientId
        '00209f090c962cfa0c00eecaacf9f8bce262cc34f10828ec4cfb62f6ed297daa6ce8', // mac
    );
    assert.deepEqual(comparable(GatewayAuthCodec.decode(body)), comparable({ clientId: 'push-sender', mac }));
  });

  it('GATEWAY_HELLO reply data: the version, and the challenge nonce in hex when auth is due', () => {
    const nonce = Buffer.alloc(32, 0xab);
    assert.equal(encodeHelloReply({ version: 2 }), '{"version":2}');
    assert.equal(encodeHelloReply({ version: 2, nonce }), `{"version":2,"nonce":"${'ab'.repeat(32)}"}`);
    assert.deepEqual(decodeHelloReply(encodeHelloReply({ version: 2, nonce })), { version: 2, nonce });
    assert.deepEqual(decodeHelloReply('{"version":2}'), { version: 2 });
    assert.deepEqual(decodeHelloReply('1'), { version: 1 }, "a version-1 gateway's bare version");
    for (const bad of [
      '',
      'x',
      '{}',
      '{"version":"2"}',
      '{"version":2,"nonce":"xyz"}',
      '{"version":2,"nonce":1}',
    ]) {
      assertProtocolError(() => decodeHelloReply(bad), 'MPUSH_ERR_BAD_FIELD');
    }
  });

  it('RouteQuery rejects a body that is not a JSON array of strings with MPUSH_ERR_BAD_FIELD', () => {
    const field = (s: string) => new BodyWriter(16).writeString(s).finish();
    for (const bad of ['', 'not json', '{"u":1}', '"u1"', '[1]', '["a",null]', 'null']) {
      assertProtocolError(() => RouteQueryCodec.decode(field(bad)), 'MPUSH_ERR_BAD_FIELD');
    }
  });

  it('BroadcastControl decodes an unknown action as sent (the gateway treats it as a query)', () => {
    const body = new BodyWriter(8).writeString('t').writeByte(7).finish();
    assert.deepEqual(BroadcastControlCodec.decode(body), { taskId: 't', action: 7 });
  });

  for (const { name, codec, arb } of cases) {
    describe(name, () => {
      it('decode(encode(m)) equals m (property)', () => {
        fc.assert(
          fc.property(arb, (m) => {
            assert.deepEqual(comparable(codec.decode(codec.encode(m))), comparable(m));
          }),
          { numRuns: 300 },
        );
      });

      it('throws MPUSH_ERR_TRUNCATED for every proper prefix of a valid encoding (property)', () => {
        fc.assert(
          fc.property(arb, (m) => {
            const full = codec.encode(m);
            for (let n = 0; n < full.length; n++) {
              assertProtocolError(
                () => codec.decode(Buffer.from(full.subarray(0, n))),
                'MPUSH_ERR_TRUNCATED',
              );
            }
          }),
          { numRuns: 50 },
        );
      });

      it('throws only ProtocolError on random bytes (property)', () => {
        fc.assert(
          fc.property(fc.uint8Array({ maxLength: 120 }), (a) => {
            try {
              codec.decode(Buffer.from(a));
            } catch (err) {
              assert.ok(err instanceof ProtocolError, `${name}: ${String(err)}`);
              assert.match(err.code, /^MPUSH_ERR_/);
            }
          }),
          { numRuns: 2000 },
        );
      });
    });
  }
});

describe('the gateway OK reply in one buffer', () => {
  it('encodeOkFrame writes the bytes of encodePacket(OK, OkCodec.encode(...)), short and long data', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        fc.oneof(
          fc.string(),
          fc.string({ unit: 'grapheme', maxLength: 40 }),
          fc.constant('x'.repeat(0x7fff + 3)),
        ),
        (cmd, sessionId, data) => {
          const body = OkCodec.encode({ cmd, code: 0, data });
          const want = encodePacket({ cmd: Command.OK, flags: 0, sessionId, body });
          assert.deepEqual(encodeOkFrame(cmd, sessionId, data), want);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('pushOkData is JSON.stringify({userId, clientType, timePoints, ...rest}), timePoints left out when undefined', () => {
    const tp = { received: 1764657690123, written: 1764657690124, acked: 1764657690129 };
    for (const userId of ['alice', 'a"b\\c\u0001é', '']) {
      assert.equal(pushOkData(userId, 3, tp), JSON.stringify({ userId, clientType: 3, timePoints: tp }));
      assert.equal(pushOkData(userId, 1, {}), JSON.stringify({ userId, clientType: 1, timePoints: {} }));
      assert.equal(pushOkData(userId, -1, undefined), JSON.stringify({ userId, clientType: -1 }));
      const info = { messageId: 'm"1', stored: true, storeError: 'x' };
      assert.equal(
        pushOkData(userId, 2, tp, JSON.stringify(info)),
        JSON.stringify({ userId, clientType: 2, timePoints: tp, ...info }),
      );
      assert.equal(pushOkData(userId, 2, undefined, '{}'), JSON.stringify({ userId, clientType: 2 }));
    }
  });
});

describe('GatewayHelloCodec', () => {
  it('the time points flag travels after the version; a 4-byte hello (earlier clients) has none', () => {
    for (const m of [{ version: 2 }, { version: 2, timePoints: true }, { version: 2, timePoints: false }]) {
      assert.deepEqual(GatewayHelloCodec.decode(GatewayHelloCodec.encode(m)), m);
    }
    assert.equal(GatewayHelloCodec.encode({ version: 2 }).length, 4);
    assert.deepEqual(GatewayHelloCodec.decode(new BodyWriter(4).writeInt(1).finish()), { version: 1 });
  });
});
