import { createHmac, timingSafeEqual } from 'node:crypto';
import { BodyReader, BodyWriter } from '../protocol/index.js';

/** How far a push client's clock may be from the gateway's. */
export const AUTH_CLOCK_SKEW_MS = 5 * 60_000;

function mac(secret: string, clientId: string, timestamp: number): Buffer {
  return createHmac('sha256', secret).update(`mpush-gateway.${clientId}.${timestamp}`).digest();
}

/**
 * GATEWAY_AUTH body: clientId str, timestamp long, mac bytes = HMAC-SHA256(secret,
 * "mpush-gateway.<clientId>.<timestamp>"). The secret never crosses the wire.
 */
export function encodeGatewayAuth(secret: string, clientId: string, timestamp = Date.now()): Buffer {
  return new BodyWriter(96)
    .writeString(clientId)
    .writeLong(timestamp)
    .writeBytes(mac(secret, clientId, timestamp))
    .finish();
}

/** Checks a GATEWAY_AUTH body; returns the client id, or an error reason. */
export function verifyGatewayAuth(
  secret: string,
  body: Buffer,
  now = Date.now(),
): { ok: true; clientId: string } | { ok: false; reason: string } {
  const r = new BodyReader(body);
  const clientId = r.readString();
  const timestamp = r.readLong();
  const given = r.readBytes();
  if (Math.abs(now - timestamp) > AUTH_CLOCK_SKEW_MS)
    return { ok: false, reason: 'auth timestamp out of range' };
  const expected = mac(secret, clientId, timestamp);
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return { ok: false, reason: 'bad gateway secret' };
  return { ok: true, clientId };
}
