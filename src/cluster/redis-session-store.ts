import type { RedisClient } from './redis-connection.js';
import type { RedisStoreOptions } from './redis-route-store.js';
import type { SessionStore, StoredSession } from './session-store.js';

function decodeSession(json: string): StoredSession | undefined {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  for (const k of ['deviceId', 'osName', 'osVersion', 'clientVersion', 'sessionKey', 'iv'] as const) {
    if (typeof o[k] !== 'string') return undefined;
  }
  if (typeof o.expireTime !== 'number') return undefined;
  return {
    deviceId: o.deviceId as string,
    osName: o.osName as string,
    osVersion: o.osVersion as string,
    clientVersion: o.clientVersion as string,
    sessionKey: o.sessionKey as string,
    iv: o.iv as string,
    expireTime: o.expireTime,
  };
}

/**
 * Fast-connect sessions in Redis (mpush-wire §6): `<prefix>rs:<sessionId>` = the session's
 * JSON, expiring with the session, so a device can fast-connect to any node.
 *
 * Redis commands: get = 1 GET; set = 1 SET … PX (a ttl ≤ 0 is 1 DEL: nothing to keep);
 * delete = 1 DEL.
 */
export class RedisSessionStore implements SessionStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix = 'mp:',
    private readonly opts: RedisStoreOptions = {},
  ) {}

  /** The key holding a session. */
  key(sessionId: string): string {
    return `${this.prefix}rs:${sessionId}`;
  }

  async get(sessionId: string): Promise<StoredSession | undefined> {
    const json = await this.redis.get(this.key(sessionId));
    return json === null ? undefined : decodeSession(json);
  }

  async set(sessionId: string, session: StoredSession, ttlMs: number): Promise<void> {
    const px = Math.ceil(ttlMs);
    if (!(px > 0)) {
      await this.redis.del(this.key(sessionId));
      return;
    }
    const value = JSON.stringify({
      deviceId: session.deviceId,
      osName: session.osName,
      osVersion: session.osVersion,
      clientVersion: session.clientVersion,
      sessionKey: session.sessionKey,
      iv: session.iv,
      expireTime: session.expireTime,
    });
    await this.redis.set(this.key(sessionId), value, 'PX', px);
  }

  async delete(sessionId: string): Promise<void> {
    await this.redis.del(this.key(sessionId));
  }

  /** Leaves the sessions in Redis (other nodes fast-connect with them); runs `onClose`. */
  async close(): Promise<void> {
    await this.opts.onClose?.();
  }
}
