import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** Bytes of the gateway's challenge: fresh for every connection, never reused. */
export const GATEWAY_NONCE_BYTES = 32;

/** What the MAC signs before the nonce: names the scheme, so no other HMAC of the secret matches. */
const DOMAIN = 'mpush-gateway-auth.v2.';

/**
 * The signed fields of a GATEWAY_AUTH body. protocol/'s `GatewayAuthMessage` has this shape, so
 * `GatewayAuthCodec.encode(signGatewayAuth(...))` is the body; crypto/ stays free of codecs.
 */
export interface GatewayAuthProof {
  clientId: string;
  mac: Buffer;
}

/** A fresh challenge for one gateway connection. */
export function gatewayNonce(): Buffer {
  return randomBytes(GATEWAY_NONCE_BYTES);
}

function mac(secret: string, nonce: Buffer, clientId: string): Buffer {
  // The nonce has a fixed length, so "<domain><nonce>.<clientId>" cannot be read two ways.
  return createHmac('sha256', secret).update(DOMAIN).update(nonce).update(`.${clientId}`).digest();
}

/**
 * Answers a gateway's challenge: mac = HMAC-SHA256(secret, "mpush-gateway-auth.v2." ‖ nonce ‖
 * "." ‖ clientId) over the nonce that gateway sent on this connection (GATEWAY_HELLO's reply). The
 * secret never crosses the wire, and the proof is good for that one connection only.
 */
export function signGatewayAuth(secret: string, clientId: string, nonce: Buffer): GatewayAuthProof {
  return { clientId, mac: mac(secret, nonce, clientId) };
}

/**
 * Checks a decoded GATEWAY_AUTH proof against the nonce this connection was sent (constant-time);
 * returns the client id, or the reason it is refused.
 */
export function verifyGatewayAuth(
  secret: string,
  nonce: Buffer,
  proof: GatewayAuthProof,
): { ok: true; clientId: string } | { ok: false; reason: string } {
  const { clientId, mac: given } = proof;
  const expected = mac(secret, nonce, clientId);
  if (
    nonce.length !== GATEWAY_NONCE_BYTES ||
    given.length !== expected.length ||
    !timingSafeEqual(given, expected)
  )
    return { ok: false, reason: 'bad gateway secret' };
  return { ok: true, clientId };
}
