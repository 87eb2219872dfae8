import { Command, ErrorCodec, ExtCommand, OkCodec, RouteQueryCodec } from '../../protocol/index.js';
import type { GatewayChannel } from './gateway-channel.js';

/** Where one device of a user is: its client type and the gateway of its node. */
export interface RouteEntry {
  clientType: number;
  host: string;
  port: number;
  connId: string;
}

/** How a push client finds routes: from a store it can read, or by asking a gateway. */
export interface RouteSource {
  lookup(userIds: readonly string[]): Promise<Map<string, RouteEntry[]>>;
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

/** Asks a gateway (GATEWAY_ROUTE_QUERY) when the push client cannot read the store itself. */
export class GatewayRouteSource implements RouteSource {
  constructor(private readonly channel: () => Promise<GatewayChannel>) {}

  async lookup(userIds: readonly string[]): Promise<Map<string, RouteEntry[]>> {
    const ch = await this.channel();
    const body = RouteQueryCodec.encode({ userIds });
    const data = await new Promise<string>((resolve, reject) => {
      const sid = ch.send(ExtCommand.GATEWAY_ROUTE_QUERY, 0, body, {
        onReply: (p) => {
          if (p.cmd === Command.OK) {
            resolve(OkCodec.decode(p.body).data);
          } else {
            reject(new Error(`route query refused: ${ErrorCodec.decode(p.body).reason}`));
          }
        },
        onChannelClosed: (reason) => reject(new Error(reason)),
      });
      if (sid < 0) reject(new Error(`gateway ${ch.address} not connected`));
    });
    const parsed = JSON.parse(data) as Record<string, RouteEntry[]>;
    const out = new Map<string, RouteEntry[]>();
    for (const u of userIds)
      out.set(
        u,
        (parsed[u] ?? []).map((r) => ({
          clientType: r.clientType,
          host: r.host,
          port: r.port,
          connId: r.connId,
        })),
      );
    return out;
  }
}
