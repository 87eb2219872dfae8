import type { PushResult } from '../client/push/types.js';
import type { NodeRegistry } from '../cluster/node-registry.js';
import type { RouteStore } from '../cluster/route-store.js';
import type { Config } from '../config/index.js';
import type { Logger } from '../log.js';

/**
 * What the telnet console may see of its node, and do to it: MpushNode supplies it, so admin/
 * never imports the node (nor api/: its test push is handed in as `push`).
 */
export interface AdminNodeView {
  readonly config: Config;
  readonly log: Logger;
  /** The node's id, known once it listens. */
  id(): string;
  /** When the node started, ms since the epoch (the banner's "since"). */
  startedAt(): number;
  /** This node's device connections (TCP and WebSocket) and online users. */
  counts(): { connections: number; onlineUsers: number };
  /** The cluster's routes (`route <userId>`). */
  readonly routes: RouteStore;
  /** The cluster's live nodes (`zk`). */
  readonly registry: NodeRegistry;
  /** A test push to one user through the node's own push path (the HTTP API's PushSender). */
  push(userId: string, content: string): Promise<PushResult[]>;
  /** Stops the node gracefully (only asked when admin.allowShutdown is set). */
  shutdown(): void;
}
