// The crypto layer against bytes produced by the real MPush Java SDK (mpush-wire §5, vectors.json).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  AesCipher,
  deflate,
  inflate,
  loadPrivateKey,
  loadPublicKey,
  mixKey,
  publicKeyToBase64,
  RsaDecryptor,
} from '../../src/crypto/index.js';
import { mpushDefaultKeys, readFixture } from '../helpers/shared.js';

interface Vector {
  id: string;
  hex: string;
  bodyHex?: string;
  plainBodyHex?: string;
  mixKeyHex?: string;
  inputs?: Record<string, unknown>;
}

interface SharedData {
  vectors: Map<string, Vector>;
  commonInputs: Record<string, string>;
  keys: { publicKey: string; privateKey: string };
}

let cached: SharedData | undefined;
function shared(): SharedData {
  if (cached !== undefined) return cached;
  const doc = readFixture<{ vectors: Vector[]; commonInputs: Record<string, string> }>('vectors.json');
  cached = {
    vectors: new Map(doc.vectors.map((v) => [v.id, v])),
    commonInputs: doc.commonInputs,
    keys: mpushDefaultKeys(),
  };
  return cached;
}

function vector(id: string): Vector {
  const v = shared().vectors.get(id);
  if (v === undefined) throw new Error(`vector ${id} missing from vectors.json`);
  return v;
}

function hex(s: string): Buffer {
  return Buffer.from(s, 'hex');
}

/** vectors.md "Common inputs": iv = bytes0..15, clientKey = bytes16..31, serverKey = bytes0..15. */
function commonKeys(): { iv: Buffer; clientKey: Buffer; serverKey: Buffer } {
  const c = shared().commonInputs;
  return { iv: hex(c['iv']!), clientKey: hex(c['clientKey']!), serverKey: hex(c['serverKey']!) };
}

const HEADER_LENGTH = 13;

describe('crypto against the MPush Java SDK vectors', () => {
  test('the shared vectors and default keys are present', () => {
    const { vectors, keys } = shared();
    assert.ok(vectors.size > 0);
    assert.ok(keys.privateKey.length > 0 && keys.publicKey.length > 0);
  });

  test("MPush's default non-CRT private key decrypts handshake.packet.rsaSample to handshake.body", () => {
    const packet = hex(vector('handshake.packet.rsaSample').hex);
    assert.equal(packet.readUInt32BE(0), 128, 'body length in the header');
    const body = packet.subarray(HEADER_LENGTH);
    const key = loadPrivateKey(shared().keys.privateKey);
    const plain = new RsaDecryptor(key).decrypt(body);
    assert.equal(plain.toString('hex'), vector('handshake.body').hex);
  });

  test("the loaded private key's public half is MPush's published public key", () => {
    const { keys } = shared();
    assert.equal(publicKeyToBase64(loadPrivateKey(keys.privateKey)), keys.publicKey);
    const withPublic = loadPrivateKey(keys.privateKey, loadPublicKey(keys.publicKey));
    assert.equal(publicKeyToBase64(withPublic), keys.publicKey);
  });

  test('aes.helloMpush = AES(mixKey(clientKey, serverKey), iv) of "hello mpush"', () => {
    const v = vector('aes.helloMpush');
    const { iv, clientKey, serverKey } = commonKeys();
    const key = mixKey(clientKey, serverKey);
    assert.equal(key.toString('hex'), v.mixKeyHex);
    const cipher = new AesCipher(key, iv);
    assert.equal(cipher.encrypt(Buffer.from('hello mpush')).toString('hex'), v.hex);
    assert.equal(cipher.decrypt(hex(v.hex)).toString(), 'hello mpush');
  });

  test('zlib.2000a inflates to 2000 x "a" and our deflate gives the same bytes as Java', () => {
    const v = vector('zlib.2000a');
    const input = Buffer.alloc(2000, 'a');
    assert.deepEqual(inflate(hex(v.hex), 2000), input);
    // Node's zlib and the JDK's agree byte for byte here (default level, zlib header 789c).
    assert.equal(deflate(input).toString('hex'), v.hex);
  });

  test('handshakeOk.packet.aes decrypts with AES(clientKey, iv)', () => {
    const v = vector('handshakeOk.packet.aes');
    const { iv, clientKey } = commonKeys();
    const body = hex(v.hex).subarray(HEADER_LENGTH);
    const plain = new AesCipher(clientKey, iv).decrypt(body);
    // serverKey (2 + 16) + heartbeat (4) + sessionId (2 + n) + expireTime (8): at least 32 bytes.
    assert.ok(plain.length >= 32 && plain.length < body.length, `plain length ${plain.length}`);
    assert.equal(plain.subarray(0, 18).toString('hex'), `0010${commonKeys().serverKey.toString('hex')}`);
    if (v.plainBodyHex !== undefined) assert.equal(plain.toString('hex'), v.plainBodyHex);
  });

  test('every session-key packet decrypts and re-encrypts byte for byte on one connection cipher', () => {
    const { iv, clientKey, serverKey } = commonKeys();
    const cipher = new AesCipher(mixKey(clientKey, serverKey), iv);
    const plainOf: Record<string, string | undefined> = { 'bind.packet.aes': vector('bind.body').hex };
    let checked = 0;
    for (const v of shared().vectors.values()) {
      if (!/\.aes(\.|$)/.test(v.id) || v.id === 'handshakeOk.packet.aes' || v.bodyHex === undefined) continue;
      const expected = v.plainBodyHex ?? plainOf[v.id];
      if (expected === undefined) continue;
      assert.equal(cipher.decrypt(hex(v.bodyHex)).toString('hex'), expected, v.id);
      assert.equal(cipher.encrypt(hex(expected)).toString('hex'), v.bodyHex, v.id);
      checked++;
    }
    assert.ok(checked >= 8, `checked ${checked} vectors`);
  });

  test('push.aes.compressed.bizAck: decrypt, then bounded inflate, gives 2000 x "a"', () => {
    const v = vector('push.aes.compressed.bizAck');
    const { iv, clientKey, serverKey } = commonKeys();
    const zipped = new AesCipher(mixKey(clientKey, serverKey), iv).decrypt(hex(v.bodyHex!));
    assert.deepEqual(inflate(zipped, 10 * 1024), Buffer.alloc(2000, 'a'));
  });
});
