import { type NodeInfo, type NodeRegistry, nodeInfoSchema } from './node-registry.js';
import type { RedisClient } from './redis-connection.js';
import { readJson } from './redis-json.js';
import type { RedisStoreOptions } from './redis-route-store.js';
import { RedisScript } from './redis-script.js';

export interface RedisNodeRegistryOptions extends RedisStoreOptions {
  /** Key prefix (default `mp:`). */
  prefix?: string;
  /** How long a node stays listed after its last refresh, in ms (default 10 000). */
  ttlMs?: number;
  /** How often this node refreshes its key and the live-node cache, in ms (default 3000). */
  refreshMs?: number;
  /** A refresh or cleanup that failed (Redis unreachable, …); the loop keeps going. */
  onError?: (err: Error) => void;
}

// Drops set members whose TTL key has expired, each only if its key is still missing: a node
// that re-published between our read and this cleanup stays listed.
const PRUNE = new RedisScript(`
local n = 0
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    n = n + redis.call('SREM', KEYS[1], ARGV[i - 1])
  end
end
return n
`);

function execErrors(res: Array<[Error | null, unknown]> | null): void {
  if (res === null) throw new Error('Redis transaction aborted');
  for (const [err] of res) if (err) throw err;
}

/**
 * The live nodes in Redis (replacing MPush's ZooKeeper): each node keeps a key
 * `<prefix>{nodes}:<id>` = its NodeInfo JSON with a `ttlMs` expiry, re-set every `refreshMs`,
 * and its id in the set `<prefix>{nodes}`. A node is live while its key exists; members whose
 * key expired (the node died) are skipped by `list()` and pruned. The `{nodes}` hash tag keeps
 * them in one Cluster slot, so a refresh is one transaction and a listing one MGET.
 *
 * `isLive()` is synchronous and answers from a cache of the last listing, refreshed by the same
 * loop (and by every `list()`):
 * - the cache is at most `refreshMs` (plus one round trip) old while Redis answers;
 * - a node that closes leaves other nodes' caches within `refreshMs`; a node that dies without
 *   closing stays listed up to `ttlMs` after its last refresh, so up to `ttlMs + refreshMs`;
 * - while Redis is unreachable the cache keeps its last answer (and this node counts itself live).
 *
 * Redis commands: publish and each refresh of this node = 1 MULTI/EXEC (SET … PX, SADD);
 * list (and each refresh of the cache) = 1 SMEMBERS + 1 MGET (+ 1 EVALSHA pruning, only when a
 * node has expired); close = 1 MULTI/EXEC (DEL, SREM); isLive = none.
 */
export class RedisNodeRegistry implements NodeRegistry {
  private readonly prefix: string;
  private readonly ttlMs: number;
  private readonly refreshMs: number;
  private self: NodeInfo | undefined;
  /** `gatewayHost:gatewayPort` of the nodes of the last listing. */
  private live = new Set<string>();
  /** Orders listings: a slow, older one never replaces a newer cache. */
  private listSeq = 0;
  private cacheSeq = 0;
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  /** Writes of this node's key in flight: close() lets them land before its DEL. */
  private readonly writes = new Set<Promise<void>>();
  private closed = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly opts: RedisNodeRegistryOptions = {},
  ) {
    this.prefix = opts.prefix ?? 'mp:';
    this.ttlMs = opts.ttlMs ?? 10_000;
    this.refreshMs = opts.refreshMs ?? 3_000;
    if (!(this.refreshMs > 0 && this.refreshMs < this.ttlMs))
      throw new RangeError(`refreshMs (${this.refreshMs}) must be > 0 and < ttlMs (${this.ttlMs})`);
    // Warm the cache at once: isLive() may be asked before the first tick.
    this.schedule(0);
  }

  /** The set of node ids. */
  get setKey(): string {
    return `${this.prefix}{nodes}`;
  }

  /** A node's TTL key. */
  nodeKey(id: string): string {
    return `${this.prefix}{nodes}:${id}`;
  }

  async publish(self: NodeInfo): Promise<void> {
    if (this.closed) throw new Error('node registry closed');
    this.self = self;
    this.live.add(`${self.gatewayHost}:${self.gatewayPort}`);
    await this.write(self);
  }

  async list(): Promise<NodeInfo[]> {
    const seq = ++this.listSeq;
    const ids = (await this.redis.smembers(this.setKey)).sort();
    const values = ids.length ? await this.redis.mget(ids.map((id) => this.nodeKey(id))) : [];
    const nodes: NodeInfo[] = [];
    const expired: string[] = [];
    ids.forEach((id, i) => {
      const json = values[i];
      const node = json == null ? undefined : readJson(nodeInfoSchema, json);
      if (node) nodes.push(node);
      else if (json == null) expired.push(id);
    });
    if (seq > this.cacheSeq) {
      this.cacheSeq = seq;
      const live = new Set(nodes.map((n) => `${n.gatewayHost}:${n.gatewayPort}`));
      if (this.self) live.add(`${this.self.gatewayHost}:${this.self.gatewayPort}`);
      this.live = live;
    }
    if (expired.length) {
      await PRUNE.run(this.redis, [this.setKey, ...expired.map((id) => this.nodeKey(id))], expired).catch(
        (err: Error) => this.opts.onError?.(err),
      );
    }
    return nodes;
  }

  /** From the cache: see the class comment for how stale it may be (≤ `refreshMs`). */
  isLive(gatewayHost: string, gatewayPort: number): boolean {
    return this.live.has(`${gatewayHost}:${gatewayPort}`);
  }

  /** Stops refreshing and removes this node at once (other nodes' caches follow within refreshMs). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    // A refresh or publish in flight would re-set the key after our DEL: let it land first.
    await Promise.allSettled([this.refreshing, ...this.writes]);
    const self = this.self;
    this.self = undefined;
    this.live.clear();
    if (self) {
      try {
        execErrors(await this.redis.multi().del(this.nodeKey(self.id)).srem(this.setKey, self.id).exec());
      } catch (err) {
        this.opts.onError?.(err as Error);
      }
    }
    await this.opts.onClose?.();
  }

  private async write(info: NodeInfo): Promise<void> {
    const done = this.redis
      .multi()
      .set(this.nodeKey(info.id), JSON.stringify(info), 'PX', this.ttlMs)
      .sadd(this.setKey, info.id)
      .exec()
      .then(execErrors);
    this.writes.add(done);
    try {
      await done;
    } finally {
      this.writes.delete(done);
    }
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.refreshing = this.refresh().finally(() => {
        this.refreshing = undefined;
        if (!this.closed) this.schedule(this.refreshMs);
      });
    }, delayMs);
    this.timer.unref();
  }

  private async refresh(): Promise<void> {
    try {
      if (this.self) await this.write(this.self);
      await this.list();
    } catch (err) {
      this.opts.onError?.(err as Error);
    }
  }
}
