import assert from 'node:assert/strict';
import {
  constants,
  createPrivateKey,
  generateKeyPairSync,
  type KeyObject,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import { describe, test } from 'node:test';
import {
  CryptoError,
  generateRsaKeyPair,
  loadPrivateKey,
  loadPublicKey,
  MPUSH_ERR_KEY,
  MPUSH_ERR_RSA_BLOCK,
  privateKeyToBase64,
  privateKeyToPem,
  publicKeyOf,
  publicKeyToBase64,
  publicKeyToPem,
  RsaClientCipher,
  RsaDecryptor,
  RsaServerCipher,
  rsaEncrypt,
} from '../../../src/crypto/index.js';

const { privateKey, publicKey } = generateRsaKeyPair();
const publicB64 = publicKeyToBase64(publicKey);

function isCryptoError(code: string): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof CryptoError, `expected a CryptoError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  };
}

/** Encrypts a chosen 128-byte encoded message without padding, to build bad paddings on purpose. */
function rawEncrypt(key: KeyObject, em: Buffer): Buffer {
  return publicEncrypt({ key, padding: constants.RSA_NO_PADDING }, em);
}

/** A well-formed PKCS#1 v1.5 type-2 block whose separator sits at `sepIndex`. */
function encodedMessage(k: number, sepIndex: number, fill = 0x5a): Buffer {
  const em = Buffer.alloc(k, fill);
  em[0] = 0;
  em[1] = 2;
  em[sepIndex] = 0;
  return em;
}

// DER writer for building MPush-style non-CRT keys in tests.
function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let x = n; x > 0; x = Math.floor(x / 256)) bytes.unshift(x & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
function der(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), derLength(content.length), content]);
}
function derInt(x: bigint): Buffer {
  let hex = x.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let bytes = Buffer.from(hex, 'hex');
  if (bytes[0]! & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return der(0x02, bytes);
}
function b64uToBig(s: string): bigint {
  return BigInt(`0x${Buffer.from(s, 'base64url').toString('hex')}`);
}
/** PKCS#8 holding only n and d, every other RSAPrivateKey field 0: what MPush's tooling writes. */
function nonCrtPkcs8(n: bigint, d: bigint): Buffer {
  const rsaKey = der(
    0x30,
    Buffer.concat([derInt(0n), derInt(n), derInt(0n), derInt(d), ...Array(5).fill(derInt(0n))]),
  );
  const alg = der(
    0x30,
    Buffer.concat([der(0x06, Buffer.from('2a864886f70d010101', 'hex')), der(0x05, Buffer.alloc(0))]),
  );
  return der(0x30, Buffer.concat([derInt(0n), alg, der(0x04, rsaKey)]));
}
function nonCrtOf(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' });
  return nonCrtPkcs8(b64uToBig(jwk.n!), b64uToBig(jwk.d!));
}

describe('RSA keys', () => {
  test('generated keys are 1024-bit RSA with e = 65537', () => {
    assert.equal(privateKey.asymmetricKeyDetails?.modulusLength, 1024);
    assert.equal(privateKey.asymmetricKeyDetails?.publicExponent, 65537n);
    assert.equal(publicKeyToBase64(publicKeyOf(privateKey)), publicB64);
  });

  test('private key round trips through PEM, base64 and DER forms', () => {
    const pem = privateKeyToPem(privateKey);
    assert.match(pem, /^-----BEGIN PRIVATE KEY-----/);
    const b64 = privateKeyToBase64(privateKey);
    const forms: Array<string | Buffer> = [
      pem,
      Buffer.from(pem),
      b64,
      `${b64.slice(0, 64)}\n${b64.slice(64)}\n`,
      Buffer.from(b64, 'base64'),
      privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
      privateKey.export({ type: 'pkcs1', format: 'der' }),
    ];
    for (const form of forms) {
      const loaded = loadPrivateKey(form);
      assert.equal(loaded.type, 'private');
      assert.equal(privateKeyToBase64(loaded), b64);
    }
  });

  test('public key round trips through PEM, base64 and DER forms', () => {
    const pem = publicKeyToPem(publicKey);
    assert.match(pem, /^-----BEGIN PUBLIC KEY-----/);
    for (const form of [pem, Buffer.from(pem), publicB64, Buffer.from(publicB64, 'base64')]) {
      assert.equal(publicKeyToBase64(loadPublicKey(form)), publicB64);
    }
  });

  test('a non-CRT PKCS#8 key (only n and d) loads, with or without its public key', () => {
    const nonCrt = nonCrtOf(privateKey);
    // OpenSSL imports such a key but cannot use it (publicExponent 0, no CRT values).
    const raw = createPrivateKey({ key: nonCrt, format: 'der', type: 'pkcs8' });
    const probe = publicEncrypt({ key: publicKey, padding: constants.RSA_NO_PADDING }, Buffer.alloc(128, 1));
    assert.throws(() => privateDecrypt({ key: raw, padding: constants.RSA_NO_PADDING }, probe));
    for (const loaded of [
      loadPrivateKey(nonCrt),
      loadPrivateKey(nonCrt.toString('base64')),
      loadPrivateKey(nonCrt, publicKey),
    ]) {
      assert.equal(publicKeyToBase64(loaded), publicB64);
      const plain = randomBytes(100);
      assert.deepEqual(new RsaDecryptor(loaded).decrypt(rsaEncrypt(publicKey, plain)), plain);
    }
  });

  test('a non-CRT key with an uncommon exponent needs its public key', () => {
    const pair = generateKeyPairSync('rsa', { modulusLength: 1024, publicExponent: 0x10003 });
    const nonCrt = nonCrtOf(pair.privateKey);
    assert.throws(() => loadPrivateKey(nonCrt), isCryptoError(MPUSH_ERR_KEY));
    const loaded = loadPrivateKey(nonCrt, pair.publicKey);
    assert.equal(publicKeyToBase64(loaded), publicKeyToBase64(pair.publicKey));
  });

  test('a non-CRT key with e = 3 is found without the public key', () => {
    const pair = generateKeyPairSync('rsa', { modulusLength: 1024, publicExponent: 3 });
    const loaded = loadPrivateKey(nonCrtOf(pair.privateKey));
    assert.equal(publicKeyToBase64(loaded), publicKeyToBase64(pair.publicKey));
  });

  test('a private key with the wrong public key throws MPUSH_ERR_KEY', () => {
    const other = generateRsaKeyPair().publicKey;
    assert.throws(() => loadPrivateKey(nonCrtOf(privateKey), other), isCryptoError(MPUSH_ERR_KEY));
    assert.throws(() => loadPrivateKey(privateKeyToPem(privateKey), other), isCryptoError(MPUSH_ERR_KEY));
  });

  test('a non-CRT key whose d is wrong fails fast with MPUSH_ERR_KEY', () => {
    const n = b64uToBig(publicKey.export({ format: 'jwk' }).n!);
    const badD = BigInt(`0x${randomBytes(120).toString('hex')}`);
    const started = Date.now();
    assert.throws(() => loadPrivateKey(nonCrtPkcs8(n, badD)), isCryptoError(MPUSH_ERR_KEY));
    assert.throws(() => loadPrivateKey(nonCrtPkcs8(n, badD), publicKey), isCryptoError(MPUSH_ERR_KEY));
    assert.ok(Date.now() - started < 5000);
  });

  test('garbage key input throws MPUSH_ERR_KEY', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const garbage: Array<string | Buffer> = [
      '',
      'hello',
      'not base64 !!!',
      Buffer.alloc(0),
      randomBytes(200),
      Buffer.from([0x30, 0x82, 0xff, 0xff, 0x02]),
      privateKeyToBase64(privateKey).slice(0, 200),
      Buffer.from(privateKeyToBase64(privateKey), 'base64').subarray(0, 300),
      '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----',
      '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----',
      ec.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      publicB64,
    ];
    for (const input of garbage) {
      assert.throws(
        () => loadPrivateKey(input),
        isCryptoError(MPUSH_ERR_KEY),
        `input ${String(input).slice(0, 40)}`,
      );
    }
    for (const input of [
      '',
      'hello',
      randomBytes(100),
      ec.publicKey.export({ type: 'spki', format: 'pem' }),
    ]) {
      assert.throws(() => loadPublicKey(input), isCryptoError(MPUSH_ERR_KEY));
    }
    assert.throws(() => privateKeyToBase64(publicKey), isCryptoError(MPUSH_ERR_KEY));
    assert.throws(() => new RsaDecryptor(publicKey), isCryptoError(MPUSH_ERR_KEY));
    assert.throws(() => new RsaDecryptor(privateKey, Buffer.alloc(8)), isCryptoError(MPUSH_ERR_KEY));
  });
});

describe('RSA encryption and decryption', () => {
  const decryptor = new RsaDecryptor(privateKey);

  test('decrypts what Node publicEncrypt with RSA_PKCS1_PADDING produced', () => {
    for (const len of [0, 1, 16, 79, 116, 117]) {
      const plain = randomBytes(len);
      const cipher = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, plain);
      assert.equal(cipher.length, 128);
      assert.deepEqual(decryptor.decrypt(cipher), plain);
    }
  });

  test('rsaEncrypt splits into 117-byte blocks and multi-block bodies decrypt', () => {
    const plain = randomBytes(300);
    const cipher = rsaEncrypt(publicKey, plain);
    assert.equal(cipher.length, 3 * 128);
    assert.deepEqual(decryptor.decrypt(cipher), plain);
    assert.equal(rsaEncrypt(publicKey, randomBytes(117)).length, 128);
    assert.equal(rsaEncrypt(publicKey, randomBytes(118)).length, 256);
    assert.equal(rsaEncrypt(publicKey, Buffer.alloc(0)).length, 0);
  });

  test('padding edge cases: 8 padding bytes and an empty message are valid', () => {
    const em = encodedMessage(128, 10);
    assert.deepEqual(decryptor.decrypt(rawEncrypt(publicKey, em)), em.subarray(11));
    const empty = encodedMessage(128, 127);
    assert.equal(decryptor.decrypt(rawEncrypt(publicKey, empty)).length, 0);
  });

  test('bad padding gives the implicit-rejection output: deterministic, never throws', () => {
    const bad = [
      Object.assign(encodedMessage(128, 50), { 0: 1 }),
      Object.assign(encodedMessage(128, 50), { 1: 1 }),
      encodedMessage(128, 9), // only 7 padding bytes
      Buffer.concat([Buffer.from([0, 2]), Buffer.alloc(126, 0x33)]), // no separator
      Buffer.alloc(128, 0),
    ];
    const outputs = new Set<string>();
    for (const em of bad) {
      const cipher = rawEncrypt(publicKey, em);
      const first = decryptor.decrypt(cipher);
      assert.deepEqual(decryptor.decrypt(Buffer.from(cipher)), first, 'same input, same output');
      assert.ok(first.length <= 117);
      assert.notDeepEqual(first, em.subarray(51));
      outputs.add(first.toString('hex'));
    }
    assert.equal(outputs.size, bad.length, 'different ciphertexts give different outputs');
  });

  test('corrupted ciphertexts never throw and answer consistently', () => {
    const cipher = rsaEncrypt(publicKey, Buffer.from('handshake body'));
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const corrupt = Buffer.from(cipher);
      corrupt[10 + i] ^= 0x01;
      const out = decryptor.decrypt(corrupt);
      assert.deepEqual(decryptor.decrypt(corrupt), out);
      seen.add(out.toString('hex'));
    }
    assert.equal(seen.size, 20);
  });

  test('the rejection output depends on the secret; a given secret reproduces it', () => {
    const cipher = rawEncrypt(publicKey, Buffer.alloc(128, 7));
    const secret = randomBytes(32);
    const a = new RsaDecryptor(privateKey, secret).decrypt(cipher);
    assert.deepEqual(new RsaDecryptor(privateKey, secret).decrypt(cipher), a);
    assert.notDeepEqual(new RsaDecryptor(privateKey, randomBytes(32)).decrypt(cipher), a);
  });

  test('bad lengths throw MPUSH_ERR_RSA_BLOCK', () => {
    for (const len of [0, 1, 127, 129, 255]) {
      assert.throws(() => decryptor.decrypt(Buffer.alloc(len, 1)), isCryptoError(MPUSH_ERR_RSA_BLOCK));
    }
    assert.throws(() => decryptor.decrypt(Buffer.alloc(128, 0xff)), isCryptoError(MPUSH_ERR_RSA_BLOCK));
    assert.equal(decryptor.blockSize, 128);
  });

  test('RsaServerCipher decrypts, RsaClientCipher encrypts, and neither does the other', () => {
    const server = new RsaServerCipher(decryptor);
    const client = new RsaClientCipher(publicKey);
    const plain = randomBytes(200);
    assert.deepEqual(server.decrypt(client.encrypt(plain)), plain);
    assert.throws(() => server.encrypt(plain), isCryptoError(MPUSH_ERR_KEY));
    assert.throws(() => client.decrypt(Buffer.alloc(128)), isCryptoError(MPUSH_ERR_KEY));
  });
});

// Known answers from OpenSSL 3.2+ (test/recipes/30-test_evp_data/evppkey_rsa_common.txt, "Test vectors
// for the Bleichenbacher workaround"): with the OpenSSL-derived secret our implicit rejection must give
// byte-for-byte OpenSSL's synthetic messages.
describe('implicit rejection matches OpenSSL 3.2+', () => {
  const key = loadPrivateKey(`-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEAyMyDlxQJjaVsqiNkD5PciZfBY3KWj8Gwxt9RE8HJTosh5IrS
KX5lQZARtObY9ec7G3iyV0ADIdHva2AtTsjOjRQclJBetK0wZjmkkgZTS25/JgdC
Ppff/RM8iNchOZ3vvH6WzNy9fzquH+iScSv7SSmBfVEWZkQKH6y3ogj16hZZEK3Y
o/LUlyAjYMy2MgJPDQcWnBkY8xb3lLFDrvVOyHUipMApePlomYC/+/ZJwwfoGBm/
+IQJY41IvZS+FStZ/2SfoL1inQ/6GBPDq/S1a9PC6lRl3/oUWJKSqdiiStJr5+4F
EHQbY4LUPIPVv6QKRmE9BivkRVF9vK8MtOGnaQIDAQABAoIBABRVAQ4PLVh2Y6Zm
pv8czbvw7dgQBkbQKgI5IpCJksStOeVWWSlybvZQjDpxFY7wtv91HTnQdYC7LS8G
MhBELQYD/1DbvXs1/iybsZpHoa+FpMJJAeAsqLWLeRmyDt8yqs+/Ua20vEthubfp
aMqk1XD3DvGNgGMiiJPkfUOe/KeTJZvPLNEIo9hojN8HjnrHmZafIznSwfUiuWlo
RimpM7quwmgWJeq4T05W9ER+nYj7mhmc9xAj4OJXsURBszyE07xnyoAx0mEmGBA6
egpAhEJi912IkM1hblH5A1SI/W4Jnej/bWWk/xGCVIB8n1jS+7qLoVHcjGi+NJyX
eiBOBMECgYEA+PWta6gokxvqRZuKP23AQdI0gkCcJXHpY/MfdIYColY3GziD7UWe
z5cFJkWe3RbgVSL1pF2UdRsuwtrycsf4gWpSwA0YCAFxY02omdeXMiL1G5N2MFSG
lqn32MJKWUl8HvzUVc+5fuhtK200lyszL9owPwSZm062tcwLsz53Yd0CgYEAznou
O0mpC5YzChLcaCvfvfuujdbcA7YUeu+9V1dD8PbaTYYjUGG3Gv2crS00Al5WrIaw
93Q+s14ay8ojeJVCRGW3Bu0iF15XGMjHC2cD6o9rUQ+UW+SOWja7PDyRcytYnfwF
1y2AkDGURSvaITSGR+xylD8RqEbmL66+jrU2sP0CgYB2/hXxiuI5zfHfa0RcpLxr
uWjXiMIZM6T13NKAAz1nEgYswIpt8gTB+9C+RjB0Q+bdSmRWN1Qp1OA4yiVvrxyb
3pHGsXt2+BmV+RxIy768e/DjSUwINZ5OjNalh9e5bWIh/X4PtcVXXwgu5XdpeYBx
sru0oyI4FRtHMUu2VHkDEQKBgQCZiEiwVUmaEAnLx9KUs2sf/fICDm5zZAU+lN4a
AA3JNAWH9+JydvaM32CNdTtjN3sDtvQITSwCfEs4lgpiM7qe2XOLdvEOp1vkVgeL
9wH2fMaz8/3BhuZDNsdrNy6AkQ7ICwrcwj0C+5rhBIaigkgHW06n5W3fzziC5FFW
FHGikQKBgGQ790ZCn32DZnoGUwITR++/wF5jUfghqd67YODszeUAWtnp7DHlWPfp
LCkyjnRWnXzvfHTKvCs1XtQBoaCRS048uwZITlgZYFEWntFMqi76bqBE4FTSYUTM
FinFUBBVigThM/RLfCRNrCW/kTxXuJDuSfVIJZzWNAT+9oWdz5da
-----END RSA PRIVATE KEY-----`);
  const decryptor = new RsaDecryptor(key, RsaDecryptor.deriveRejectionSecret(key));
  const text = (s: string) => Buffer.from(s).toString('hex');
  const cases: Array<[name: string, input: string, output: string]> = [
    [
      'a random positive test case',
      '8bfe264e85d3bdeaa6b8851b8e3b956ee3d226fd3f69063a86880173a273d9f283b2eebdd1ed35f7e02d91c571981b6737d5320bd8396b0f3ad5b019daec1b0aab3cbbc026395f4fd14f13673f2dfc81f9b660ec26ac381e6db3299b4e460b43fab9955df2b3cfaa20e900e19c856238fd371899c2bf2ce8c868b76754e5db3b036533fd603746be13c10d4e3e6022ebc905d20c2a7f32b215a4cd53b3f44ca1c327d2c2b651145821c08396c89071f665349c25e44d2733cd9305985ceef6430c3cf57af5fa224089221218fa34737c79c446d28a94c41c96e4e92ac53fbcf384dea8419ea089f8784445a492c812eb0d409467f75afd7d4d1078886205a066',
      text('lorem ipsum dolor sit amet'),
    ],
    [
      'a random negative test case decrypting to empty',
      '20aaa8adbbc593a924ba1c5c7990b5c2242ae4b99d0fe636a19a4cf754edbcee774e472fe028160ed42634f8864900cb514006da642cae6ae8c7d087caebcfa6dad1551301e130344989a1d462d4164505f6393933450c67bc6d39d8f5160907cabc251b737925a1cf21e5c6aa5781b7769f6a2a583d97cce008c0f8b6add5f0b2bd80bee60237aa39bb20719fe75749f4bc4e42466ef5a861ae3a92395c7d858d430bfe38040f445ea93fa2958b503539800ffa5ce5f8cf51fa8171a91f36cb4f4575e8de6b4d3f096ee140b938fd2f50ee13f0d050222e2a72b0a3069ff3a6738e82c87090caa5aed4fcbe882c49646aa250b98f12f83c8d528113614a29e7',
      '',
    ],
    [
      'invalid decrypting to max length message',
      '48cceab10f39a4db32f60074feea473cbcdb7accf92e150417f76b44756b190e843e79ec12aa85083a21f5437e7bad0a60482e601198f9d86923239c8786ee728285afd0937f7dde12717f28389843d7375912b07b991f4fdb0190fced8ba665314367e8c5f9d2981d0f5128feeb46cb50fc237e64438a86df198dd0209364ae3a842d77532b66b7ef263b83b1541ed671b120dfd660462e2107a4ee7b964e734a7bd68d90dda61770658a3c242948532da32648687e0318286473f675b412d6468f013f14d760a358dfcad3cda2afeec5e268a37d250c37f722f468a70dfd92d7294c3c1ee1e7f8843b7d16f9f37ef35748c3ae93aa155cdcdfeb4e78567303',
      '22d850137b9eebe092b24f602dc5bb7918c16bd89ddbf20467b119d205f9c2e4bd7d2592cf1e532106e0f33557565923c73a02d4f09c0c22bea89148183e60317f7028b3aa1f261f91c979393101d7e15f4067e63979b32751658ef769610fe97cf9cef3278b3117d384051c3b1d82c251c2305418c8f6840530e631aad63e70e20e025bcd8efb54c92ec6d3b106a2f8e64eeff7d38495b0fc50c97138af4b1c0a67a1c4e27b077b8439332edfa8608dfeae653cd6a628ac550395f7e74390e42c11682234870925eeaa1fa71b76cf1f2ee3bda69f6717033ff8b7c95c9799e7a3bea5e7e4a1c359772fb6b1c6e6c516661dfe30c3',
    ],
    [
      'invalid decrypting to a length given by the second to last PRF value',
      '1439e08c3f84c1a7fec74ce07614b20e01f6fa4e8c2a6cffdc3520d8889e5d9a950c6425798f85d4be38d300ea5695f13ecd4cb389d1ff5b82484b494d6280ab7fa78e645933981cb934cce8bfcd114cc0e6811eefa47aae20af638a1cd163d2d3366186d0a07df0c81f6c9f3171cf3561472e98a6006bf75ddb457bed036dcce199369de7d94ef2c68e8467ee0604eea2b3009479162a7891ba5c40cab17f49e1c438cb6eaea4f76ce23cce0e483ff0e96fa790ea15be67671814342d0a23f4a20262b6182e72f3a67cd289711503c85516a9ed225422f98b116f1ab080a80abd6f0216df88d8cfd67c139243be8dd78502a7aaf6bc99d7da71bcdf627e7354',
      '0f9b',
    ],
    [
      'invalid decrypting to a length given by the third to last PRF value',
      '1690ebcceece2ce024f382e467cf8510e74514120937978576caf684d4a02ad569e8d76cbe365a060e00779de2f0865ccf0d923de3b4783a4e2c74f422e2f326086c390b658ba47f31ab013aa80f468c71256e5fa5679b24e83cd82c3d1e05e398208155de2212993cd2b8bab6987cf4cc1293f19909219439d74127545e9ed8a706961b8ee2119f6bfacafbef91b75a789ba65b8b833bc6149cf49b5c4d2c6359f62808659ba6541e1cd24bf7f7410486b5103f6c0ea29334ea6f4975b17387474fe920710ea61568d7b7c0a7916acf21665ad5a31c4eabcde44f8fb6120d8457afa1f3c85d517cda364af620113ae5a3c52a048821731922737307f77a1081',
      '4f02',
    ],
    [
      'positive test with an 11-byte value',
      '6213634593332c485cef783ea2846e3d6e8b0e005cd8293eaebbaa5079712fd681579bdfbbda138ae4d9d952917a03c92398ec0cb2bb0c6b5a8d55061fed0d0d8d72473563152648cfe640b335dc95331c21cb133a91790fa93ae44497c128708970d2beeb77e8721b061b1c44034143734a77be8220877415a6dba073c3871605380542a9f25252a4babe8331cdd53cf828423f3cc70b560624d0581fb126b2ed4f4ed358f0eb8065cf176399ac1a846a31055f9ae8c9c24a1ba050bc20842125bc1753158f8065f3adb9cc16bfdf83816bdf38b624f12022c5a6fbfe29bc91542be8c0208a770bcd677dc597f5557dc2ce28a11bf3e3857f158717a33f6592',
      text('lorem ipsum'),
    ],
    [
      'positive that generates a 0-byte synthetic message internally',
      'b5e49308f6e9590014ffaffc5b8560755739dd501f1d4e9227a7d291408cf4b753f292322ff8bead613bf2caa181b221bc38caf6392deafb28eb21ad60930841ed02fd6225cc9c463409adbe7d8f32440212fbe3881c51375bb09565efb22e62b071472fb38676e5b4e23a0617db5d14d93519ac0007a30a9c822eb31c38b57fcb1be29608fcf1ca2abdcaf5d5752bbc2b5ac7dba5afcff4a5641da360dd01f7112539b1ed46cdb550a3b1006559b9fe1891030ec80f0727c42401ddd6cbb5e3c80f312df6ec89394c5a7118f573105e7ab00fe57833c126141b50a935224842addfb479f75160659ba28877b512bb9a93084ad8bec540f92640f63a11a010e0',
      text('lorem ipsum'),
    ],
    [
      'positive that generates a 245-byte synthetic message internally',
      '1ea0b50ca65203d0a09280d39704b24fe6e47800189db5033f202761a78bafb270c5e25abd1f7ecc6e7abc4f26d1b0cd9b8c648d529416ee64ccbdd7aa72a771d0353262b543f0e436076f40a1095f5c7dfd10dcf0059ccb30e92dfa5e0156618215f1c3ff3aa997a9d999e506924f5289e3ac72e5e2086cc7b499d71583ed561028671155db4005bee01800a7cdbdae781dd32199b8914b5d4011dd6ff11cd26d46aad54934d293b0bc403dd211bf13b5a5c6836a5e769930f437ffd8634fb7371776f4bc88fa6c271d8aa6013df89ae6470154497c4ac861be2a1c65ebffec139bf7aaba3a81c7c5cdd84da9af5d3edfb957848074686b5837ecbcb6a41c50',
      text('lorem ipsum'),
    ],
    [
      'a random negative test that generates an 11-byte message',
      '5f02f4b1f46935c742ebe62b6f05aa0a3286aab91a49b34780adde6410ab46f7386e05748331864ac98e1da63686e4babe3a19ed40a7f5ceefb89179596aab07ab1015e03b8f825084dab028b6731288f2e511a4b314b6ea3997d2e8fe2825cef8897cbbdfb6c939d441d6e04948414bb69e682927ef8576c9a7090d4aad0e74c520d6d5ce63a154720f00b76de8cc550b1aa14f016d63a7b6d6eaa1f7dbe9e50200d3159b3d099c900116bf4eba3b94204f18b1317b07529751abf64a26b0a0bf1c8ce757333b3d673211b67cc0653f2fe2620d57c8b6ee574a0323a167eab1106d9bc7fd90d415be5f1e9891a0e6c709f4fc0404e8226f8477b4e939b36eb2',
      'af9ac70191c92413cb9f2d',
    ],
    [
      'wrong first byte (0x01 instead of 0x00)',
      '9b2ec9c0c917c98f1ad3d0119aec6be51ae3106e9af1914d48600ab6a2c0c0c8ae02a2dc3039906ff3aac904af32ec798fd65f3ad1afa2e69400e7c1de81f5728f3b3291f38263bc7a90a0563e43ce7a0d4ee9c0d8a716621ca5d3d081188769ce1b131af7d35b13dea99153579c86db31fe07d5a2c14d621b77854e48a8df41b5798563af489a291e417b6a334c63222627376118c02c53b6e86310f728734ffc86ef9d7c8bf56c0c841b24b82b59f51aee4526ba1c4268506d301e4ebc498c6aebb6fd5258c876bf900bac8ca4d309dd522f6a6343599a8bc3760f422c10c72d0ad527ce4af1874124ace3d99bb74db8d69d2528db22c3a37644640f95c05f',
      'a1f8c9255c35cfba403ccc',
    ],
    [
      'wrong second byte (0x01 instead of 0x02)',
      '782c2b59a21a511243820acedd567c136f6d3090c115232a82a5efb0b178285f55b5ec2d2bac96bf00d6592ea7cdc3341610c8fb07e527e5e2d20cfaf2c7f23e375431f45e998929a02f25fd95354c33838090bca838502259e92d86d568bc2cdb132fab2a399593ca60a015dc2bb1afcd64fef8a3834e17e5358d822980dc446e845b3ab4702b1ee41fe5db716d92348d5091c15d35a110555a35deb4650a5a1d2c98025d42d4544f8b32aa6a5e02dc02deaed9a7313b73b49b0d4772a3768b0ea0db5846ace6569cae677bf67fb0acf3c255dc01ec8400c963b6e49b1067728b4e563d7e1e1515664347b92ee64db7efb5452357a02fff7fcb7437abc2e579',
      'e6d700309ca0ed62452254',
    ],
    [
      'an invalid ciphertext with a leading zero byte',
      '0096136621faf36d5290b16bd26295de27f895d1faa51c800dafce73d001d60796cd4e2ac3fa2162131d859cd9da5a0c8a42281d9a63e5f353971b72e36b5722e4ac444d77f892a5443deb3dca49fa732fe855727196e23c26eeac55eeced8267a209ebc0f92f4656d64a6c13f7f7ce544ebeb0f668fe3a6c0f189e4bcd5ea12b73cf63e0c8350ee130dd62f01e5c97a1e13f52fde96a9a1bc9936ce734fdd61f27b18216f1d6de87f49cf4f2ea821fb8efd1f92cdad529baf7e31aff9bff4074f2cad2b4243dd15a711adcf7de900851fbd6bcb53dac399d7c880531d06f25f7002e1aaf1722765865d2c2b902c7736acd27bc6cbd3e38b560e2eecf7d4b576',
      'ba27b1842e7c21c0e7ef6a',
    ],
  ];
  for (const [name, input, output] of cases) {
    test(name, () => {
      assert.equal(decryptor.decrypt(Buffer.from(input, 'hex')).toString('hex'), output);
    });
  }
});
