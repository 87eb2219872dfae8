/** Reconnect timing: exponential backoff with jitter. Browser-safe (no Node imports). */
export interface ReconnectOptions {
  /** Delay before the first retry. Default 500 ms. */
  initialMs?: number;
  /** Cap of the delay. Default 30 000 ms. */
  maxMs?: number;
  /** Random spread as a fraction of the delay (0.2 = ±20 %). Default 0.2. */
  jitter?: number;
}

/** {@link ReconnectOptions} with the defaults applied and the values clamped. */
export interface ResolvedReconnectOptions {
  initialMs: number;
  maxMs: number;
  jitter: number;
}

/** Applies the defaults; clamps `maxMs` to at least `initialMs` and `jitter` to [0, 1]. */
export function resolveReconnectOptions(o: ReconnectOptions | undefined): ResolvedReconnectOptions {
  const initialMs = Math.max(0, o?.initialMs ?? 500);
  return {
    initialMs,
    maxMs: Math.max(initialMs, o?.maxMs ?? 30_000),
    jitter: Math.min(1, Math.max(0, o?.jitter ?? 0.2)),
  };
}

/**
 * The delay before retry number `attempt` (1-based): `initialMs * 2^(attempt-1)` capped at `maxMs`,
 * spread by ±jitter so that thousands of clients dropped together do not come back together.
 */
export function backoffDelay(
  attempt: number,
  o: ResolvedReconnectOptions,
  random: () => number = Math.random,
): number {
  const exp = Math.min(o.maxMs, o.initialMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  const spread = exp * o.jitter * (random() * 2 - 1);
  return Math.max(0, Math.round(Math.min(o.maxMs, exp + spread)));
}
