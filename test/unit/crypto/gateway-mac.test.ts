import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AUTH_CLOCK_SKEW_MS, signGatewayAuth, verifyGatewayAuth } from '../../../src/crypto/gateway-mac.js';
import { GatewayAuthCodec } from '../../../src/protocol/index.js';

const T = 1_700_000_000_000;

describe('gateway challenge MAC', () => {
  it('is HMAC-SHA256(secret, "mpush-gateway.<clientId>.<timestamp>"), and the body keeps its bytes', () => {
    const proof = signGatewayAuth('s3cret', 'push-sender', T);
    assert.equal(
      proof.mac.toString('hex'),
      'c3d9304afdea3b78ad552dccd9c73bd047311ecf46c24d4ca7130a53c150fedf',
    );
    // What the push client sent before the MAC moved to crypto/: the gateway still reads it.
    assert.equal(
      GatewayAuthCodec.encode(proof).toString('hex'),
      '000b707573682d73656e6465720000018bcfe568000020c3d9304afdea3b78ad552dccd9c73bd047311ecf46c24d4ca7130a53c150fedf',
    );
  });

  it('accepts a proof signed with the secret, through the wire body', () => {
    const body = GatewayAuthCodec.encode(signGatewayAuth('s3cret', 'svc-a', T));
    assert.deepEqual(verifyGatewayAuth('s3cret', GatewayAuthCodec.decode(body), T + 1000), {
      ok: true,
      clientId: 'svc-a',
    });
  });

  it('refuses another secret, another client id, or a cut mac', () => {
    const proof = signGatewayAuth('s3cret', 'svc-a', T);
    assert.deepEqual(verifyGatewayAuth('other', proof, T), { ok: false, reason: 'bad gateway secret' });
    assert.deepEqual(verifyGatewayAuth('s3cret', { ...proof, clientId: 'svc-b' }, T), {
      ok: false,
      reason: 'bad gateway secret',
    });
    assert.deepEqual(verifyGatewayAuth('s3cret', { ...proof, mac: proof.mac.subarray(0, 16) }, T), {
      ok: false,
      reason: 'bad gateway secret',
    });
  });

  it('refuses a timestamp beyond the clock skew, either way', () => {
    const proof = signGatewayAuth('s3cret', 'svc-a', T);
    assert.equal(verifyGatewayAuth('s3cret', proof, T + AUTH_CLOCK_SKEW_MS).ok, true);
    assert.deepEqual(verifyGatewayAuth('s3cret', proof, T + AUTH_CLOCK_SKEW_MS + 1), {
      ok: false,
      reason: 'auth timestamp out of range',
    });
    assert.deepEqual(verifyGatewayAuth('s3cret', proof, T - AUTH_CLOCK_SKEW_MS - 1), {
      ok: false,
      reason: 'auth timestamp out of range',
    });
  });
});
