import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Signed bind tokens, carried in the bind `data` field (the slot MPush's Java SDK calls alias).
 *
 * Format: `v1.<expiry>.<signature>` where `expiry` is Unix seconds (decimal) and `signature` is
 * base64url(HMAC-SHA256(secret, "v1." + userId + "." + expiry)). The user id is not in the
 * token: the server signs over the user id the bind names, so a token for one user never binds
 * another. A business server mints tokens with {@link mintBindToken} and hands them to its app.
 */
export type BindTokenCheck =
  | { ok: true; expiresAt: number }
  | { ok: false; reason: 'malformed' | 'expired' | 'bad-signature' };

function sign(secret: string, userId: string, expiry: number): Buffer {
  return createHmac('sha256', secret).update(`v1.${userId}.${expiry}`).digest();
}

/** Mints a token letting `userId` bind until `nowSec + ttlSec`. */
export function mintBindToken(
  secret: string,
  userId: string,
  ttlSec: number,
  nowSec = Math.floor(Date.now() / 1000),
): string {
  const expiry = nowSec + Math.floor(ttlSec);
  return `v1.${expiry}.${sign(secret, userId, expiry).toString('base64url')}`;
}

/** Verifies a token for `userId`; constant-time on the signature. */
export function verifyBindToken(
  secret: string,
  userId: string,
  token: string,
  nowSec = Math.floor(Date.now() / 1000),
): BindTokenCheck {
  // One spelling per expiry (no leading zeros): a token's text then names exactly one token.
  const m = /^v1\.([1-9]\d{0,11})\.([A-Za-z0-9_-]{43})$/.exec(token);
  if (!m) return { ok: false, reason: 'malformed' };
  const expiry = Number(m[1]);
  const given = Buffer.from(m[2]!, 'base64url');
  const expected = sign(secret, userId, expiry);
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return { ok: false, reason: 'bad-signature' };
  if (expiry <= nowSec) return { ok: false, reason: 'expired' };
  return { ok: true, expiresAt: expiry };
}
