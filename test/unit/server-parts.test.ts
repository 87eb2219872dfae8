import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { MemorySessionStore, type StoredSession } from '../../src/cluster/session-store.js';
import type { Connection } from '../../src/connection/index.js';
import { mintBindToken, verifyBindToken } from '../../src/crypto/bind-token.js';
import { LocalRouter } from '../../src/server/local-router.js';

describe('LocalRouter counts', () => {
  const conn = (userId: string, clientType: number, name = `${userId}/${clientType}`) =>
    ({ userId, clientType, name }) as unknown as Connection;
  const counts = (r: LocalRouter) => [r.onlineUsers, r.boundConnections];

  it('binds, returns the displaced connection, and keeps counts through rebind and stale unbinds', () => {
    const r = new LocalRouter();
    const phone1 = conn('u1', 1);
    const phone2 = conn('u1', 1);
    const pc = conn('u1', 2);
    const other = conn('u2', 1);

    assert.equal(r.bind(phone1), undefined);
    assert.deepEqual(counts(r), [1, 1]);
    assert.equal(r.bind(phone1), undefined, 'binding the bound connection again displaces nothing');
    assert.deepEqual(counts(r), [1, 1]);

    assert.equal(r.bind(phone2), phone1, 'same user, same type: the first is displaced');
    assert.deepEqual(counts(r), [1, 1]);
    assert.equal(r.get('u1', 1), phone2);

    assert.equal(r.bind(pc), undefined, 'another client type coexists');
    assert.equal(r.bind(other), undefined);
    assert.deepEqual(counts(r), [2, 3]);

    // The displaced connection closing later must not remove its successor.
    assert.equal(r.unbind(phone1), false);
    assert.deepEqual(counts(r), [2, 3]);
    assert.equal(r.get('u1', 1), phone2);

    assert.equal(r.unbind(phone2), true);
    assert.equal(r.unbind(phone2), false, 'a second unbind is a no-op');
    assert.deepEqual(counts(r), [2, 2]);
    assert.equal(r.get('u1', 1), undefined);
    assert.deepEqual(r.connectionsOf('u1'), [pc]);

    assert.equal(r.unbind(pc), true);
    assert.deepEqual(counts(r), [1, 1], 'a user with no connection left is offline');
    assert.deepEqual(r.connectionsOf('u1'), []);
    assert.equal(r.unbind(other), true);
    assert.deepEqual(counts(r), [0, 0]);
    assert.deepEqual([...r.all()], []);
  });

  it('unbinds by an explicit user id once the connection forgot its own (kick, close)', () => {
    const r = new LocalRouter();
    const c = conn('u1', 3);
    r.bind(c);
    (c as { userId: string }).userId = '';
    assert.equal(r.unbind(c), false, 'nothing is bound under the empty user');
    assert.equal(r.unbind(c, 'u1'), true);
    assert.deepEqual(counts(r), [0, 0]);
  });

  it('moves a connection to another user the way the bind handler does (unbind, then bind)', () => {
    const r = new LocalRouter();
    const c = conn('u1', 1);
    r.bind(c);
    r.unbind(c);
    (c as { userId: string }).userId = 'u2';
    assert.equal(r.bind(c), undefined);
    assert.deepEqual(counts(r), [1, 1]);
    assert.equal(r.get('u1', 1), undefined);
    assert.equal(r.get('u2', 1), c);
  });

  it('lists every bound connection once', () => {
    const r = new LocalRouter();
    const all = [conn('a', 1), conn('a', 2), conn('a', 3), conn('b', 1), conn('c', -1)];
    for (const c of all) r.bind(c);
    r.bind(conn('a', 2)); // displaces all[1]
    const listed = [...r.all()];
    assert.equal(listed.length, 5);
    assert.ok(!listed.includes(all[1]!));
    assert.deepEqual(counts(r), [3, 5]);
  });
});

describe('bind tokens', () => {
  const secret = 'bind-secret';
  const now = 1_700_000_000;

  it('verifies a token it minted, with its expiry', () => {
    const token = mintBindToken(secret, 'alice', 60, now);
    assert.match(token, /^v1\.\d+\.[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(verifyBindToken(secret, 'alice', token, now), { ok: true, expiresAt: now + 60 });
    assert.deepEqual(verifyBindToken(secret, 'alice', token, now + 59), { ok: true, expiresAt: now + 60 });
  });

  it('refuses an expired token, from its expiry second on', () => {
    const token = mintBindToken(secret, 'alice', 60, now);
    assert.deepEqual(verifyBindToken(secret, 'alice', token, now + 60), { ok: false, reason: 'expired' });
    assert.deepEqual(verifyBindToken(secret, 'alice', token, now + 86_400), {
      ok: false,
      reason: 'expired',
    });
  });

  it('refuses a token signed with another secret', () => {
    const token = mintBindToken('another-secret', 'alice', 60, now);
    assert.deepEqual(verifyBindToken(secret, 'alice', token, now), { ok: false, reason: 'bad-signature' });
  });

  it('refuses a token minted for another user', () => {
    const token = mintBindToken(secret, 'mallory', 60, now);
    assert.deepEqual(verifyBindToken(secret, 'alice', token, now), { ok: false, reason: 'bad-signature' });
  });

  it('refuses a token whose expiry was changed, even to one in the past', () => {
    const token = mintBindToken(secret, 'alice', 60, now);
    const [v, expiry, sig] = token.split('.');
    for (const e of [Number(expiry) + 3_600, Number(expiry) - 1, now - 10]) {
      assert.deepEqual(verifyBindToken(secret, 'alice', `${v}.${e}.${sig}`, now), {
        ok: false,
        reason: 'bad-signature',
      });
    }
  });

  it('refuses a token whose signature was changed', () => {
    const token = mintBindToken(secret, 'alice', 60, now);
    const last = token.at(-1) === 'A' ? 'B' : 'A';
    assert.deepEqual(verifyBindToken(secret, 'alice', token.slice(0, -1) + last, now), {
      ok: false,
      reason: 'bad-signature',
    });
  });

  it('refuses malformed tokens', () => {
    const good = mintBindToken(secret, 'alice', 60, now);
    const sig = good.split('.')[2]!;
    const hmac = createHmac('sha256', secret)
      .update(`v1.alice.${now + 60}`)
      .digest('base64');
    for (const bad of [
      '',
      'v1',
      'v1..',
      `v1.${now + 60}`,
      `v2.${now + 60}.${sig}`,
      `v1.-${now + 60}.${sig}`,
      `v1.${now + 60}.${sig}=`,
      `v1.${now + 60}.${sig.slice(1)}`,
      `v1.${now + 60}.${sig}.extra`,
      ` ${good}`,
      `${good}\n`,
      `v1.${now + 60}.${hmac}`, // standard base64 (with padding), not base64url
      `v1.1234567890123.${sig}`, // more than 12 digits
    ]) {
      assert.deepEqual(verifyBindToken(secret, 'alice', bad, now), { ok: false, reason: 'malformed' }, bad);
    }
  });
});

describe('MemorySessionStore TTL on a fake clock', () => {
  const session = (deviceId: string): StoredSession => ({
    deviceId,
    osName: 'android',
    osVersion: '14',
    clientVersion: '1.0',
    sessionKey: '00'.repeat(16),
    iv: '11'.repeat(16),
    expireTime: 0,
  });

  it('finds a session until its TTL passes, then forgets it', async () => {
    const clock = { now: 50_000 };
    const store = new MemorySessionStore(60_000, () => clock.now);
    try {
      await store.set('s1', session('d1'), 1_000);
      assert.equal((await store.get('s1'))?.deviceId, 'd1');
      clock.now += 999;
      assert.equal((await store.get('s1'))?.deviceId, 'd1');
      clock.now += 1;
      assert.equal(await store.get('s1'), undefined, 'gone at exactly its TTL');
      assert.equal(store.size, 0, 'an expired entry read is dropped');
      assert.equal(await store.get('unknown'), undefined);
    } finally {
      await store.close();
    }
  });

  it('restarts the TTL when a session is stored again, and deletes on request', async () => {
    const clock = { now: 0 };
    const store = new MemorySessionStore(60_000, () => clock.now);
    try {
      await store.set('s1', session('d1'), 1_000);
      clock.now = 900;
      await store.set('s1', session('d1'), 1_000);
      clock.now = 1_500;
      assert.equal((await store.get('s1'))?.deviceId, 'd1');
      await store.delete('s1');
      assert.equal(await store.get('s1'), undefined);
      await store.delete('s1'); // deleting twice is fine
    } finally {
      await store.close();
    }
  });

  it('sweeps expired sessions that are never read again', async () => {
    const clock = { now: 0 };
    const store = new MemorySessionStore(60_000, () => clock.now);
    try {
      await store.set('short', session('d1'), 100);
      await store.set('long', session('d2'), 10_000);
      clock.now = 100;
      store.sweep();
      assert.equal(store.size, 1);
      assert.equal((await store.get('long'))?.deviceId, 'd2');
      clock.now = 10_000;
      store.sweep();
      assert.equal(store.size, 0);
    } finally {
      await store.close();
    }
  });

  it('is empty after close', async () => {
    const store = new MemorySessionStore(60_000, () => 0);
    await store.set('s1', session('d1'), 1_000);
    await store.close();
    assert.equal(store.size, 0);
    assert.equal(await store.get('s1'), undefined);
  });
});
