import { HttpServer } from './api/http-server.js';
import { MemorySessionStore, type SessionStore } from './cluster/session-store.js';
import type { Config } from './config/index.js';
import { createLogger, type Logger } from './log.js';
import { ConnectionServer } from './server/connection-server.js';
import { loadServerKeys, type ServerKeys } from './server/keys.js';

export interface MpushNodeOptions {
  config: Config;
  log?: Logger;
  sessions?: SessionStore;
  clock?: () => number;
}

/** Where a started node listens. */
export interface NodeAddresses {
  tcpPort: number;
  httpPort: number;
}

/**
 * One mpush-ts node: the connection server and the HTTP port, wired to its stores. The
 * all-in-one default uses in-memory stores; a cluster passes Redis ones.
 */
export class MpushNode {
  readonly config: Config;
  readonly log: Logger;
  readonly keys: ServerKeys;
  readonly sessions: SessionStore;
  readonly connections: ConnectionServer;
  readonly http: HttpServer;
  addresses: NodeAddresses = { tcpPort: 0, httpPort: 0 };

  constructor(opts: MpushNodeOptions) {
    this.config = opts.config;
    this.log = opts.log ?? createLogger(opts.config.log.level);
    this.keys = loadServerKeys(opts.config);
    this.sessions = opts.sessions ?? new MemorySessionStore();
    this.connections = new ConnectionServer({
      config: opts.config,
      privateKey: this.keys.privateKey,
      sessions: this.sessions,
      log: this.log,
      ...(opts.clock ? { clock: opts.clock } : {}),
    });
    this.http = new HttpServer({
      config: opts.config,
      log: this.log,
      connections: this.connections,
      publicKeyBase64: this.keys.publicKeyBase64,
    });
  }

  async start(): Promise<NodeAddresses> {
    const tcpPort = await this.connections.listen();
    const httpPort = await this.http.listen();
    this.addresses = { tcpPort, httpPort };
    return this.addresses;
  }

  /** Graceful stop: no new connections, every connection closed, stores closed. */
  async stop(): Promise<void> {
    await Promise.all([this.connections.close(), this.http.close()]);
    await this.sessions.close();
  }
}
