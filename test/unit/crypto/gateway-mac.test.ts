import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  GATEWAY_NONCE_BYTES,
  gatewayNonce,
  signGatewayAuth,
  verifyGatewayAuth,
} from '../../../src/crypto/gateway-mac.js';
import { GatewayAuthCodec } from '../../../src/protocol/index.js';

/** 00 01 02 … 1f: the nonce of the vector. */
const NONCE = Buffer.from(Array.from({ length: GATEWAY_NONCE_BYTES }, (_, i) => i));

describe('gateway challenge MAC', () => {
  it('is HMAC-SHA256(secret, "mpush-gateway-auth.v2." ‖ nonce ‖ "." ‖ clientId), and the body keeps its bytes', () => {
    // Vector from openssl: printf 'mpush-gateway-auth.v2.' ‖ bytes 00..1f ‖ '.push-sender' |
    //   openssl dgst -sha256 -hmac s3cret
    const proof = signGatewayAuth('s3cret', 'push-sender', NONCE);
    assert.equal(
      proof.mac.toString('hex'),
      '9f090c962cfa0c00eecaacf9f8bce262cc34f10828ec4cfb62f6ed297daa6ce8',
    );
    assert.equal(
      GatewayAuthCodec.encode(proof).toString('hex'),
      '000b707573682d73656e646572' +
        '0020' +
        '9f090c962cfa0c00eecaacf9f8bce262cc34f10828ec4cfb62f6ed297daa6ce8',
    );
  });

  it('accepts a proof over the nonce, through the wire body', () => {
    const body = GatewayAuthCodec.encode(signGatewayAuth('s3cret', 'svc-a', NONCE));
    assert.deepEqual(verifyGatewayAuth('s3cret', NONCE, GatewayAuthCodec.decode(body)), {
      ok: true,
      clientId: 'svc-a',
    });
  });

  it('refuses another nonce (a replay on another connection), another secret, client id, or a cut mac', () => {
    const proof = signGatewayAuth('s3cret', 'svc-a', NONCE);
    const refused = { ok: false, reason: 'bad gateway secret' };
    assert.deepEqual(verifyGatewayAuth('s3cret', gatewayNonce(), proof), refused);
    assert.deepEqual(verifyGatewayAuth('other', NONCE, proof), refused);
    assert.deepEqual(verifyGatewayAuth('s3cret', NONCE, { ...proof, clientId: 'svc-b' }), refused);
    assert.deepEqual(
      verifyGatewayAuth('s3cret', NONCE, { ...proof, mac: proof.mac.subarray(0, 16) }),
      refused,
    );
    assert.deepEqual(
      verifyGatewayAuth('s3cret', Buffer.alloc(0), signGatewayAuth('s3cret', 'a', Buffer.alloc(0))),
      refused,
    );
  });

  it('makes a fresh nonce of GATEWAY_NONCE_BYTES each time', () => {
    const a = gatewayNonce();
    assert.equal(a.length, GATEWAY_NONCE_BYTES);
    assert.notDeepEqual(a, gatewayNonce());
  });
});
