import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import type { ClientTlsOptions } from '../client/tls.js';
import type { NodeRegistry } from '../cluster/node-registry.js';
import type { RouteStore } from '../cluster/route-store.js';
import type { Config } from '../config/index.js';
import type { GatewayServer } from '../gateway/gateway-server.js';
import type { Logger } from '../log.js';
import type { Inbox, InboxStats } from '../push/inbox.js';
import type { BroadcastCounts } from '../push/outcome.js';
import type { PushCenter, PushStats } from '../push/push-center.js';
import type { ConnectionStats } from '../server/connection-server.js';
import type { HttpProxy } from '../server/handlers/http-proxy.js';
import type { LatencySummary } from '../util/latency-histogram.js';
import type { DisconnectRecord } from './console-disconnects.js';
import type { WebhookStats } from './webhooks.js';

/** A node's counts, as GET /api/stats serves them. */
export interface NodeStats {
  node: string;
  connections: number;
  onlineUsers: number;
  boundConnections: number;
  pendingAcks: number;
  connection: ConnectionStats;
  /** Single-user push outcomes and broadcast tasks started on this node. */
  push: PushStats;
  /** Deliveries of every broadcast this node ran. */
  broadcast: BroadcastCounts;
  gateway: GatewayServer['stats'];
  gatewayClients: number;
  inbox: InboxStats;
  /** Null when `webhooks.urls` is empty. */
  webhooks: WebhookStats | null;
  /** The HTTP proxy's answers by status class and requests in flight; null when it is off. */
  httpProxy: (HttpProxy['stats'] & { inFlight: number }) | null;
}

/** Ack latency of this node's pushes (from the metrics' histogram), as the admin console shows it. */
export type AckLatency = LatencySummary;

/** Where a route's connection is: its node (from the connId), and since when, when it is this node's. */
export interface RouteOwner {
  node: string;
  /** Ms since epoch the connection opened; null when it is another node's (or gone). */
  connectedAt: number | null;
}

/**
 * What the HTTP port may see of its node: enough to serve the API and hand WebSockets over,
 * and nothing of how the node is built (so api/ never imports node.ts). MpushNode supplies it.
 */
export interface HttpNodeView {
  readonly config: Config;
  readonly log: Logger;
  /** The node's id, known once it listens: read it per request. */
  id(): string;
  /** The RSA public key MPush SDKs are configured with (base64 X.509). */
  readonly publicKeyBase64: string;
  /** The cluster's routes: GET /api/users, and where the API's pushes go. */
  readonly routes: RouteStore;
  /** The cluster's live nodes: which routes are live, and where a broadcast goes. */
  readonly registry: NodeRegistry;
  /** The durable inbox: what `store: true` pushes missed, and message receipts. */
  readonly inbox: Inbox;
  /** This node's push center: the API's pushes for users of this node go straight to it. */
  readonly push: PushCenter;
  /** This node's gateway: where this node's routes point (known once it listens). */
  gatewayAddress(): { host: string; port: number };
  /** How the API's pushes reach TLS gateways (gateway.tls); undefined: plain TCP. */
  readonly gatewayTls?: ClientTlsOptions;
  /** The counts of GET /api/stats (and of /health). */
  stats(): NodeStats;
  /** Who holds the connection a route names (`Route.connId`): GET /api/users/:userId. */
  routeOwner(connId: string): RouteOwner;
  /** This node's latest disconnects, newest first (the admin console). */
  recentDisconnects(): DisconnectRecord[];
  /** Ack latency of this node's pushes; absent (or undefined) when not measured: the console shows "—". */
  ackLatency?(): AckLatency | undefined;
  /** Takes a WebSocket the HTTP port upgraded: it is a device connection from here on. */
  acceptWebSocket(ws: WebSocket, req: IncomingMessage): void;
}
