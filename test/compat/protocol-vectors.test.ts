// Every vector of vectors.json (test/fixtures) (bytes produced by the real MPush 0.8.1 Java SDK) must
// decode, and re-encode to the same bytes, through this project's framing, codecs and AES/zlib.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AesCipher, deflate, inflate, mixKey } from '../../src/crypto/index.js';
import {
  BindUserCodec,
  Command,
  commandName,
  ErrorCodec,
  encodePacket,
  FastConnectCodec,
  FastConnectOkCodec,
  Flags,
  FrameDecoder,
  HandshakeCodec,
  HandshakeOkCodec,
  HEADER_LENGTH,
  HEARTBEAT_FRAME,
  HttpMethod,
  HttpRequestCodec,
  HttpResponseCodec,
  KickCodec,
  type MessageCodec,
  OkCodec,
  type Packet,
} from '../../src/protocol/index.js';
import { readFixture } from '../helpers/shared.js';

interface VectorHeader {
  bodyLength: number;
  cmd: number;
  cmdName: string;
  cc: number;
  flags: number;
  flagsHex: string;
  sessionId: number;
  lrc: number;
}

interface Vector {
  id: string;
  title: string;
  direction: string;
  inputs: Record<string, unknown>;
  hex: string;
  length: number;
  headerHex?: string;
  bodyHex?: string;
  header?: VectorHeader;
  plainBodyHex?: string;
  mixKeyHex?: string;
  deterministic?: boolean;
}

interface VectorFile {
  commonInputs: { iv: string; clientKey: string; serverKey: string; mixKey: string };
  vectors: Vector[];
}

type Event = { kind: 'heartbeat' } | { kind: 'packet'; packet: Packet };

function decodeChunks(chunks: Buffer[]): Event[] {
  const events: Event[] = [];
  const decoder = new FrameDecoder({
    onPacket: (packet) => events.push({ kind: 'packet', packet }),
    onHeartbeat: () => events.push({ kind: 'heartbeat' }),
  });
  for (const c of chunks) decoder.push(c);
  assert.equal(decoder.bufferedBytes, 0, 'no bytes left over');
  return events;
}

/** Every way the project decodes a stream: whole, byte by byte, two chunks at every cut, three chunks. */
function chunkings(wire: Buffer): Array<[string, Buffer[]]> {
  const out: Array<[string, Buffer[]]> = [
    ['whole', [wire]],
    ['byte by byte', [...wire].map((b) => Buffer.from([b]))],
  ];
  for (let i = 0; i <= wire.length; i++) out.push([`split at ${i}`, [wire.subarray(0, i), wire.subarray(i)]]);
  const n = wire.length;
  const threeWay: Array<[number, number]> = [
    [1, n - 1],
    [4, 9],
    [12, 14],
    [HEADER_LENGTH, HEADER_LENGTH],
    [Math.floor(n / 3), Math.floor((2 * n) / 3)],
    [5, n - 2],
  ];
  for (const [a, b] of threeWay) {
    const x = Math.max(0, Math.min(a, n));
    const y = Math.max(x, Math.min(b, n));
    out.push([`three chunks at ${x},${y}`, [wire.subarray(0, x), wire.subarray(x, y), wire.subarray(y)]]);
  }
  // Chunks are copies so a decoder that kept a view of a reused buffer would show it.
  return out.map(([name, chunks]) => [name, chunks.map((c) => Buffer.from(c))]);
}

const hex = (b: Buffer): string => b.toString('hex');
const unhex = (s: string): Buffer => Buffer.from(s, 'hex');

/** `"4 (= the request's sessionId)"` or `4` → 4. */
function intInput(v: unknown): number {
  const n = typeof v === 'number' ? v : Number.parseInt(String(v), 10);
  assert.ok(Number.isInteger(n), `not an integer input: ${String(v)}`);
  return n;
}

/** Text inputs of vectors.md spell a newline as the two characters `\n`, sometimes followed by a note. */
function textInput(v: unknown): string {
  assert.equal(typeof v, 'string');
  return (v as string).replace(/ \(.*\)$/, '').replaceAll('\\n', '\n');
}

function assertRoundTrip<T>(codec: MessageCodec<T>, plain: Buffer, expected: T): T {
  const decoded = codec.decode(plain);
  assert.deepEqual(comparable(decoded), comparable(expected));
  assert.equal(hex(codec.encode(decoded)), hex(plain), 're-encoded body differs');
  assert.equal(hex(codec.encode(expected)), hex(plain), 'encoding the documented inputs differs');
  return decoded;
}

function comparable(m: unknown): unknown {
  if (Buffer.isBuffer(m)) return { hex: m.toString('hex') };
  if (m !== null && typeof m === 'object') {
    return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, comparable(v)]));
  }
  return m;
}

function runVectorSuite(file: VectorFile): void {
  const common = file.commonInputs;
  const iv = unhex(common.iv);
  const clientKey = unhex(common.clientKey);
  const serverKey = unhex(common.serverKey);
  const sessionKey = mixKey(clientKey, serverKey);
  const byId = new Map(file.vectors.map((v) => [v.id, v]));
  const vector = (id: string): Vector => {
    const v = byId.get(id);
    assert.ok(v, `vector ${id} missing from vectors.json`);
    return v;
  };
  const bodyOf = (v: Vector): Buffer => unhex(v.bodyHex ?? v.hex);

  /** Decrypts an AES vector's body, checks plainBodyHex, re-encrypts to the same bytes. */
  function aesPlain(v: Vector, key: Buffer, expectedPlainHex?: string): Buffer {
    assert.ok(v.header, `${v.id} is framed`);
    assert.equal(v.header.flags & Flags.CRYPTO, Flags.CRYPTO, 'CRYPTO flag');
    const body = bodyOf(v);
    const plain = new AesCipher(key, iv).decrypt(body);
    const want = expectedPlainHex ?? v.plainBodyHex;
    assert.ok(want !== undefined, `${v.id}: no plaintext to compare with`);
    assert.equal(hex(plain), want, 'decrypted body');
    assert.equal(hex(new AesCipher(key, iv).encrypt(plain)), hex(body), 're-encrypted body');
    return plain;
  }

  /** Checks a re-encoded message encrypts to the vector's body bytes. */
  function assertReencrypts(v: Vector, key: Buffer, reencoded: Buffer): void {
    assert.equal(
      hex(new AesCipher(key, iv).encrypt(reencoded)),
      v.bodyHex,
      're-encoded and re-encrypted body',
    );
  }

  function pushCheck(id: string, ackFlag: number): void {
    const v = vector(id);
    assert.equal(v.header?.flags, Flags.CRYPTO | ackFlag);
    assert.equal(v.header?.cmd, Command.PUSH);
    assert.equal(v.header?.sessionId, intInput(v.inputs.packetSessionId));
    const content = aesPlain(v, sessionKey, String(v.inputs.contentUtf8Hex));
    assert.equal(content.toString('utf8'), v.inputs.content);
    // Push bodies are the raw content, no codec.
    assertReencrypts(v, sessionKey, Buffer.from(String(v.inputs.content), 'utf8'));
  }

  const handshakeInputs = (timestamp: number) => {
    const i = vector('handshake.body').inputs;
    return {
      deviceId: String(i.deviceId),
      osName: String(i.osName),
      osVersion: String(i.osVersion),
      clientVersion: String(i.clientVersion),
      iv: unhex(String(i.iv)),
      clientKey: unhex(String(i.clientKey)),
      minHeartbeat: intInput(i.minHeartbeat),
      maxHeartbeat: intInput(i.maxHeartbeat),
      timestamp,
    };
  };

  /** What each vector means, beyond framing. Every vector must have an entry. */
  const checks: Record<string, (v: Vector) => void> = {
    heartbeat: (v) => {
      assert.equal(v.hex, hex(HEARTBEAT_FRAME));
      for (const [name, chunks] of chunkings(unhex(v.hex))) {
        assert.deepEqual(decodeChunks(chunks), [{ kind: 'heartbeat' }], name);
      }
    },
    'handshake.body': (v) => {
      assert.equal(v.inputs.timestamp, 1700000000000);
      assertRoundTrip(HandshakeCodec, unhex(v.hex), handshakeInputs(intInput(v.inputs.timestamp)));
    },
    'handshake.body.sdkTimestamp0': (v) => {
      assert.equal(v.inputs.timestamp, 0);
      assertRoundTrip(HandshakeCodec, unhex(v.hex), handshakeInputs(0));
    },
    'handshake.packet.rsaSample': (v) => {
      // RSA padding is random: only the header is fixed. The RSA decrypt is tested with the crypto layer.
      assert.equal(v.deterministic, false);
      assert.equal(v.headerHex, '00000080020000010000000100');
      assert.equal(v.header?.cmd, Command.HANDSHAKE);
      assert.equal(v.header?.flags, Flags.CRYPTO);
      assert.equal(v.header?.sessionId, intInput(v.inputs.packetSessionId));
      assert.equal(bodyOf(v).length, 128);
    },
    'bind.body': (v) => {
      assertRoundTrip(BindUserCodec, unhex(v.hex), {
        userId: String(v.inputs.userId),
        data: String(v.inputs.alias),
        tags: String(v.inputs.tags),
      });
      assert.equal(v.inputs.alias, '');
    },
    'bind.packet.aes': (v) => {
      assert.equal(v.header?.cmd, Command.BIND);
      // Verified by the SDK: AESUtils.decrypt(body, mixKey, iv) == bind.body.
      const plain = aesPlain(v, sessionKey, vector('bind.body').hex);
      const m = assertRoundTrip(BindUserCodec, plain, { userId: 'user-0', data: '', tags: 'vip,beta' });
      assertReencrypts(v, sessionKey, BindUserCodec.encode(m));
    },
    'unbind.packet.aes': (v) => {
      assert.equal(v.header?.cmd, Command.UNBIND);
      assert.equal(v.inputs.alias, null);
      assert.equal(v.inputs.tags, null);
      const plain = aesPlain(v, sessionKey);
      const m = assertRoundTrip(BindUserCodec, plain, {
        userId: String(v.inputs.userId),
        data: '',
        tags: '',
      });
      assertReencrypts(v, sessionKey, BindUserCodec.encode(m));
    },
    'fastConnect.packet': (v) => {
      assert.equal(v.header?.cmd, Command.FAST_CONNECT);
      assert.equal(v.header?.flags, 0, 'sent in clear');
      assertRoundTrip(FastConnectCodec, bodyOf(v), {
        sessionId: String(v.inputs.sessionId),
        deviceId: String(v.inputs.deviceId),
        minHeartbeat: intInput(v.inputs.minHeartbeat),
        maxHeartbeat: intInput(v.inputs.maxHeartbeat),
      });
    },
    'ack.packet': (v) => {
      assert.equal(v.header?.cmd, Command.ACK);
      assert.equal(v.header?.sessionId, 7);
      assert.equal(v.header?.sessionId, intInput(v.inputs.messageId));
      assert.equal(v.header?.flags, 0);
      assert.equal(bodyOf(v).length, 0);
      assert.equal(
        hex(encodePacket({ cmd: Command.ACK, flags: 0, sessionId: 7, body: Buffer.alloc(0) })),
        v.hex,
      );
    },
    'aes.helloMpush': (v) => {
      assert.equal(v.inputs.clientKey, common.clientKey);
      assert.equal(v.inputs.serverKey, common.serverKey);
      assert.equal(v.inputs.iv, common.iv);
      assert.equal(hex(sessionKey), v.mixKeyHex);
      assert.equal(hex(sessionKey), common.mixKey);
      const plain = unhex(String(v.inputs.plaintextHex));
      assert.equal(plain.toString(), v.inputs.plaintext);
      assert.equal(hex(new AesCipher(sessionKey, iv).encrypt(plain)), v.hex);
      assert.equal(hex(new AesCipher(sessionKey, iv).decrypt(unhex(v.hex))), v.inputs.plaintextHex);
    },
    'zlib.2000a': (v) => {
      const content = Buffer.alloc(2000, 'a');
      assert.ok(inflate(unhex(v.hex), 2000).equals(content));
      // Java's Deflater and Node's zlib are the same library at the same default level.
      assert.equal(hex(deflate(content)), v.hex);
    },
    'push.plain.bizAck': (v) => {
      assert.equal(v.header?.cmd, Command.PUSH);
      assert.equal(v.header?.flags, Flags.BIZ_ACK);
      assert.equal(v.header?.sessionId, intInput(v.inputs.packetSessionId));
      assert.equal(v.bodyHex, v.inputs.contentUtf8Hex);
      assert.equal(bodyOf(v).toString('utf8'), v.inputs.content);
    },
    'push.aes.bizAck': () => pushCheck('push.aes.bizAck', Flags.BIZ_ACK),
    'push.aes.autoAck': () => pushCheck('push.aes.autoAck', Flags.AUTO_ACK),
    'push.aes.noAck': () => pushCheck('push.aes.noAck', 0),
    'push.aes.bizAck.utf8': () => pushCheck('push.aes.bizAck.utf8', Flags.BIZ_ACK),
    'push.aes.compressed.bizAck': (v) => {
      assert.equal(v.header?.cmd, Command.PUSH);
      assert.equal(v.header?.flags, 0x07);
      assert.equal(v.header?.flags, Flags.CRYPTO | Flags.COMPRESS | Flags.BIZ_ACK);
      // Receive order: decrypt, then inflate.
      const zipped = aesPlain(v, sessionKey, vector('zlib.2000a').hex);
      const content = inflate(zipped, 10 * 1024);
      assert.ok(content.equals(Buffer.alloc(2000, 'a')));
      // Send order: deflate, then encrypt.
      assertReencrypts(v, sessionKey, deflate(content));
    },
    'handshakeOk.packet.aes': (v) => {
      assert.equal(v.header?.cmd, Command.HANDSHAKE);
      assert.equal(v.header?.sessionId, intInput(v.inputs.packetSessionId));
      // Encrypted with AES(clientKey, iv), not yet the session key.
      assert.ok(String(v.inputs.aesKey).startsWith(common.clientKey));
      const plain = aesPlain(v, clientKey);
      const m = assertRoundTrip(HandshakeOkCodec, plain, {
        serverKey: unhex(String(v.inputs.serverKey)),
        heartbeat: 180000,
        sessionId: 'sess-1',
        expireTime: 1700086400000,
      });
      assert.equal(m.heartbeat, intInput(v.inputs.heartbeat));
      assert.equal(m.expireTime, v.inputs.expireTime);
      assert.equal(hex(mixKey(clientKey, m.serverKey)), common.mixKey);
      assertReencrypts(v, clientKey, HandshakeOkCodec.encode(m));
    },
    'fastConnectOk.packet': (v) => {
      assert.equal(v.header?.cmd, Command.FAST_CONNECT);
      assert.equal(v.header?.flags, 0);
      assert.equal(v.header?.sessionId, intInput(v.inputs.packetSessionId));
      assertRoundTrip(FastConnectOkCodec, bodyOf(v), { heartbeat: 180000 });
      assert.equal(v.inputs.heartbeat, 180000);
    },
    'ok.bind.packet': (v) => {
      assert.equal(v.header?.cmd, Command.OK);
      assert.equal(v.header?.flags, 0);
      assert.equal(v.header?.sessionId, intInput(v.inputs.packetSessionId));
      assertRoundTrip(OkCodec, bodyOf(v), { cmd: Command.BIND, code: 0, data: 'bind success' });
      assert.deepEqual([v.inputs.cmd, v.inputs.code, v.inputs.data], [5, 0, 'bind success']);
    },
    'error.fastConnect.sessionExpired': (v) => {
      assert.equal(v.header?.cmd, Command.ERROR);
      assert.equal(v.header?.flags, 0);
      assert.equal(v.header?.sessionId, intInput(v.inputs.packetSessionId));
      assertRoundTrip(ErrorCodec, bodyOf(v), {
        cmd: Command.FAST_CONNECT,
        code: 103,
        reason: 'session expired',
        data: '',
      });
      assert.equal(v.inputs.data, null);
    },
    'kick.packet.aes': (v) => {
      assert.equal(v.header?.cmd, Command.KICK);
      assert.equal(v.header?.sessionId, 0);
      const plain = aesPlain(v, sessionKey);
      const m = assertRoundTrip(KickCodec, plain, {
        deviceId: String(v.inputs.deviceId),
        userId: String(v.inputs.userId),
      });
      assertReencrypts(v, sessionKey, KickCodec.encode(m));
    },
    'httpRequest.packet.aes': (v) => {
      assert.equal(v.header?.cmd, Command.HTTP_PROXY);
      assert.equal(v.header?.sessionId, intInput(v.inputs.packetSessionId));
      const headers = textInput(v.inputs.headers);
      assert.equal(headers, 'readTimeout:10000\n');
      assert.equal(v.inputs.body, null);
      const plain = aesPlain(v, sessionKey);
      const m = assertRoundTrip(HttpRequestCodec, plain, {
        method: HttpMethod.GET,
        uri: String(v.inputs.uri),
        headers,
        body: Buffer.alloc(0),
      });
      assertReencrypts(v, sessionKey, HttpRequestCodec.encode(m));
    },
    'httpResponse.packet.aes': (v) => {
      assert.equal(v.header?.cmd, Command.HTTP_PROXY);
      assert.equal(v.header?.sessionId, intInput(v.inputs.packetSessionId));
      const headers = textInput(v.inputs.headers);
      assert.equal(headers, 'Content-Type:text/plain\n');
      const plain = aesPlain(v, sessionKey);
      const m = assertRoundTrip(HttpResponseCodec, plain, {
        statusCode: intInput(v.inputs.statusCode),
        reasonPhrase: String(v.inputs.reasonPhrase),
        headers,
        body: Buffer.from(String(v.inputs.body)),
      });
      assert.equal(m.statusCode, 200);
      assertReencrypts(v, sessionKey, HttpResponseCodec.encode(m));
    },
  };

  describe('MPush 0.8.1 wire vectors', () => {
    it('has vectors, and a check for each of them', () => {
      assert.ok(file.vectors.length >= 24, `only ${file.vectors.length} vectors`);
      const ids = file.vectors.map((v) => v.id);
      assert.equal(new Set(ids).size, ids.length, 'vector ids are unique');
      const unchecked = ids.filter((id) => !(id in checks));
      assert.deepEqual(unchecked, [], `vectors with no check here: add one for ${unchecked.join(', ')}`);
      const stale = Object.keys(checks).filter((id) => !byId.has(id));
      assert.deepEqual(stale, [], 'checks for vectors that no longer exist');
    });

    for (const v of file.vectors) {
      describe(v.id, () => {
        it('has consistent hex and length', () => {
          assert.equal(unhex(v.hex).length, v.length);
          assert.equal(v.hex.length, v.length * 2);
        });

        if (v.headerHex !== undefined) {
          const h = v.header;
          it('frames as its header and body, whatever the chunking', () => {
            assert.ok(h, 'framed vector has a header object');
            assert.equal(v.hex, `${v.headerHex}${v.bodyHex ?? ''}`);
            assert.equal(unhex(v.headerHex!).length, HEADER_LENGTH);
            assert.equal(h.bodyLength, unhex(v.bodyHex ?? '').length);
            assert.equal(commandName(h.cmd), h.cmdName);
            assert.equal(Number.parseInt(h.flagsHex, 16), h.flags);
            for (const [name, chunks] of chunkings(unhex(v.hex))) {
              const events = decodeChunks(chunks);
              assert.equal(events.length, 1, `${name}: one packet`);
              const ev = events[0]!;
              assert.ok(ev.kind === 'packet', `${name}: a packet, not a heartbeat`);
              const p = ev.packet;
              assert.deepEqual(
                {
                  cmd: p.cmd,
                  flags: p.flags,
                  sessionId: p.sessionId,
                  cc: p.cc,
                  lrc: p.lrc,
                  bodyLength: p.body.length,
                },
                {
                  cmd: h.cmd,
                  flags: h.flags,
                  sessionId: h.sessionId,
                  cc: h.cc,
                  lrc: h.lrc,
                  bodyLength: h.bodyLength,
                },
                name,
              );
              assert.equal(hex(p.body), v.bodyHex, `${name}: body`);
              assert.equal(hex(encodePacket(p)), v.hex, `${name}: encodePacket gives the same bytes`);
            }
          });

          it('encodes from its documented header fields', () => {
            assert.ok(h);
            const p: Packet = {
              cmd: h.cmd,
              flags: h.flags,
              sessionId: h.sessionId,
              body: unhex(v.bodyHex ?? ''),
            };
            assert.equal(hex(encodePacket(p)), v.hex);
          });
        }

        it('means what vectors.md says', () => {
          const check = checks[v.id];
          assert.ok(check, `no check for vector ${v.id}`);
          check(v);
        });
      });
    }

    it('decodes all framed vectors and heartbeats concatenated in one stream', () => {
      const framed = file.vectors.filter((v) => v.headerHex !== undefined);
      const wire = Buffer.concat(framed.flatMap((v) => [unhex(v.hex), HEARTBEAT_FRAME]));
      for (const [name, chunks] of chunkings(wire).filter(
        ([n]) => !n.startsWith('split at') || Number(n.slice(9)) % 7 === 0,
      )) {
        const events = decodeChunks(chunks);
        assert.equal(events.length, framed.length * 2, name);
        framed.forEach((v, i) => {
          const ev = events[i * 2]!;
          assert.ok(ev.kind === 'packet');
          assert.equal(hex(encodePacket(ev.packet)), v.hex, `${name}: ${v.id}`);
          assert.equal(events[i * 2 + 1]!.kind, 'heartbeat');
        });
      }
    });

    it('one long-lived session cipher gives the same bytes for every session-key vector in turn', () => {
      const cipher = new AesCipher(sessionKey, iv);
      const aesVectors = file.vectors.filter(
        (v) =>
          v.header !== undefined &&
          (v.header.flags & Flags.CRYPTO) !== 0 &&
          v.id.endsWith('.aes') &&
          v.id !== 'handshakeOk.packet.aes',
      );
      const pushes = file.vectors.filter((v) => v.id.startsWith('push.aes.'));
      const all = [...aesVectors, ...pushes];
      assert.ok(all.length >= 9);
      for (let round = 0; round < 2; round++) {
        for (const v of all) {
          const plain = cipher.decrypt(bodyOf(v));
          assert.equal(hex(cipher.encrypt(plain)), v.bodyHex, v.id);
        }
      }
    });
  });
}

// Last, so every helper above is initialised before the suite is registered.
runVectorSuite(readFixture<VectorFile>('vectors.json'));
