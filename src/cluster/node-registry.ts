/**
 * The live nodes of a cluster. Memory (this node alone) for one machine; Redis keys with a TTL
 * that each node refreshes for a cluster (replacing MPush's ZooKeeper).
 */
export interface NodeInfo {
  id: string;
  /** Gateway address: where pushes for this node's devices are sent. */
  gatewayHost: string;
  gatewayPort: number;
  /** Device TCP address. */
  host: string;
  port: number;
  connections: number;
  onlineUsers: number;
}

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
 * Nodes of one process: the node itself on one machine; several nodes sharing one instance form
 * an in-process cluster (tests).
 */
export class MemoryNodeRegistry implements NodeRegistry {
  private readonly nodes = new Map<string, NodeInfo>();

  async publish(self: NodeInfo): Promise<void> {
    this.nodes.set(self.id, self);
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

  async close(): Promise<void> {
    this.nodes.clear();
  }
}
