import { z } from 'zod';

/**
 * The live nodes of a cluster. Memory (this node alone) for one machine; Redis keys with a TTL
 * that each node refreshes for a cluster (replacing MPush's ZooKeeper).
 */
export type NodeInfo = z.infer<typeof nodeInfoSchema>;

/**
 * A node's entry, also as read back from a shared store: id and gateway are required (without
 * them no push reaches the node); the rest is informative and reads as '' or 0 when missing.
 */
export const nodeInfoSchema = z.object({
  id: z.string(),
  /** Gateway address: where pushes for this node's devices are sent. */
  gatewayHost: z.string(),
  gatewayPort: z.number(),
  /** Device TCP address. */
  host: z.string().catch(''),
  port: z.number().catch(0),
  /** Device TLS port (tls.enabled; 0: none), on the same host: GET /alloc?tls=1 lists it. */
  tlsPort: z.number().catch(0),
  connections: z.number().catch(0),
  onlineUsers: z.number().catch(0),
  /** Gateway pushes per second over the last refresh (the admin console's push rate). */
  pushRate: z.number().optional().catch(undefined),
});

export interface NodeRegistry {
  /** Publishes (or refreshes) this node. */
  publish(self: NodeInfo): Promise<void>;
  /** The live nodes, this one included. */
  list(): Promise<NodeInfo[]>;
  /** Cached answer: is there a live node whose gateway is host:port? */
  isLive(gatewayHost: string, gatewayPort: number): boolean;
  close(): Promise<void>;
}

/**
 * Nodes of one process: the node itself on one machine. Several nodes form an in-process
 * cluster (tests) by sharing one instance, or better each with its own `peer()` of one
 * instance, so that a node's `close()` removes only that node.
 */
export class MemoryNodeRegistry implements NodeRegistry {
  /** Ids published through this instance: what close() removes. */
  private readonly own = new Set<string>();

  /** @param nodes the node table; registries sharing it see each other (see `peer()`). */
  constructor(private readonly nodes: Map<string, NodeInfo> = new Map()) {}

  /** Another registry on the same node table, for another node of an in-process cluster. */
  peer(): MemoryNodeRegistry {
    return new MemoryNodeRegistry(this.nodes);
  }

  async publish(self: NodeInfo): Promise<void> {
    this.nodes.set(self.id, self);
    this.own.add(self.id);
  }

  async list(): Promise<NodeInfo[]> {
    return [...this.nodes.values()];
  }

  isLive(gatewayHost: string, gatewayPort: number): boolean {
    for (const n of this.nodes.values())
      if (n.gatewayHost === gatewayHost && n.gatewayPort === gatewayPort) return true;
    return false;
  }

  /** Removes a node (it stopped). */
  async remove(id: string): Promise<void> {
    this.nodes.delete(id);
  }

  /** Removes the nodes published through this instance. */
  async close(): Promise<void> {
    for (const id of this.own) this.nodes.delete(id);
    this.own.clear();
  }
}

/**
 * `isLive`, double-checked against the store when the cache says no: a node that started since
 * the last refresh is not taken for dead. A dead node costs one registry read per lookup.
 */
export async function isLiveNow(registry: NodeRegistry, host: string, port: number): Promise<boolean> {
  if (registry.isLive(host, port)) return true;
  await registry.list();
  return registry.isLive(host, port);
}
