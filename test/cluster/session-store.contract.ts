import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { SessionStore, StoredSession } from '../../src/cluster/session-store.js';

export interface SessionStoreUnderTest {
  store: SessionStore;
  /** Another handle on the same sessions, as a second node would have. */
  peer?: SessionStore;
  /** Lets `ms` pass for the store: a fake clock's advance, or a real wait (with a margin). */
  elapse(ms: number): Promise<void>;
  cleanup(): Promise<void>;
}

export function session(deviceId: string, over: Partial<StoredSession> = {}): StoredSession {
  return {
    deviceId,
    osName: 'android',
    osVersion: '14',
    clientVersion: '1.0.0',
    sessionKey: '0f'.repeat(16),
    iv: 'a1'.repeat(16),
    expireTime: 1_800_000_000_000,
    ...over,
  };
}

/** What every SessionStore does, memory or Redis. TTLs are 200 ms: `elapse` makes them pass. */
export function sessionStoreContract(name: string, factory: () => Promise<SessionStoreUnderTest>): void {
  describe(`SessionStore contract: ${name}`, () => {
    let t: SessionStoreUnderTest;
    let store: SessionStore;
    let peer: SessionStore;
    beforeEach(async () => {
      t = await factory();
      store = t.store;
      peer = t.peer ?? t.store;
    });
    afterEach(async () => {
      await t.cleanup();
    });

    it('gets what was set, on any node', async () => {
      await store.set('s1', session('d1'), 60_000);
      assert.deepEqual(await store.get('s1'), session('d1'));
      assert.deepEqual(await peer.get('s1'), session('d1'));
    });

    it('gets nothing for an unknown session', async () => {
      assert.equal(await store.get('nope'), undefined);
    });

    it('a second set replaces the session', async () => {
      await store.set('s1', session('d1'), 60_000);
      await peer.set('s1', session('d2', { iv: 'ff'.repeat(16) }), 60_000);
      assert.deepEqual(await store.get('s1'), session('d2', { iv: 'ff'.repeat(16) }));
    });

    it('delete removes the session, and deleting twice is fine', async () => {
      await store.set('s1', session('d1'), 60_000);
      await store.set('s2', session('d2'), 60_000);
      await peer.delete('s1');
      await peer.delete('s1');
      assert.equal(await store.get('s1'), undefined);
      assert.deepEqual(await store.get('s2'), session('d2'), 'others stay');
    });

    it('forgets a session once its TTL has passed', async () => {
      await store.set('short', session('d1'), 200);
      await store.set('long', session('d2'), 60_000);
      await t.elapse(200);
      assert.equal(await store.get('short'), undefined);
      assert.equal(await peer.get('short'), undefined);
      assert.deepEqual(await store.get('long'), session('d2'));
    });

    it('setting again restarts the TTL', async () => {
      await store.set('s1', session('d1'), 200);
      await store.set('s1', session('d1'), 60_000);
      await t.elapse(200);
      assert.deepEqual(await store.get('s1'), session('d1'));
    });

    it('a TTL of zero or less keeps nothing', async () => {
      await store.set('s1', session('d1'), 60_000);
      await store.set('s1', session('d1'), 0);
      await store.set('s2', session('d2'), -5);
      assert.equal(await store.get('s1'), undefined);
      assert.equal(await store.get('s2'), undefined);
    });
  });
}
