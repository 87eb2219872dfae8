import { AdminServer } from './admin/admin-server.js';
import { RecentDisconnects } from './api/console-disconnects.js';
import { HttpServer } from './api/http-server.js';
import { NodeMetrics } from './api/metrics.js';
import type { HttpNodeView, NodeStats, RouteOwner } from './api/node-view.js';
import { Webhooks } from './api/webhooks.js';
import { gatewayClientTls, loadServerTls, type ServerTls } from './certificates.js';
import { type BusMessage, kickTopic, MemoryClusterBus } from './cluster/cluster-bus.js';
import { MemoryInboxStore } from './cluster/inbox-store.js';
import { mpushKickChannel, mpushKickMessage, mpushKickSchema } from './cluster/mpush-kick.js';
import type { NodeInfo } from './cluster/node-registry.js';
import { isLiveNow, MemoryNodeRegistry } from './cluster/node-registry.js';
import { memoryStores, type NodeStores, redisStores } from './cluster/node-stores.js';
import { MemoryRouteStore } from './cluster/route-store.js';
import { MemorySessionStore } from './cluster/session-store.js';
import { mpushServices, ZookeeperRegistrar } from './cluster/zookeeper-registrar.js';
import { type Config, ConfigError } from './config/index.js';
import type { Connection } from './connection/index.js';
import { GatewayServer } from './gateway/gateway-server.js';
import { loadServerKeys, type ServerKeys } from './keys.js';
import { createLogger, type Logger } from './log.js';
import { Inbox } from './push/inbox.js';
import { PushCenter } from './push/push-center.js';
import { ConnectionServer, type ConnectionStats } from './server/connection-server.js';
import { Deadline, DeadlineQueue } from './util/deadline-queue.js';
import { intern } from './util/intern.js';

export type { NodeStores };

export interface MpushNodeOptions {
  config: Config;
  log?: Logger;
  stores?: Partial<NodeStores>;
  clock?: () => number;
  /** What the console's `shutdown` does (admin.allowShutdown); default: stop this node. */
  onShutdown?: () => void;
}

/** Where a started node listens; 0 for a port that is off. */
export interface NodeAddresses {
  tcpPort: number;
  httpPort: number;
  gatewayPort: number;
  /** Devices over TLS (tls.enabled). */
  tlsPort: number;
  /** HTTPS and WSS (https.enabled). */
  httpsPort: number;
  /** The telnet console's port; 0 when admin.enabled is false. */
  adminPort: number;
}

/**
 * One mpush-ts node: connection server, push center, gateway and HTTP port, wired to its
 * stores. The all-in-one default uses in-memory stores; a cluster passes Redis ones.
 */
/** A bind address as a client can dial it: a wildcard bind (every address) is reached on loopback. */
function dialable(host: string): string {
  return host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
}

/** How late past `cluster.bindWaitMs` a bind waiting for its route write may be answered. */
const BIND_WAIT_TICK_MS = 50;

/**
 * A BIND's OK waiting for its route write (MpushNode.recordBind): answered by the write, or by the
 * deadline (`cluster.bindWaitMs`), whichever comes first; the other finds it answered.
 */
class BindWait extends Deadline {
  constructor(
    private resolve: (() => void) | null,
    private readonly stats: ConnectionStats,
  ) {
    super();
  }

  /** Sends the OK on its way; `routed`: the route was written first (else counted as unrouted). */
  answer(routed: boolean): void {
    const resolve = this.resolve;
    if (resolve === null) return;
    this.resolve = null;
    if (!routed) this.stats.bindsUnrouted++;
    resolve();
  }

  expire(): void {
    this.answer(false);
  }
}

export class MpushNode {
  readonly config: Config;
  readonly log: Logger;
  /** The `cluster` component's: stores, registry, kicks between nodes. */
  private readonly clusterLog: Logger;
  readonly keys: ServerKeys;
  readonly stores: NodeStores;
  readonly connections: ConnectionServer;
  readonly push: PushCenter;
  readonly inbox: Inbox;
  /** Webhooks out; undefined when `webhooks.urls` is empty. */
  readonly webhooks: Webhooks | undefined;
  readonly gateway: GatewayServer;
  /** What the HTTP port sees of this node. */
  readonly httpView: HttpNodeView;
  readonly http: HttpServer;
  /** GET /metrics; `ackLatencySummary()` for the console. */
  readonly metrics: NodeMetrics;
  /** The admin console's recent disconnects (console.recentDisconnects). */
  readonly disconnects: RecentDisconnects;
  /** The gateway's push count and time at the last registry publish: the push rate's base. */
  private pushSample = { at: 0, pushes: 0, rate: 0 };
  /** MPush's telnet console; undefined when admin.enabled is false. */
  readonly admin: AdminServer | undefined;
  addresses: NodeAddresses = {
    tcpPort: 0,
    httpPort: 0,
    gatewayPort: 0,
    adminPort: 0,
    tlsPort: 0,
    httpsPort: 0,
  };
  /** The certificate files of the TLS ports, as last (re)loaded; undefined when none is on. */
  tls: ServerTls | undefined;
  private startedAt = Date.now();
  /** Set at start: `<gateway host>:<gateway port>`, unless node.id names it. */
  id = '';
  private readonly pendingUnregisters = new Map<
    string,
    { userId: string; clientType: number; connId: string }
  >();
  /** BINDs whose OK waits for the route write (recordBind): one interval for all, not a timer each. */
  private readonly bindWaits = new DeadlineQueue(BIND_WAIT_TICK_MS);
  private publisher: NodeJS.Timeout | undefined;
  /** MPush's ZooKeeper layout, when cluster.zookeeper is set: for MPush's own PushClient. */
  zookeeper: ZookeeperRegistrar | undefined;

  constructor(opts: MpushNodeOptions) {
    const config = opts.config;
    this.config = config;
    this.log = opts.log ?? createLogger(config.log.level);
    this.clusterLog = this.log.child({ component: 'cluster' });
    const pushLog = this.log.child({ component: 'push' });
    const apiLog = this.log.child({ component: 'api' });
    this.keys = loadServerKeys(config);
    this.tls = loadServerTls(config);
    if (config.cluster.zookeeper && !config.cluster.redis) {
      // MPush's PushClient reads routes from Redis and only the gateways from ZooKeeper.
      throw new ConfigError('cluster.zookeeper needs cluster.redis: MPush push clients find routes in Redis');
    }
    this.stores = opts.stores
      ? {
          sessions: opts.stores.sessions ?? new MemorySessionStore(),
          routes: opts.stores.routes ?? new MemoryRouteStore(),
          registry: opts.stores.registry ?? new MemoryNodeRegistry(),
          bus: opts.stores.bus ?? new MemoryClusterBus(),
          inbox: opts.stores.inbox ?? new MemoryInboxStore(config.inbox.memoryMaxUsers),
          ...(opts.stores.onReconnect ? { onReconnect: opts.stores.onReconnect } : {}),
          ...(opts.stores.redisCommands ? { redisCommands: opts.stores.redisCommands } : {}),
          kind: opts.stores.kind ?? 'custom stores',
        }
      : config.cluster.redis
        ? redisStores(config.cluster, (err) => this.clusterLog.warn('redis', { err: err.message }))
        : memoryStores(config.session.maxEntries, config.inbox.memoryMaxUsers);
    this.connections = new ConnectionServer({
      config,
      privateKey: this.keys.privateKey,
      sessions: this.stores.sessions,
      log: this.log.child({ component: 'server' }),
      ...(opts.clock ? { clock: opts.clock } : {}),
    });
    this.push = new PushCenter({
      config,
      log: pushLog,
      server: this.connections.context,
      routes: this.stores.routes,
      nodeId: '',
      isRouteLive: (r) => isLiveNow(this.stores.registry, r.host, r.port),
    });
    this.webhooks = Webhooks.fromConfig({ config, log: apiLog, nodeId: () => this.id });
    this.inbox = new Inbox({
      config,
      log: pushLog,
      store: this.stores.inbox,
      push: this.push,
      events: this.webhooks,
    });
    this.gateway = new GatewayServer({
      config,
      log: this.log.child({ component: 'gateway' }),
      server: this.connections.context,
      push: this.push,
      inbox: this.inbox,
      routes: this.stores.routes,
    });
    this.metrics = new NodeMetrics({
      stats: () => this.stats(),
      latency: this.push.meter,
      redis: this.stores.redisCommands,
    });
    this.disconnects = new RecentDisconnects(config.console.recentDisconnects);
    this.disconnects.watch(this.connections.events);
    this.httpView = {
      config,
      log: apiLog,
      id: () => this.id,
      publicKeyBase64: this.keys.publicKeyBase64,
      routes: this.stores.routes,
      registry: this.stores.registry,
      inbox: this.inbox,
      push: this.push,
      gatewayAddress: () => ({ host: this.gatewayHost, port: this.addresses.gatewayPort }),
      ...(config.gateway.tls && this.tls ? { gatewayTls: gatewayClientTls(this.tls) } : {}),
      stats: () => this.stats(),
      routeOwner: (connId) => this.routeOwner(connId),
      recentDisconnects: () => this.disconnects.list(),
      ackLatency: () => {
        const s = this.metrics.ackLatencySummary();
        return s.count > 0 ? s : undefined;
      },
      acceptWebSocket: (ws, req) => void this.connections.acceptWebSocket(ws, req),
    };
    this.http = new HttpServer({ node: this.httpView, metrics: this.metrics });
    this.admin = config.admin.enabled
      ? new AdminServer({
          node: {
            config,
            log: this.log.child({ component: 'admin' }),
            id: () => this.id,
            startedAt: () => this.startedAt,
            counts: () => ({
              connections: this.connections.connections.size,
              onlineUsers: this.connections.router.onlineUsers,
            }),
            routes: this.stores.routes,
            registry: this.stores.registry,
            push: (userId, content) => this.http.push({ userId, content }),
            shutdown: opts.onShutdown ?? (() => void this.stop()),
          },
        })
      : undefined;
    // The route is written before the bind's OK (handleBind says why), the rest after it.
    this.connections.context.bindRecorder = (conn) => this.recordBind(conn);
    this.connections.events.on('online', (conn) => {
      this.inbox.replay(conn);
      this.webhooks?.userOnline(conn);
    });
    this.connections.events.on('offline', (conn, userId, reason) => {
      this.routeOffline(conn, userId);
      this.webhooks?.userOffline(conn, userId, reason);
    });
  }

  /** The host other nodes and push clients reach this node's gateway at. */
  get gatewayHost(): string {
    const { advertiseHost, host } = this.config.gateway;
    return advertiseHost || dialable(host);
  }

  /**
   * The host devices reach this node's TCP port at (GET /alloc lists it, from the registry):
   * node.publicHost, else the gateway's advertised host, else server.host (127.0.0.1 when bound
   * to every address, which no client can dial).
   */
  get deviceHost(): string {
    return (
      this.config.node.publicHost || this.config.gateway.advertiseHost || dialable(this.config.server.host)
    );
  }

  /**
   * The TCP port devices reach this node at: node.publicPort, else the bound port; 0 (GET /alloc
   * does not list the node) when the plain port is off, since MPush's SDKs speak no TLS.
   */
  get devicePort(): number {
    if (!this.config.server.enabled) return 0;
    return this.config.node.publicPort || this.addresses.tcpPort;
  }

  /**
   * `<nodeId>:<connection id>@<opened at, epoch ms in base 36>`: unique across the cluster, and it
   * tells another node which of two claims on a user is the later (see resync).
   */
  private connId(conn: Connection): string {
    // Flat: the template's result is cons strings over numbers' (about 100 bytes), kept by every
    // route of the in-memory store; flat, about 48.
    return intern(`${this.id}:${conn.id}@${conn.createdAt.toString(36)}`);
  }

  /** The node a route was made by (what precedes the connId's last `:`). */
  static nodeOf(connId: string): string {
    return connId.slice(0, connId.lastIndexOf(':'));
  }

  /** When a route's connection opened, epoch ms; undefined for a connId without it (MPush's, older nodes'). */
  static openedAt(connId: string): number | undefined {
    const at = connId.lastIndexOf('@');
    if (at < 0 || at < connId.lastIndexOf(':')) return undefined;
    const ms = Number.parseInt(connId.slice(at + 1), 36);
    return Number.isFinite(ms) ? ms : undefined;
  }

  /**
   * What a BIND's OK waits for: the route write, at most `cluster.bindWaitMs`. Undefined when there
   * is nothing to wait for.
   */
  private recordBind(conn: Connection): Promise<void> | undefined {
    const written = this.routeOnline(conn);
    if (this.stores.routes.writesAtOnce) return undefined;
    const waitMs = this.config.cluster.bindWaitMs;
    const stats = this.connections.stats;
    if (waitMs === 0) {
      void written.then((ok) => {
        if (!ok) stats.bindsUnrouted++;
      });
      return undefined;
    }
    return new Promise<void>((resolve) => {
      const wait = new BindWait(resolve, stats);
      this.bindWaits.add(wait, this.bindWaits.clock() + waitMs, waitMs);
      void written.then((ok) => {
        this.bindWaits.remove(wait);
        wait.answer(ok);
      });
    });
  }

  /**
   * Writes `conn`'s route (and online-set entry); settles once the route is written (true) or the
   * write has failed (false). The kick of a displaced device on another node follows, not awaited.
   */
  private routeOnline(conn: Connection): Promise<boolean> {
    const userId = conn.userId;
    const clientType = conn.clientType;
    this.stores.routes.markOnline(this.id, userId).catch(() => {});
    const registered = this.stores.routes.register(userId, clientType, {
      host: this.gatewayHost,
      port: this.addresses.gatewayPort,
      deviceId: conn.deviceId,
      osName: conn.osName,
      clientVersion: conn.clientVersion,
      connId: this.connId(conn),
    });
    registered
      .then(async (previous) => {
        // The same user's same-type device on another node: kick it there (mpush-wire §8).
        if (!previous) return;
        const owner = MpushNode.nodeOf(previous.connId);
        if (owner === this.id) return;
        if (!(await isLiveNow(this.stores.registry, previous.host, previous.port))) {
          // Not one of ours: in a cluster shared with MPush-Java nodes (cluster.zookeeper), tell
          // that node as MPush does. Elsewhere, a route to a dead node needs no kick.
          if (!this.config.cluster.zookeeper) return;
          const kick = { userId, clientType, connId: previous.connId, deviceId: previous.deviceId };
          return this.stores.bus.publishForeign(
            mpushKickChannel(previous.host, previous.port),
            mpushKickMessage({ ...kick, targetServer: previous.host, targetPort: previous.port }),
          );
        }
        return this.stores.bus.publish(kickTopic(owner), {
          userId,
          clientType,
          connId: previous.connId,
          deviceId: previous.deviceId,
        });
      })
      .catch((err: Error) => this.clusterLog.warn('route register failed', { userId, err: err.message }));
    return registered.then(
      () => true,
      () => false,
    );
  }

  /** MPush's kick from an MPush-Java node (or any node speaking it) for one of ours. */
  private onMPushKick(m: BusMessage): void {
    const k = mpushKickSchema.safeParse(m);
    if (!k.success) return this.clusterLog.debug('unreadable MPush kick', { err: k.error.message });
    if (k.data.targetServer !== this.gatewayHost || k.data.targetPort !== this.addresses.gatewayPort) return;
    this.onKick(k.data);
  }

  /** A kick from another node for one of ours. */
  private onKick(m: BusMessage): void {
    const { userId, clientType, connId } = m as { userId: string; clientType: number; connId: string };
    const conn = this.connections.router.get(userId, clientType);
    if (conn && this.connId(conn) === connId) this.connections.context.unbindAndKick(conn);
  }

  private routeOffline(conn: Connection, userId: string): void {
    const clientType = conn.clientType;
    const connId = this.connId(conn);
    if (this.connections.router.connectionsOf(userId).length === 0) {
      this.stores.routes.markOffline(this.id, userId).catch(() => {});
    }
    this.stores.routes.unregister(userId, clientType, connId).catch((err: Error) => {
      // Kept and retried when the store is back: a user who left during an outage must not stay online.
      if (this.pendingUnregisters.size < 1_000_000)
        this.pendingUnregisters.set(connId, { userId, clientType, connId });
      this.clusterLog.warn('route unregister failed; will retry', { userId, err: err.message });
    });
  }

  /** The shared store came back: re-register what this node holds, replay failed unregisters. */
  private async resync(): Promise<void> {
    const pending = [...this.pendingUnregisters.values()];
    this.pendingUnregisters.clear();
    for (const p of pending) {
      await this.stores.routes.unregister(p.userId, p.clientType, p.connId).catch(() => {
        this.pendingUnregisters.set(p.connId, p);
      });
    }
    let n = 0;
    for (const conn of [...this.connections.router.all()]) {
      // Another node's route for a user bound here is either newer (the user bound there while
      // this node was cut off, and the kick sent to us was lost) or older (a connection that closed
      // while Redis was down, its node's unregister not replayed yet). The connection opened later
      // keeps the user: ours is dropped, or takes the route back (kicking the other, if still there).
      // Without an opening time in the connId (MPush's), the route is taken as the newer.
      const current = (await this.stores.routes.lookup(conn.userId).catch(() => undefined))?.get(
        conn.clientType,
      );
      const theirs =
        current && current.connId !== this.connId(conn) && MpushNode.nodeOf(current.connId) !== this.id;
      const theirsOpened = theirs ? MpushNode.openedAt(current.connId) : undefined;
      if (theirs && (theirsOpened === undefined || theirsOpened >= conn.createdAt)) {
        this.connections.context.unbindAndKick(conn);
      } else {
        void this.routeOnline(conn);
      }
      if (++n % 1000 === 0) await new Promise((r) => setImmediate(r)); // let I/O in between
    }
    await this.stores.registry.publish(this.info());
    this.clusterLog.info('re-published routes after reconnect', { routes: n, unregistered: pending.length });
  }

  /** This node's counts (GET /api/stats). */
  stats(): NodeStats {
    const c = this.connections;
    const proxy = c.context.httpProxy;
    return {
      node: this.id,
      connections: c.connections.size,
      onlineUsers: c.router.onlineUsers,
      boundConnections: c.router.boundConnections,
      pendingAcks: this.push.acks.pending,
      connection: c.stats,
      push: this.push.meter.stats,
      broadcast: this.push.broadcastTotals(),
      gateway: this.gateway.stats,
      gatewayClients: this.gateway.clients,
      inbox: this.inbox.stats,
      webhooks: this.webhooks?.stats ?? null,
      httpProxy: proxy ? { ...proxy.stats, inFlight: proxy.inFlight } : null,
    };
  }

  /** The node of a route's connId, and when the connection opened if it is one of ours. */
  private routeOwner(connId: string): RouteOwner {
    const node = MpushNode.nodeOf(connId);
    const conn =
      node === this.id
        ? this.connections.connections.get(Number.parseInt(connId.slice(node.length + 1), 10))
        : undefined;
    return { node, connectedAt: conn ? conn.createdAt : null };
  }

  /** Gateway pushes per second since the previous call (the registry refresh), kept for 1 s at least. */
  private pushRate(): number {
    const now = Date.now();
    const pushes = this.push.unicasts;
    const s = this.pushSample;
    if (now - s.at >= 1000) {
      s.rate = s.at === 0 ? 0 : Math.round(((pushes - s.pushes) * 10_000) / (now - s.at)) / 10;
      s.at = now;
      s.pushes = pushes;
    }
    return s.rate;
  }

  /** What this node publishes in the registry. */
  info(): NodeInfo {
    return {
      id: this.id,
      gatewayHost: this.gatewayHost,
      gatewayPort: this.addresses.gatewayPort,
      host: this.deviceHost,
      port: this.devicePort,
      tlsPort: this.addresses.tlsPort && (this.config.node.publicTlsPort || this.addresses.tlsPort),
      connections: this.connections.connections.size,
      onlineUsers: this.connections.router.onlineUsers,
      pushRate: this.pushRate(),
    };
  }

  async start(): Promise<NodeAddresses> {
    const { config, tls } = this;
    const gatewayTls =
      config.gateway.tls && tls
        ? { secure: tls.gateway, clientCertificates: tls.clientCertificates }
        : undefined;
    const gatewayPort = await this.gateway.listen(undefined, undefined, gatewayTls);
    const tcpPort = config.server.enabled ? await this.connections.listen() : 0;
    const tlsPort = config.tls.enabled && tls ? await this.connections.listenTls(tls.server) : 0;
    const httpPort = config.http.enabled ? await this.http.listen() : 0;
    const httpsPort = config.https.enabled && tls ? await this.http.listenTls(tls.server) : 0;
    const adminPort = (await this.admin?.listen()) ?? 0;
    this.startedAt = Date.now();
    this.addresses = { tcpPort, httpPort, gatewayPort, adminPort, tlsPort, httpsPort };
    this.id = this.config.node.id || `${this.gatewayHost}:${gatewayPort}`;
    this.push.setNodeId(this.id);
    // As MPush does on start: what a crash of this node left in its online set is gone.
    await this.stores.routes
      .clearOnline(this.id)
      .catch((err: Error) => this.clusterLog.warn('clearOnline failed', { err: err.message }));
    await this.stores.bus.subscribe(kickTopic(this.id), (m) => this.onKick(m));
    if (this.config.cluster.zookeeper) {
      await this.stores.bus.subscribeForeign(mpushKickChannel(this.gatewayHost, gatewayPort), (m) =>
        this.onMPushKick(m),
      );
    }
    await this.stores.registry.publish(this.info());
    this.stores.onReconnect?.(() => {
      this.resync().catch((err: Error) => this.clusterLog.warn('resync failed', { err: err.message }));
    });
    // Keep the registry's view of this node's load current.
    this.publisher = setInterval(() => {
      this.stores.registry.publish(this.info()).catch(() => {});
    }, this.config.cluster.registryRefreshMs);
    this.publisher.unref();
    if (this.config.cluster.zookeeper) {
      try {
        await this.registerInZookeeper();
      } catch (err) {
        await this.stop();
        throw err;
      }
    }
    return this.addresses;
  }

  /**
   * Re-reads tls.cert, tls.key and tls.ca (SIGHUP): new handshakes on every TLS port use them,
   * open connections keep theirs. Files that do not load are a ConfigError, and the old
   * certificates stay in use.
   */
  reloadTls(): ServerTls | undefined {
    const tls = loadServerTls(this.config);
    if (!tls) return undefined;
    this.connections.setSecureContext(tls.server);
    this.http.setSecureContext(tls.server);
    this.gateway.setSecureContext(tls.gateway);
    this.tls = tls;
    return tls;
  }

  private async registerInZookeeper(): Promise<void> {
    const c = this.config.cluster;
    const log = this.clusterLog;
    this.zookeeper = new ZookeeperRegistrar({
      connect: c.zookeeper,
      namespace: c.zookeeperNamespace,
      digest: c.zookeeperDigest,
      sessionTimeoutMs: c.zookeeperSessionTimeoutMs,
      connectTimeoutMs: c.zookeeperSessionTimeoutMs,
      onError: (err) => log.warn('zookeeper registration failed; retrying', { err: err.message }),
      onRegistered: (paths) => log.info('registered in zookeeper', { paths: paths.join(',') }),
    });
    // The host push clients reach the gateway at is the one the Redis routes carry: MPush's
    // PushClient matches the two strings exactly.
    await this.zookeeper.start(
      mpushServices({
        host: this.gatewayHost,
        gatewayPort: this.addresses.gatewayPort,
        deviceHost: this.deviceHost,
        tcpPort: this.devicePort,
        wsPort: this.config.http.wsEnabled ? this.addresses.httpPort : undefined,
      }),
    );
  }

  /** Graceful stop: no new connections, every connection closed, stores closed. */
  async stop(): Promise<void> {
    clearInterval(this.publisher);
    // Out of discovery first, so MPush push clients stop choosing this gateway.
    await this.zookeeper?.close();
    await Promise.all([
      this.connections.close(),
      this.http.close(),
      this.gateway.close(),
      this.admin?.close(),
    ]);
    this.push.close();
    // Their connections are closed: the OKs have no one to go to (nor a bind to count as unrouted),
    // and their deadlines must not hold the process.
    for (const wait of this.bindWaits.drain()) (wait as BindWait).answer(true);
    // After the connections: their offline events are queued by now, and get webhooks.stopTimeoutMs.
    await this.webhooks?.close();
    await Promise.all([
      this.stores.sessions.close(),
      this.stores.routes.close(),
      this.stores.registry.close(),
      this.stores.bus.close(),
      this.stores.inbox.close(),
    ]);
  }
}
