import { randomUUID } from 'node:crypto';
import zookeeper from 'node-zookeeper-client';
import ConnectionManager from 'node-zookeeper-client/lib/ConnectionManager.js';

/**
 * MPush's service folders under `/<namespace>/cluster/`: `gs` gateway servers (what MPush's
 * PushClient connects to), `cs` device connection servers (what MPush's allocator hands out),
 * `ws` WebSocket servers.
 */
export type ZookeeperServiceKind = 'gs' | 'cs' | 'ws';

export interface ZookeeperService {
  kind: ZookeeperServiceKind;
  /** The node's data, as MPush's own server writes it (see `mpushServices`). */
  data: Record<string, unknown>;
}

export interface ZookeeperRegistrarOptions {
  /** ZooKeeper servers, `host:2181[,host:2182]`. */
  connect: string;
  /** Root folder (MPush's Curator namespace, `mpush`). */
  namespace: string;
  /** Digest auth (MPush's `zk.digest`); the nodes get ZooKeeper's creator-all ACL for it. */
  digest: string;
  sessionTimeoutMs: number;
  /** How long `start()` waits for a session before failing. */
  connectTimeoutMs: number;
  /** A registration that failed after a session loss; the registrar keeps retrying. */
  onError?: (err: Error) => void;
  /** This node's services were (re-)registered under a new session. */
  onRegistered?: (paths: string[]) => void;
}

/** The services of one mpush-ts node, in the data layout MPush 0.8.1's servers write. */
export function mpushServices(a: {
  /** Where push clients and other nodes reach the gateway: the host the Redis routes carry. */
  host: string;
  gatewayPort: number;
  /** Where devices reach this node (node.publicHost); default `host`. */
  deviceHost?: string | undefined;
  tcpPort: number;
  /** The WebSocket port, or undefined when WebSocket devices are off. */
  wsPort?: number | undefined;
}): ZookeeperService[] {
  const deviceHost = a.deviceHost || a.host;
  const services: ZookeeperService[] = [
    { kind: 'gs', data: { host: a.host, port: a.gatewayPort } },
    { kind: 'cs', data: { attrs: { weight: 1 }, host: deviceHost, port: a.tcpPort } },
  ];
  if (a.wsPort !== undefined) services.push({ kind: 'ws', data: { host: deviceHost, port: a.wsPort } });
  return services;
}

/**
 * node-zookeeper-client keeps the unparsed tail of a socket's stream across a reconnect, so after a
 * connection drops mid-packet the new stream is read out of step, and the parse error is thrown
 * from its socket handler where nothing can catch it: the process dies ("Unknown code: …",
 * upstream issues #23 and #70, open since 2014). Two guards, applied once: a new socket starts
 * with an empty buffer, and a stream that still cannot be parsed drops that socket (the client
 * reconnects and resumes its session) instead of the process.
 */
function guardClient(): void {
  const proto = ConnectionManager.prototype as {
    onSocketConnected(this: ManagerState): void;
    onSocketData(this: ManagerState, b: Buffer): void;
    guarded?: true;
  };
  if (proto.guarded) return;
  proto.guarded = true;
  const connected = proto.onSocketConnected;
  const data = proto.onSocketData;
  proto.onSocketConnected = function (this: ManagerState) {
    this.pendingBuffer = null;
    connected.call(this);
  };
  proto.onSocketData = function (this: ManagerState, b: Buffer) {
    try {
      data.call(this, b);
    } catch {
      this.pendingBuffer = null;
      this.socket?.destroy();
    }
  };
}
interface ManagerState {
  pendingBuffer: Buffer | null;
  socket?: { destroy(): void };
}
guardClient();

const { CreateMode, Exception } = zookeeper;
/** ZooKeeper's CREATOR_ALL_ACL: every permission to the identities the session authenticated. */
const CREATOR_ALL = [new zookeeper.ACL(zookeeper.Permission.ALL, new zookeeper.Id('auth', ''))];
const EMPTY = Buffer.alloc(0);

type ZkCallback<T> = (err: Error | zookeeper.Exception | null, v: T) => void;

/** One ZooKeeper call as a promise (its Exception is an Error at run time, not in its types). */
function zkCall<T = void>(fn: (cb: ZkCallback<T>) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))));
}

function isCode(err: unknown, code: number): boolean {
  return err instanceof Exception && err.getCode() === code;
}

/**
 * Registers this node in ZooKeeper in MPush's layout, so MPush's own PushClient (which finds
 * gateways there) and MPush's allocator (which reads `cs`) see it: one EPHEMERAL node
 * `/<namespace>/cluster/<kind>/<uuid>` per service holding its JSON, under persistent empty
 * parents, all with the creator-all ACL of the digest user.
 *
 * Discovery only: routes, sessions and the node registry stay in Redis. An ephemeral node lives
 * as long as the session; when the session expires (a network partition longer than the session
 * timeout) the registrar opens a new one and registers again, retrying with backoff until it
 * succeeds or is closed. `close()` removes the nodes at once.
 */
export class ZookeeperRegistrar {
  private client: zookeeper.Client | undefined;
  private services: ZookeeperService[] = [];
  /** One id per service kind for the registrar's life: a re-registration reuses its path. */
  private readonly ids = new Map<ZookeeperServiceKind, string>();
  private closed = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(private readonly opts: ZookeeperRegistrarOptions) {}

  /** The paths this node holds (when registered). */
  get paths(): string[] {
    return this.services.map((s) => this.pathOf(s.kind));
  }

  /** The current session's id and password (hex / buffer), for diagnostics and tests. */
  session(): { id: Buffer; password: Buffer } | undefined {
    const c = this.client;
    return c ? { id: c.getSessionId(), password: c.getSessionPassword() } : undefined;
  }

  /** Connects and registers; rejects when no session is had within `connectTimeoutMs`. */
  async start(services: ZookeeperService[]): Promise<void> {
    this.services = services;
    for (const s of services) if (!this.ids.has(s.kind)) this.ids.set(s.kind, randomUUID());
    await this.register();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    const c = this.client;
    this.client = undefined;
    if (!c) return;
    // Closing the session deletes its ephemeral nodes; removing them first makes that explicit
    // even if the close packet is lost. Bounded: a dead ZooKeeper must not hold up a shutdown.
    const removals = Promise.allSettled(this.paths.map((p) => zkCall((cb) => c.remove(p, -1, cb))));
    await Promise.race([removals, new Promise((r) => setTimeout(r, this.opts.connectTimeoutMs).unref())]);
    c.close();
  }

  private pathOf(kind: ZookeeperServiceKind): string {
    return `/${this.opts.namespace}/cluster/${kind}/${this.ids.get(kind)}`;
  }

  private async register(): Promise<void> {
    const c = await this.connect();
    try {
      for (const s of this.services) await this.createService(c, s);
    } catch (err) {
      c.close();
      throw err;
    }
    if (this.closed) {
      c.close();
      return;
    }
    this.client = c;
    this.opts.onRegistered?.(this.paths);
  }

  private connect(): Promise<zookeeper.Client> {
    const c = zookeeper.createClient(this.opts.connect, {
      sessionTimeout: this.opts.sessionTimeoutMs,
      spinDelay: 500,
      retries: 0,
    });
    c.addAuthInfo('digest', Buffer.from(this.opts.digest));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        c.close();
        reject(
          new Error(
            `zookeeper at ${this.opts.connect} gave no session within ${this.opts.connectTimeoutMs} ms`,
          ),
        );
      }, this.opts.connectTimeoutMs);
      c.once('connected', () => {
        clearTimeout(timer);
        resolve(c);
      });
      c.once('authenticationFailed', () => {
        clearTimeout(timer);
        c.close();
        reject(new Error(`zookeeper at ${this.opts.connect} refused the digest credentials`));
      });
      c.once('expired', () => this.onExpired(c));
      c.connect();
    });
  }

  private async createService(c: zookeeper.Client, s: ZookeeperService): Promise<void> {
    const root = `/${this.opts.namespace}`;
    for (const dir of [root, `${root}/cluster`, `${root}/cluster/${s.kind}`]) {
      try {
        await zkCall<string>((cb) => c.create(dir, EMPTY, CREATOR_ALL, CreateMode.PERSISTENT, cb));
      } catch (err) {
        if (!isCode(err, Exception.NODE_EXISTS)) throw err;
      }
    }
    const path = this.pathOf(s.kind);
    const data = Buffer.from(JSON.stringify(s.data));
    try {
      await zkCall<string>((cb) => c.create(path, data, CREATOR_ALL, CreateMode.EPHEMERAL, cb));
    } catch (err) {
      if (!isCode(err, Exception.NODE_EXISTS)) throw err;
      // Left by our previous session, not yet reaped by the server: replace it.
      await zkCall((cb) => c.remove(path, -1, cb));
      await zkCall<string>((cb) => c.create(path, data, CREATOR_ALL, CreateMode.EPHEMERAL, cb));
    }
  }

  private onExpired(c: zookeeper.Client): void {
    c.close();
    if (this.client !== c || this.closed) return;
    this.client = undefined;
    this.renew(250);
  }

  private renew(delayMs: number): void {
    this.retry = setTimeout(() => {
      if (this.closed) return;
      this.register().catch((err: Error) => {
        this.opts.onError?.(err);
        this.renew(Math.min(delayMs * 2, 10_000));
      });
    }, delayMs);
    this.retry.unref();
  }
}
