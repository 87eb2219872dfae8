import { ExtCommand, RouteQueryCodec } from '../../protocol/index.js';
import type { DeadlineQueue } from '../../util/deadline-queue.js';
import { GatewayCall } from './gateway-call.js';
import type { GatewayPool } from './gateway-pool.js';
import { decodeRoutes } from './gateway-reply.js';
import type { RouteEntry } from './types.js';

export type { RouteEntry } from './types.js';

/** How a push client finds routes: from a store it can read, or by asking a gateway. */
export interface RouteSource {
  /**
   * Every route of each user (a user with none maps to an empty list, or is absent).
   * @param deadline when the caller stops waiting (ms since the epoch): a source that can bound
   *   its own work by it should; the sender does not wait past it either way.
   */
  lookup(userIds: readonly string[], deadline?: number): Promise<Map<string, RouteEntry[]>>;
}

/**
 * What {@link StoreRouteSource} reads: every route of one user, by client type. Declared here so
 * the SDK does not depend on the server's stores; cluster/'s RouteStore (memory or Redis) fits.
 */
export interface RouteLookup {
  lookup(userId: string): Promise<ReadonlyMap<number, { host: string; port: number; connId: string }>>;
}

/**
 * Reads a route store directly (in-process, or Redis in a cluster). With `isLive`, a route to a
 * node missing from the registry is dropped: its user is offline there, not a failure.
 */
export class StoreRouteSource implements RouteSource {
  constructor(
    private readonly store: RouteLookup,
    private readonly isLive?: (host: string, port: number) => boolean | Promise<boolean>,
  ) {}

  async lookup(userIds: readonly string[]): Promise<Map<string, RouteEntry[]>> {
    const out = new Map<string, RouteEntry[]>();
    await Promise.all(
      userIds.map(async (u) => {
        const entries: RouteEntry[] = [];
        for (const [clientType, r] of await this.store.lookup(u)) {
          if (this.isLive && !(await this.isLive(r.host, r.port))) continue;
          entries.push({ clientType, host: r.host, port: r.port, connId: r.connId });
        }
        out.set(u, entries);
      }),
    );
    return out;
  }
}

/** What {@link GatewayRouteSource} asks through: the sender's gateways and its deadlines. */
export interface RouteQueryHost {
  readonly deadlines: DeadlineQueue;
  /** The gateways to ask, in the order to try them. */
  routeGateways(): GatewayPool[];
  /** Default bound of a query whose caller names none, ms. */
  readonly timeoutMs: number;
}

/**
 * Asks the gateways (GATEWAY_ROUTE_QUERY) when the push client cannot read the store itself. A
 * query is cut into chunks of at most `maxUsers` (the gateway's `gateway.maxRouteQueryUsers`),
 * sent at once, spread over the gateways that are up; a chunk whose gateway cannot be had, or
 * drops, is asked of the next gateway (a route query is a read: asking twice is harmless).
 */
export class GatewayRouteSource implements RouteSource {
  private next = 0;

  constructor(
    private readonly host: RouteQueryHost,
    readonly maxUsers: number,
  ) {}

  async lookup(userIds: readonly string[], deadline?: number): Promise<Map<string, RouteEntry[]>> {
    const until = deadline ?? this.host.deadlines.clock() + this.host.timeoutMs;
    const chunks: Array<readonly string[]> = [];
    for (let i = 0; i < userIds.length; i += this.maxUsers) chunks.push(userIds.slice(i, i + this.maxUsers));
    const parts = await Promise.all(chunks.map((c) => this.query(c, until)));
    if (parts.length === 1) return parts[0]!;
    const out = new Map<string, RouteEntry[]>();
    for (const p of parts) for (const [u, rs] of p) out.set(u, rs);
    return out;
  }

  private query(userIds: readonly string[], deadline: number): Promise<Map<string, RouteEntry[]>> {
    const pools = this.ordered();
    if (pools.length === 0) return Promise.reject(new Error('no gateway to ask for routes'));
    const body = RouteQueryCodec.encode({ userIds });
    const lane = Math.max(0, deadline - this.host.deadlines.clock());
    return new Promise((resolve, reject) => {
      let attempt = 0;
      const tryNext = (): void => {
        const pool = pools[attempt++]!;
        new GatewayCall(this.host.deadlines, pool, ExtCommand.GATEWAY_ROUTE_QUERY, 0, body, (o) => {
          if (o.ok) {
            try {
              resolve(decodeRoutes(o.data, userIds));
            } catch (err) {
              reject(new Error(`${(err as Error).message} (gateway ${pool.address})`));
            }
            return;
          }
          if (o.timeout) return reject(new Error(`route query to gateway ${pool.address} timed out`));
          if (o.code === undefined && attempt < pools.length) return tryNext();
          reject(new Error(o.code === undefined ? o.reason : `route query refused: ${o.reason}`));
        }).start(deadline, lane);
      };
      tryNext();
    });
  }

  /** The gateways, those up first, starting one further each query (spreads the load). */
  private ordered(): GatewayPool[] {
    const all = this.host.routeGateways();
    const n = all.length;
    const start = this.next++ % Math.max(1, n);
    const rotated = [...all.slice(start), ...all.slice(0, start)];
    return [...rotated.filter((p) => p.live), ...rotated.filter((p) => !p.live)];
  }
}
