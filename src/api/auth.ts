import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import type { Config } from '../config/index.js';
import { HttpError } from './reply.js';

/** A loopback host or address (`::ffff:127.0.0.1` is how a dual-stack socket names an IPv4 peer). */
export function isLoopback(host: string): boolean {
  const v4 = host.startsWith('::ffff:') ? host.slice(7) : host;
  return host === 'localhost' || host === '::1' || (isIP(v4) === 4 && v4.startsWith('127.'));
}

/**
 * The API's bearer secret: `api.secret`, or none on a loopback-only port, or (reachable from
 * other hosts with none configured) one generated at start, so the API is never served open.
 */
export class BearerAuth {
  /** The secret required (null: loopback only, none required). */
  readonly secret: string | null;
  /** True when the secret was generated at start (printed in the banner). */
  readonly generated: boolean;

  /** The secret's bytes, made once. */
  private readonly expected: Buffer | null;

  constructor(config: Config) {
    if (config.api.secret) {
      this.secret = config.api.secret;
      this.generated = false;
    } else if (isLoopback(config.http.host)) {
      this.secret = null;
      this.generated = false;
    } else {
      this.secret = randomBytes(24).toString('base64url');
      this.generated = true;
    }
    this.expected = this.secret === null ? null : Buffer.from(this.secret);
  }

  /** Throws a 401 unless `req` carries `Authorization: Bearer <secret>` (compared in constant time). */
  check(req: IncomingMessage): void {
    const expected = this.expected;
    if (expected === null) return;
    const header = req.headers.authorization ?? '';
    const given = Buffer.from(header.startsWith('Bearer ') ? header.slice(7) : '');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new HttpError(401, 'missing or wrong bearer secret (api.secret)');
    }
  }
}
