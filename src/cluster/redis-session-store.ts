import type { RedisClient } from './redis-connection.js';
import { readJson } from './redis-json.js';
import type { RedisStoreOptions } from './redis-route-store.js';
import { type SessionStore, type StoredSession, storedSessionSchema } from './session-store.js';

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
    return json === null ? undefined : readJson(storedSessionSchema, json);
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
