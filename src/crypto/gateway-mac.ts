import { createHmac, timingSafeEqual } from 'node:crypto';

/** How far a push client's clock may be from the gateway's. */
export const AUTH_CLOCK_SKEW_MS = 5 * 60_000;

/**
 * The signed fields of a GATEWAY_AUTH body. protocol/'s `GatewayAuthMessage` has this shape, so
 * `GatewayAuthCodec.encode(signGatewayAuth(...))` is the body; crypto/ stays free of codecs.
 */
export interface GatewayAuthProof {
  clientId: string;
  timestamp: number;
  mac: Buffer;
}

function mac(secret: string, clientId: string, timestamp: number): Buffer {
  return createHmac('sha256', secret).update(`mpush-gateway.${clientId}.${timestamp}`).digest();
}

/**
 * Signs a gateway challenge: mac = HMAC-SHA256(secret, "mpush-gateway.<clientId>.<timestamp>").
 * The secret never crosses the wire; the timestamp bounds how long a captured proof replays.
 */
export function signGatewayAuth(secret: string, clientId: string, timestamp = Date.now()): GatewayAuthProof {
  return { clientId, timestamp, mac: mac(secret, clientId, timestamp) };
}

/** Checks a decoded GATEWAY_AUTH proof; returns the client id, or the reason it is refused. */
export function verifyGatewayAuth(
  secret: string,
  proof: GatewayAuthProof,
  now = Date.now(),
): { ok: true; clientId: string } | { ok: false; reason: string } {
  const { clientId, timestamp, mac: given } = proof;
  if (Math.abs(now - timestamp) > AUTH_CLOCK_SKEW_MS)
    return { ok: false, reason: 'auth timestamp out of range' };
  const expected = mac(secret, clientId, timestamp);
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return { ok: false, reason: 'bad gateway secret' };
  return { ok: true, clientId };
}
