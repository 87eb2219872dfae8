import type { RouteEntry, RouteSource } from './route-source.js';
import type { PushLogger } from './types.js';

interface Cached {
  routes: RouteEntry[];
  until: number;
  /** From here on a read triggers a lookup in the background (the entry still serves). */
  refreshAt: number;
}

/** The users of one coalesced lookup, and what its callers wait on. */
interface Gather {
  users: string[];
  deadline: number;
  promise: Promise<Map<string, RouteEntry[]>>;
  resolve(m: Map<string, RouteEntry[]>): void;
  reject(err: Error): void;
}

/** Part of an entry's life left when a read starts its refresh (the last fifth). */
const REFRESH_AHEAD = 0.2;

/**
 * The push client's route cache in front of a {@link RouteSource}:
 * - a route is reused for `ttlMs`; in the last fifth of that, a read still answers from the cache
 *   and starts a lookup in the background, so a user pushed to steadily never waits on one;
 * - misses of one tick (of every call) go out as one lookup, and a user already being looked up is
 *   not asked for again: a thousand sends that miss at once cost one query (cut to the gateway's
 *   cap by the source), not a thousand.
 * Users with no route are not cached: the next push asks again.
 */
export class RouteCache {
  private readonly cache = new Map<string, Cached>();
  private readonly inflight = new Map<string, Promise<Map<string, RouteEntry[]>>>();
  private gather: Gather | null = null;

  constructor(
    private readonly source: RouteSource,
    private readonly ttlMs: number,
    private readonly refreshTimeoutMs: number,
    private readonly log: PushLogger,
  ) {}

  /** The cached routes of `userId`, or undefined when it must be looked up. */
  get(userId: string, now: number): RouteEntry[] | undefined {
    if (this.ttlMs <= 0) return undefined;
    const c = this.cache.get(userId);
    if (!c) return undefined;
    if (c.until <= now) {
      this.cache.delete(userId);
      return undefined;
    }
    if (c.refreshAt <= now && !this.inflight.has(userId)) {
      c.refreshAt = c.until; // one refresh per entry
      this.enqueue(userId, now + this.refreshTimeoutMs).catch((err: Error) =>
        this.log.warn('background route refresh failed', { err: err.message }),
      );
    }
    return c.routes;
  }

  /**
   * Looks `userIds` up, joined with lookups already in flight or queued this tick (unless `fresh`:
   * a redirect must not be answered by a lookup made before the route changed).
   */
  load(userIds: readonly string[], deadline: number, fresh = false): Promise<Map<string, RouteEntry[]>> {
    const waits = new Set<Promise<Map<string, RouteEntry[]>>>();
    for (const u of userIds) {
      const p = fresh ? undefined : this.inflight.get(u);
      waits.add(p ?? this.enqueue(u, deadline));
    }
    if (waits.size === 1) return waits.values().next().value!;
    return Promise.all(waits).then((maps) => {
      const out = new Map<string, RouteEntry[]>();
      for (const m of maps) for (const [u, rs] of m) out.set(u, rs);
      return out;
    });
  }

  private enqueue(userId: string, deadline: number): Promise<Map<string, RouteEntry[]>> {
    let g = this.gather;
    if (!g) {
      let resolve!: (m: Map<string, RouteEntry[]>) => void;
      let reject!: (err: Error) => void;
      const promise = new Promise<Map<string, RouteEntry[]>>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      // Handled by whoever waits; a refresh nobody waits on has its own catch.
      promise.catch(() => {});
      g = { users: [], deadline, promise, resolve, reject };
      this.gather = g;
      process.nextTick(() => this.flush());
    }
    g.users.push(userId);
    if (deadline > g.deadline) g.deadline = deadline;
    this.inflight.set(userId, g.promise);
    return g.promise;
  }

  private flush(): void {
    const g = this.gather;
    this.gather = null;
    if (!g) return;
    const users = [...new Set(g.users)];
    let lookup: Promise<Map<string, RouteEntry[]>>;
    try {
      lookup = this.source.lookup(users, g.deadline);
    } catch (err) {
      lookup = Promise.reject(err);
    }
    lookup.then(
      (found) => {
        const now = Date.now();
        const out = new Map<string, RouteEntry[]>();
        for (const u of users) {
          if (this.inflight.get(u) === g.promise) this.inflight.delete(u);
          const routes = found.get(u) ?? [];
          out.set(u, routes);
          if (this.ttlMs > 0 && routes.length > 0) {
            this.cache.set(u, {
              routes,
              until: now + this.ttlMs,
              refreshAt: now + this.ttlMs * (1 - REFRESH_AHEAD),
            });
          } else {
            this.cache.delete(u);
          }
        }
        g.resolve(out);
      },
      (err: Error) => {
        for (const u of users) if (this.inflight.get(u) === g.promise) this.inflight.delete(u);
        g.reject(err);
      },
    );
  }

  /** Forgets `userId`'s routes (offline, moved, or its node unreachable). */
  drop(userId: string): void {
    this.cache.delete(userId);
  }

  /** Users being looked up now (for the sender's `pending()`). */
  get lookingUp(): number {
    return this.inflight.size;
  }

  clear(): void {
    this.cache.clear();
    this.inflight.clear();
  }
}
