import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { NodeInfo, NodeRegistry } from '../../src/cluster/node-registry.js';

export interface NodeRegistryUnderTest {
  /** A registry for one more node of the same cluster (same backing store, same prefix). */
  open(): NodeRegistry;
  /** Closes what `open()` made that a test left open, and the backing store. */
  cleanup(): Promise<void>;
}

export function nodeInfo(id: string, over: Partial<NodeInfo> = {}): NodeInfo {
  const n = Number(id.replace(/\D/g, '') || 0);
  return {
    id,
    gatewayHost: '127.0.0.1',
    gatewayPort: 4000 + n,
    host: '0.0.0.0',
    port: 3000 + n,
    tlsPort: 0,
    connections: 0,
    onlineUsers: 0,
    ...over,
  };
}

const byId = (nodes: NodeInfo[]) => [...nodes].sort((a, b) => a.id.localeCompare(b.id));

/**
 * What every NodeRegistry does, memory or Redis. `isLive` is a cache: a node always knows
 * itself at once, and knows the others once it has listed them.
 */
export function nodeRegistryContract(name: string, factory: () => Promise<NodeRegistryUnderTest>): void {
  describe(`NodeRegistry contract: ${name}`, () => {
    let t: NodeRegistryUnderTest;
    beforeEach(async () => {
      t = await factory();
    });
    afterEach(async () => {
      await t.cleanup();
    });

    it('lists a published node, which is live at its gateway address', async () => {
      const a = t.open();
      await a.publish(nodeInfo('n1'));
      assert.deepEqual(await a.list(), [nodeInfo('n1')]);
      assert.equal(a.isLive('127.0.0.1', 4001), true);
      assert.equal(a.isLive('127.0.0.1', 4002), false, 'another port');
      assert.equal(a.isLive('10.9.9.9', 4001), false, 'another host');
    });

    it('publishing again updates the node, not a second entry', async () => {
      const a = t.open();
      await a.publish(nodeInfo('n1'));
      await a.publish(nodeInfo('n1', { connections: 7, onlineUsers: 5 }));
      assert.deepEqual(await a.list(), [nodeInfo('n1', { connections: 7, onlineUsers: 5 })]);
    });

    it('two registries of one cluster see each other', async () => {
      const a = t.open();
      const b = t.open();
      await a.publish(nodeInfo('n1'));
      await b.publish(nodeInfo('n2'));
      assert.deepEqual(byId(await a.list()), [nodeInfo('n1'), nodeInfo('n2')]);
      assert.deepEqual(byId(await b.list()), [nodeInfo('n1'), nodeInfo('n2')]);
      assert.equal(a.isLive('127.0.0.1', 4002), true);
      assert.equal(b.isLive('127.0.0.1', 4001), true);
    });

    it('close() removes the node at once', async () => {
      const a = t.open();
      const b = t.open();
      await a.publish(nodeInfo('n1'));
      await b.publish(nodeInfo('n2'));
      await a.list();
      await b.close();
      assert.deepEqual(await a.list(), [nodeInfo('n1')]);
      assert.equal(a.isLive('127.0.0.1', 4002), false);
      assert.equal(a.isLive('127.0.0.1', 4001), true, 'the closing node removed only itself');
    });

    it('a registry that publishes nothing (a push client) still lists the nodes', async () => {
      const node = t.open();
      const reader = t.open();
      await node.publish(nodeInfo('n3'));
      assert.deepEqual(await reader.list(), [nodeInfo('n3')]);
      assert.equal(reader.isLive('127.0.0.1', 4003), true);
      await reader.close();
      assert.deepEqual(await node.list(), [nodeInfo('n3')], 'closing a reader removes nobody');
    });

    it('lists nothing when no node is published', async () => {
      const a = t.open();
      assert.deepEqual(await a.list(), []);
      assert.equal(a.isLive('127.0.0.1', 4001), false);
    });
  });
}
