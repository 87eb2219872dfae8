/**
 * A minimal typed event emitter for code that must also run in browsers (no `node:events`).
 * A listener that throws does not stop the others: its exception is rethrown on a later tick.
 */
export class TinyEmitter<E extends { [K in keyof E]: unknown[] }> {
  private readonly listeners: { [K in keyof E]?: Array<(...args: E[K]) => void> } = {};

  /** Adds `listener` for `event`. */
  on<K extends keyof E>(event: K, listener: (...args: E[K]) => void): this {
    const list = this.listeners[event];
    if (list === undefined) this.listeners[event] = [listener];
    else list.push(listener);
    return this;
  }

  /** Adds `listener` for the next `event` only. */
  once<K extends keyof E>(event: K, listener: (...args: E[K]) => void): this {
    const wrapper = (...args: E[K]): void => {
      this.off(event, wrapper);
      listener(...args);
    };
    return this.on(event, wrapper);
  }

  /** Removes `listener` (one registration of it). */
  off<K extends keyof E>(event: K, listener: (...args: E[K]) => void): this {
    const list = this.listeners[event];
    if (list === undefined) return this;
    const i = list.indexOf(listener);
    if (i >= 0) list.splice(i, 1);
    return this;
  }

  /** How many listeners `event` has. */
  listenerCount<K extends keyof E>(event: K): number {
    return this.listeners[event]?.length ?? 0;
  }

  /** Calls the listeners in order; true when there was one. */
  emit<K extends keyof E>(event: K, ...args: E[K]): boolean {
    const list = this.listeners[event];
    if (list === undefined || list.length === 0) return false;
    for (const listener of [...list]) {
      try {
        listener(...args);
      } catch (err) {
        setTimeout(rethrow, 0, err);
      }
    }
    return true;
  }
}

function rethrow(err: unknown): void {
  throw err;
}
