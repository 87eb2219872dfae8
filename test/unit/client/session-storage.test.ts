import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import {
  FileSessionStorage,
  MemorySessionStorage,
  type SessionStorage,
  type StoredSession,
} from '../../../src/client/device/index.js';

const session: StoredSession = {
  sessionId: '0123456789abcdef0123456789abcdef',
  deviceId: 'dev-1',
  sessionKey: '10101010101010101010101010101010',
  iv: '000102030405060708090a0b0c0d0e0f',
  heartbeat: 180_000,
  expireTime: 1_900_000_000_000,
  address: '127.0.0.1:3000',
};

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'mpush-session-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The contract every storage keeps. */
async function roundTrip(storage: SessionStorage): Promise<void> {
  assert.equal(await storage.load(), undefined);
  await storage.save(session);
  assert.deepEqual(await storage.load(), session);
  const next = { ...session, sessionId: 'fedcba9876543210fedcba9876543210', address: undefined };
  delete next.address;
  await storage.save(next);
  assert.deepEqual(await storage.load(), next);
  await storage.clear();
  assert.equal(await storage.load(), undefined);
  await storage.clear();
}

describe('MemorySessionStorage', () => {
  it('saves, loads and clears', async () => {
    await roundTrip(new MemorySessionStorage());
  });

  it('hands out copies, so a caller cannot change what is stored', async () => {
    const storage = new MemorySessionStorage();
    const mine = { ...session };
    await storage.save(mine);
    mine.sessionId = 'changed';
    const loaded = await storage.load();
    assert.equal(loaded?.sessionId, session.sessionId);
    loaded!.deviceId = 'changed';
    assert.equal((await storage.load())?.deviceId, 'dev-1');
  });
});

describe('FileSessionStorage', () => {
  it('saves, loads and clears', async (t) => {
    await roundTrip(new FileSessionStorage(join(tempDir(t), 'session.json')));
  });

  it('survives a new instance (a restarted process)', async (t) => {
    const path = join(tempDir(t), 'session.json');
    await new FileSessionStorage(path).save(session);
    assert.deepEqual(await new FileSessionStorage(path).load(), session);
    assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), session);
  });

  it('writes through a temporary file and a rename, leaving no temporary file behind', async (t) => {
    const dir = tempDir(t);
    const path = join(dir, 'session.json');
    writeFileSync(path, 'old contents');
    const storage = new FileSessionStorage(path);
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => storage.save({ ...session, heartbeat: 1000 + i })),
    );
    assert.deepEqual(readdirSync(dir), ['session.json']);
    const loaded = await storage.load();
    assert.ok(loaded !== undefined && loaded.heartbeat >= 1000 && loaded.heartbeat < 1020);
  });

  it('removes its temporary file when the rename fails', async (t) => {
    const dir = tempDir(t);
    const target = join(dir, 'taken');
    mkdirSync(target);
    writeFileSync(join(target, 'inside'), 'x');
    // Renaming a file over a non-empty directory fails after the temporary file was written.
    await assert.rejects(new FileSessionStorage(target).save(session));
    assert.deepEqual(readdirSync(dir), ['taken']);
  });

  it('loads a missing file as no session', async (t) => {
    assert.equal(await new FileSessionStorage(join(tempDir(t), 'nope.json')).load(), undefined);
  });

  it('loads a corrupt or malformed file as no session', async (t) => {
    const dir = tempDir(t);
    const path = join(dir, 'session.json');
    const storage = new FileSessionStorage(path);
    for (const contents of [
      '{"sessionId": "abc", ',
      '',
      'null',
      '[]',
      '"session"',
      JSON.stringify({ ...session, sessionKey: 'not hex!' }),
      JSON.stringify({ ...session, heartbeat: '180000' }),
      JSON.stringify({ ...session, sessionId: '' }),
      JSON.stringify({ ...session, expireTime: undefined }),
    ]) {
      writeFileSync(path, contents);
      assert.equal(await storage.load(), undefined, contents);
    }
  });
});
