import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  BindUserCodec,
  ClientType,
  clientTypeName,
  clientTypeOf,
  decodeJsonPacket,
  ErrorCodec,
  encodeJsonPacket,
  FastConnectCodec,
  FastConnectOkCodec,
  Flags,
  GatewayKickCodec,
  GatewayPushCodec,
  HandshakeCodec,
  HandshakeOkCodec,
  HttpRequestCodec,
  HttpResponseCodec,
  jsonIntField,
  jsonStringField,
  KickCodec,
  type MessageCodec,
  OkCodec,
  ProtocolError,
  type ProtocolErrorCode,
} from '../../../src/protocol/index.js';

function assertProtocolError(fn: () => unknown, code?: ProtocolErrorCode): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ProtocolError, `expected ProtocolError, got ${String(err)}`);
    assert.match(err.code, /^MPUSH_ERR_/);
    if (code !== undefined) assert.equal(err.code, code);
    return true;
  });
}

/** Makes a message comparable with deepEqual: Buffers become their hex. */
function comparable(m: unknown): unknown {
  if (Buffer.isBuffer(m)) return { hex: m.toString('hex') };
  if (Array.isArray(m)) return m.map(comparable);
  if (m !== null && typeof m === 'object') {
    return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, comparable(v)]));
  }
  return m;
}

const str = fc.string({ unit: 'binary', maxLength: 40 });
const bytes = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a));
const int32 = fc.integer({ min: -0x80000000, max: 0x7fffffff });
/** Java byte fields are signed. */
const int8 = fc.integer({ min: -128, max: 127 });
const long = fc.maxSafeInteger();

interface CodecCase {
  name: string;
  codec: MessageCodec<unknown>;
  arb: fc.Arbitrary<unknown>;
  /** Bytes of optional trailing fields: a prefix that drops only those is a valid older message. */
  optionalTail?: number;
}

const cases: CodecCase[] = [
  {
    name: 'Handshake',
    codec: HandshakeCodec as MessageCodec<unknown>,
    arb: fc.record({
      deviceId: str,
      osName: str,
      osVersion: str,
      clientVersion: str,
      iv: bytes,
      clientKey: bytes,
      minHeartbeat: int32,
      maxHeartbeat: int32,
      timestamp: long,
    }),
  },
  {
    name: 'HandshakeOk',
    codec: HandshakeOkCodec as MessageCodec<unknown>,
    arb: fc.record({ serverKey: bytes, heartbeat: int32, sessionId: str, expireTime: long }),
  },
  {
    name: 'FastConnect',
    codec: FastConnectCodec as MessageCodec<unknown>,
    arb: fc.record({ sessionId: str, deviceId: str, minHeartbeat: int32, maxHeartbeat: int32 }),
  },
  {
    name: 'FastConnectOk',
    codec: FastConnectOkCodec as MessageCodec<unknown>,
    arb: fc.record({ heartbeat: int32 }),
  },
  {
    name: 'BindUser',
    codec: BindUserCodec as MessageCodec<unknown>,
    arb: fc.record({ userId: str, data: str, tags: str }),
  },
  {
    name: 'Ok',
    codec: OkCodec as MessageCodec<unknown>,
    arb: fc.record({ cmd: int8, code: int8, data: str }),
  },
  {
    name: 'Error',
    codec: ErrorCodec as MessageCodec<unknown>,
    arb: fc.record({ cmd: int8, code: int8, reason: str, data: str }),
  },
  {
    name: 'Kick',
    codec: KickCodec as MessageCodec<unknown>,
    arb: fc.record({ deviceId: str, userId: str }),
  },
  {
    name: 'HttpRequest',
    codec: HttpRequestCodec as MessageCodec<unknown>,
    arb: fc.record({ method: int8, uri: str, headers: str, body: bytes }),
  },
  {
    name: 'HttpResponse',
    codec: HttpResponseCodec as MessageCodec<unknown>,
    arb: fc.record({ statusCode: int32, reasonPhrase: str, headers: str, body: bytes }),
  },
  {
    name: 'GatewayPush',
    codec: GatewayPushCodec as MessageCodec<unknown>,
    arb: fc.record({
      userId: str,
      clientType: int32,
      timeout: int32,
      content: bytes,
      taskId: str,
      tags: fc.option(fc.array(str, { maxLength: 5 }), { nil: null }),
      condition: str,
      broadcastRate: fc.nat(),
      broadcastMax: fc.nat(),
    }),
    // mpush-ts's broadcast rate and cap follow MPush's fields; without them it is MPush's message.
    optionalTail: 8,
  },
  {
    name: 'GatewayKick',
    codec: GatewayKickCodec as MessageCodec<unknown>,
    arb: fc.record({
      userId: str,
      deviceId: str,
      connId: str,
      clientType: int32,
      targetServer: str,
      targetPort: int32,
    }),
  },
];

describe('message codecs', () => {
  for (const { name, codec, arb, optionalTail = 0 } of cases) {
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
        // Every layout is a fixed sequence of fields, each at least one byte, and decode reads
        // exactly the bytes encode wrote: a prefix reads the same fields until it runs out.
        fc.assert(
          fc.property(arb, (m) => {
            const full = codec.encode(m);
            for (let n = 0; n < full.length - optionalTail; n++) {
              assertProtocolError(
                () => codec.decode(Buffer.from(full.subarray(0, n))),
                'MPUSH_ERR_TRUNCATED',
              );
            }
          }),
          { numRuns: 50 },
        );
      });

      it('ignores trailing bytes after the last field', () => {
        if (optionalTail) return; // its tail is read; covered by the test below
        fc.assert(
          fc.property(arb, fc.uint8Array({ minLength: 1, maxLength: 8 }), (m, extra) => {
            const body = Buffer.concat([codec.encode(m), extra]);
            assert.deepEqual(comparable(codec.decode(body)), comparable(m));
          }),
          { numRuns: 100 },
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

      it('throws only ProtocolError on mutated valid encodings (property)', () => {
        fc.assert(
          fc.property(
            arb,
            fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
            (m, edits) => {
              const body = Buffer.from(codec.encode(m));
              for (const [at, v] of edits) if (body.length > 0) body[at % body.length] = v;
              try {
                codec.decode(body);
              } catch (err) {
                assert.ok(err instanceof ProtocolError, `${name}: ${String(err)}`);
              }
            },
          ),
          { numRuns: 500 },
        );
      });
    });
  }

  it('encodes nulls and empties as 00 00 and decodes them as empty', () => {
    const bind = BindUserCodec.encode({ userId: 'user-0', data: '', tags: '' });
    assert.equal(bind.toString('hex'), '0006757365722d3000000000');
    assert.deepEqual(BindUserCodec.decode(bind), { userId: 'user-0', data: '', tags: '' });
    const ok = HttpRequestCodec.decode(
      HttpRequestCodec.encode({ method: 0, uri: 'u', headers: '', body: Buffer.alloc(0) }),
    );
    assert.equal(ok.body.length, 0);
  });
});

describe('GatewayPush extension fields', () => {
  const base = {
    userId: 'u',
    clientType: 1,
    timeout: 0,
    content: Buffer.from('x'),
    taskId: '',
    tags: null,
    condition: '',
  };

  it("decodes MPush's message (no extension) with no rate or cap", () => {
    const full = GatewayPushCodec.encode(base);
    const mpush = full.subarray(0, full.length - 8);
    const m = GatewayPushCodec.decode(Buffer.from(mpush));
    assert.equal(m.broadcastRate, undefined);
    assert.equal(m.broadcastMax, undefined);
    assert.equal(m.condition, '');
  });

  it('reads the rate and cap, and clamps negative values to 0', () => {
    assert.equal(
      GatewayPushCodec.decode(GatewayPushCodec.encode({ ...base, broadcastRate: 50, broadcastMax: 7 }))
        .broadcastMax,
      7,
    );
    const neg = GatewayPushCodec.decode(
      GatewayPushCodec.encode({ ...base, broadcastRate: -5, broadcastMax: -1 }),
    );
    assert.deepEqual([neg.broadcastRate, neg.broadcastMax], [0, 0]);
  });
});

describe('GatewayPush tags', () => {
  const base = {
    userId: 'u',
    clientType: 1,
    timeout: 3000,
    content: Buffer.from('hi'),
    taskId: 't',
    condition: '',
  };

  /** A GatewayPush body whose tags field holds `tags` verbatim. */
  function withRawTags(tags: string): Buffer {
    const valid = GatewayPushCodec.encode({ ...base, tags: ['MARKER'] });
    const marker = Buffer.from(JSON.stringify(['MARKER']));
    const at = valid.indexOf(marker);
    assert.ok(at > 2);
    const raw = Buffer.from(tags, 'utf8');
    const len = Buffer.alloc(2);
    len.writeUInt16BE(raw.length);
    return Buffer.concat([valid.subarray(0, at - 2), len, raw, valid.subarray(at + marker.length)]);
  }

  it('travel as a JSON array string', () => {
    const body = GatewayPushCodec.encode({ ...base, tags: ['vip', 'beta'] });
    assert.ok(body.includes(Buffer.from('["vip","beta"]')));
    assert.deepEqual(GatewayPushCodec.decode(body).tags, ['vip', 'beta']);
    assert.equal(withRawTags('["vip","beta"]').toString('hex'), body.toString('hex'));
  });

  it('decode absent, empty and JSON null as null', () => {
    assert.equal(GatewayPushCodec.decode(GatewayPushCodec.encode({ ...base, tags: null })).tags, null);
    assert.equal(GatewayPushCodec.decode(withRawTags('')).tags, null);
    assert.equal(GatewayPushCodec.decode(withRawTags('null')).tags, null);
    assert.deepEqual(GatewayPushCodec.decode(withRawTags('[]')).tags, []);
  });

  it('reject bad JSON, non-arrays and non-string elements with MPUSH_ERR_BAD_FIELD', () => {
    for (const bad of [
      '[',
      'vip,beta',
      '{"a":1}',
      '"vip"',
      '42',
      'true',
      '[1]',
      '["a",null]',
      '[["a"]]',
      '[{"a":"b"}]',
    ]) {
      assertProtocolError(() => GatewayPushCodec.decode(withRawTags(bad)), 'MPUSH_ERR_BAD_FIELD');
    }
  });
});

describe('clientTypeOf', () => {
  const table: Array<[string, number, string]> = [
    ['android', ClientType.MOBILE, 'mobile'],
    ['Android', ClientType.MOBILE, 'mobile'],
    ['iOS', ClientType.MOBILE, 'mobile'],
    ['IOS 17', ClientType.MOBILE, 'mobile'],
    ['Windows 10', ClientType.PC, 'pc'],
    ['Mac OS X', ClientType.PC, 'pc'],
    ['macOS', ClientType.PC, 'pc'],
    ['linux', ClientType.PC, 'pc'],
    ['Linux x86_64', ClientType.PC, 'pc'],
    ['web', ClientType.WEB, 'web'],
    ['Web', ClientType.WEB, 'web'],
    ['H5', ClientType.WEB, 'web'],
    ['unknown', ClientType.UNKNOWN, 'unknown'],
    ['', ClientType.UNKNOWN, 'unknown'],
    ['symbian', ClientType.UNKNOWN, 'unknown'],
  ];
  for (const [os, type, name] of table) {
    it(`${JSON.stringify(os)} → ${name}`, () => {
      assert.equal(clientTypeOf(os), type);
      assert.equal(clientTypeName(clientTypeOf(os)), name);
    });
  }
});

describe('JSON packets', () => {
  it('round-trip through encodeJsonPacket / decodeJsonPacket', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: -0x80000000, max: 0x7fffffff }),
        fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.integer(), fc.boolean())),
        (cmd, sessionId, body) => {
          const text = encodeJsonPacket(cmd, sessionId, body);
          const p = decodeJsonPacket(text);
          assert.equal(p.cmd, cmd);
          assert.equal(p.flags, Flags.JSON_BODY);
          assert.equal(p.sessionId, sessionId);
          assert.deepEqual(p.body, JSON.parse(JSON.stringify(body)));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('always sets JSON_BODY, keeping any other flags given', () => {
    assert.equal(decodeJsonPacket(encodeJsonPacket(15, 3, {})).flags, Flags.JSON_BODY);
    assert.equal(
      decodeJsonPacket(encodeJsonPacket(15, 3, {}, Flags.BIZ_ACK)).flags,
      Flags.BIZ_ACK | Flags.JSON_BODY,
    );
    assert.equal(decodeJsonPacket(encodeJsonPacket(15, 3, {}, 0)).flags, Flags.JSON_BODY);
  });

  it('decodes what MPush web clients send', () => {
    const p = decodeJsonPacket(
      '{"cmd":2,"flags":16,"sessionId":1,"body":{"deviceId":"d","osName":"web","osVersion":"1","clientVersion":"1"}}',
    );
    assert.equal(p.cmd, 2);
    assert.equal(jsonStringField(p.body, 'osName'), 'web');
  });

  it('defaults flags, sessionId and body', () => {
    assert.deepEqual(decodeJsonPacket('{"cmd":23}'), { cmd: 23, flags: 0, sessionId: 0, body: {} });
    assert.deepEqual(decodeJsonPacket('{"cmd":23,"flags":null,"sessionId":null,"body":null}'), {
      cmd: 23,
      flags: 0,
      sessionId: 0,
      body: {},
    });
  });

  it('rejects bad frames with MPUSH_ERR_BAD_JSON_PACKET', () => {
    const bad = [
      '',
      'not json',
      '{"cmd":2',
      '[1,2]',
      'null',
      '42',
      '"cmd"',
      '{}',
      '{"flags":16}',
      '{"cmd":"2"}',
      '{"cmd":2.5}',
      '{"cmd":-1}',
      '{"cmd":256}',
      '{"cmd":1e10}',
      '{"cmd":null}',
      '{"cmd":2,"body":[1]}',
      '{"cmd":2,"body":"x"}',
      '{"cmd":2,"body":3}',
      '{"cmd":2,"flags":16.5}',
      '{"cmd":2,"flags":"16"}',
      '{"cmd":2,"sessionId":1.5}',
      '{"cmd":2,"sessionId":4294967296}',
    ];
    for (const text of bad) {
      assertProtocolError(() => decodeJsonPacket(text), 'MPUSH_ERR_BAD_JSON_PACKET');
    }
  });

  it('throws only ProtocolError on arbitrary text (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.json()), (text) => {
        try {
          decodeJsonPacket(text);
        } catch (err) {
          assert.ok(err instanceof ProtocolError);
          assert.equal(err.code, 'MPUSH_ERR_BAD_JSON_PACKET');
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('jsonStringField reads strings, absent or null as empty, and rejects other types', () => {
    const body = { a: 'x', b: null, n: 1, o: {}, arr: [], t: true };
    assert.equal(jsonStringField(body, 'a'), 'x');
    assert.equal(jsonStringField(body, 'b'), '');
    assert.equal(jsonStringField(body, 'missing'), '');
    for (const k of ['n', 'o', 'arr', 't'])
      assertProtocolError(() => jsonStringField(body, k), 'MPUSH_ERR_BAD_FIELD');
  });

  it('jsonIntField reads int32 values, defaults absent or null, and rejects other types', () => {
    const body = { a: 5, neg: -7, max: 0x7fffffff, b: null, f: 1.5, s: '5', big: 2 ** 31, o: {} };
    assert.equal(jsonIntField(body, 'a', 0), 5);
    assert.equal(jsonIntField(body, 'neg', 0), -7);
    assert.equal(jsonIntField(body, 'max', 0), 0x7fffffff);
    assert.equal(jsonIntField(body, 'b', 9), 9);
    assert.equal(jsonIntField(body, 'missing', 11), 11);
    for (const k of ['f', 's', 'big', 'o'])
      assertProtocolError(() => jsonIntField(body, k, 0), 'MPUSH_ERR_BAD_FIELD');
  });
});
