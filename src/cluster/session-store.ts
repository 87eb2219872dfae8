import { z } from 'zod';

/**
 * Fast-connect sessions (mpush-wire §6): what a device needs to resume its cipher on a new
 * connection without a new RSA handshake. One interface; memory here, Redis for a cluster
 * (`mp:rs:<sessionId>` with the session's TTL).
 */
export type StoredSession = z.infer<typeof storedSessionSchema>;

/** A session, also as read back from a shared store: every field is required. */
export const storedSessionSchema = z.object({
  deviceId: z.string(),
  osName: z.string(),
  osVersion: z.string(),
  clientVersion: z.string(),
  /** AES session key (clientKey XOR serverKey), hex. */
  sessionKey: z.string(),
  /** AES iv, hex. */
  iv: z.string(),
  /** Unix ms after which the session is gone. */
  expireTime: z.number(),
});

export interface SessionStore {
  get(sessionId: string): Promise<StoredSession | undefined>;
  /** Stores with a time to live; a later `get` after it passed finds nothing. */
  set(sessionId: string, session: StoredSession, ttlMs: number): Promise<void>;
  delete(sessionId: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * A session and when it leaves the store, in one object (a record in a wrapper costs 32 bytes
 * more). A key and iv in the handshake's lower-case hex are kept as their 32 bytes in one latin1
 * string, `keys` (48 bytes for two 48-byte strings); anything else as given.
 */
type Entry = Omit<StoredSession, 'sessionKey' | 'iv'> & { until: number } & (
    | { keys: string }
    | { sessionKey: string; iv: string }
  );

/** 16 bytes in lower-case hex, as the handshake writes a key or an iv. */
const HEX16 = /^[0-9a-f]{32}$/;

/** In-memory sessions for one machine: expired entries are dropped on read and by a sweep. */
export class MemorySessionStore implements SessionStore {
  private readonly sessions = new Map<string, Entry>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    sweepIntervalMs = 60_000,
    private readonly now: () => number = Date.now,
    /** Past this many, the oldest session goes first: sessions outlive their connections by a day. */
    private readonly maxEntries = 1_000_000,
  ) {
    this.sweeper = setInterval(() => this.sweep(), sweepIntervalMs);
    this.sweeper.unref();
  }

  async get(sessionId: string): Promise<StoredSession | undefined> {
    const e = this.sessions.get(sessionId);
    if (!e) return undefined;
    if (e.until <= this.now()) {
      this.sessions.delete(sessionId);
      return undefined;
    }
    const { deviceId, osName, osVersion, clientVersion, expireTime } = e;
    if (!('keys' in e))
      return { deviceId, osName, osVersion, clientVersion, sessionKey: e.sessionKey, iv: e.iv, expireTime };
    const hex = Buffer.from(e.keys, 'latin1').toString('hex');
    return {
      deviceId,
      osName,
      osVersion,
      clientVersion,
      sessionKey: hex.slice(0, 32),
      iv: hex.slice(32),
      expireTime,
    };
  }

  async set(sessionId: string, session: StoredSession, ttlMs: number): Promise<void> {
    this.sessions.delete(sessionId); // re-insert at the young end
    const { deviceId, osName, osVersion, clientVersion, sessionKey, iv, expireTime } = session;
    const until = this.now() + ttlMs;
    // Literals, not a spread: properties added after a spread can go out of the object.
    if (HEX16.test(sessionKey) && HEX16.test(iv)) {
      const keys = Buffer.from(sessionKey + iv, 'hex').toString('latin1');
      this.sessions.set(sessionId, { deviceId, osName, osVersion, clientVersion, keys, expireTime, until });
    } else {
      this.sessions.set(sessionId, {
        deviceId,
        osName,
        osVersion,
        clientVersion,
        sessionKey,
        iv,
        expireTime,
        until,
      });
    }
    if (this.sessions.size > this.maxEntries) {
      // A Map iterates in insertion order: the first key is the oldest session.
      const oldest = this.sessions.keys().next().value;
      if (oldest !== undefined) this.sessions.delete(oldest);
    }
  }

  async delete(sessionId: string): Promise<void> {
    this.sessions.delete(sessionId);
  }

  get size(): number {
    return this.sessions.size;
  }

  sweep(): void {
    const now = this.now();
    for (const [id, e] of this.sessions) if (e.until <= now) this.sessions.delete(id);
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.sessions.clear();
  }
}
