import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';

/**
 * What a device keeps between connections to fast-connect (mpush-wire §6): the session the
 * server created at the handshake, and the AES key and iv that go with it.
 */
export interface StoredSession {
  /** The server's session id (md5 hex in MPush). */
  sessionId: string;
  /** The device the session belongs to; a session of another device is never used. */
  deviceId: string;
  /** The mixed AES session key, hex. */
  sessionKey: string;
  /** The AES iv of the session, hex. */
  iv: string;
  /** The heartbeat negotiated at the handshake, in milliseconds. */
  heartbeat: number;
  /** When the server forgets the session, in epoch milliseconds. */
  expireTime: number;
  /** `host:port` of the server that created it; informational (any node can fast-connect it). */
  address?: string;
}

/** Where a {@link DeviceClient} keeps its session between connections and process runs. */
export interface SessionStorage {
  /** The stored session, or `undefined` when there is none or it cannot be read. */
  load(): Promise<StoredSession | undefined>;
  save(session: StoredSession): Promise<void>;
  clear(): Promise<void>;
}

const HEX = /^(?:[0-9a-f]{2})*$/i;

/** Checks the shape of something read back from storage; anything else is treated as no session. */
export function isStoredSession(v: unknown): v is StoredSession {
  if (typeof v !== 'object' || v === null) return false;
  const s = v as Record<string, unknown>;
  return (
    typeof s.sessionId === 'string' &&
    s.sessionId !== '' &&
    typeof s.deviceId === 'string' &&
    typeof s.sessionKey === 'string' &&
    HEX.test(s.sessionKey) &&
    typeof s.iv === 'string' &&
    HEX.test(s.iv) &&
    typeof s.heartbeat === 'number' &&
    Number.isFinite(s.heartbeat) &&
    typeof s.expireTime === 'number' &&
    Number.isFinite(s.expireTime) &&
    (s.address === undefined || typeof s.address === 'string')
  );
}

/** Keeps the session in memory: fast connect across reconnects of one process. */
export class MemorySessionStorage implements SessionStorage {
  private session: StoredSession | undefined;

  async load(): Promise<StoredSession | undefined> {
    return this.session ? { ...this.session } : undefined;
  }

  async save(session: StoredSession): Promise<void> {
    this.session = { ...session };
  }

  async clear(): Promise<void> {
    this.session = undefined;
  }
}

/**
 * Keeps the session in a JSON file, so a restarted process can fast-connect.
 *
 * A save writes a temporary file beside the target and renames it over the target, so a crash
 * mid-write leaves either the old session or the new one, never a torn file. A missing,
 * unreadable or malformed file loads as no session.
 */
export class FileSessionStorage implements SessionStorage {
  constructor(readonly path: string) {}

  async load(): Promise<StoredSession | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch {
      return undefined;
    }
    try {
      const v: unknown = JSON.parse(text);
      return isStoredSession(v) ? v : undefined;
    } catch {
      return undefined;
    }
  }

  async save(session: StoredSession): Promise<void> {
    // A unique temp name: two saves racing must not write into the same temp file.
    const tmp = `${this.path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await writeFile(tmp, JSON.stringify(session), { encoding: 'utf8', mode: 0o600 });
      await rename(tmp, this.path);
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    }
  }

  async clear(): Promise<void> {
    await rm(this.path, { force: true });
  }
}
