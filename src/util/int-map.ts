/**
 * A map from 32-bit integer keys to values, for requests in flight keyed by their sessionId: open
 * addressing with linear probing in two flat arrays, made once and grown, never re-made on delete.
 *
 * Not a `Map`: V8 re-makes a Map's hash table whenever it shrinks (deleting the last entry of even
 * the smallest table does), and a replaced table keeps a link to its successor and the entries it
 * held then. A long-lived Map in the old generation that empties and fills at every request (one
 * push in flight at a time) thus chains young tables behind old ones: each one, and every request
 * it held, outlives the scavenges and is promoted. Measured on the ack tracker at 5,000 pushes/s:
 * about 1.2 MB promoted per scavenge (V8's sampling heap profiler, objects that survived minor GC:
 * the tables, the ack tasks and the push jobs behind them), and 5–15 ms scavenges.
 *
 * Here a delete clears its slot (and shifts its probe run back), so nothing points at a finished
 * request, and the arrays are re-made only to grow, or to shrink after the map drained to an
 * eighth of its capacity.
 */
export class IntMap<V> {
  private keys = new Int32Array(0);
  private vals: Array<V | undefined> = [];
  private mask = 0;
  private shift = 0;
  private count = 0;
  private readonly minCapacity: number;

  /** @param minCapacity slots to start with and never shrink below (rounded up to a power of two). */
  constructor(minCapacity = 16) {
    let cap = 8;
    while (cap < minCapacity) cap *= 2;
    this.minCapacity = cap;
    this.alloc(cap);
  }

  /** Fresh, empty arrays of `cap` slots (a power of two). */
  private alloc(cap: number): void {
    this.keys = new Int32Array(cap);
    this.vals = new Array<V | undefined>(cap).fill(undefined);
    this.mask = cap - 1;
    this.shift = 32 - Math.log2(cap);
    this.count = 0;
  }

  get size(): number {
    return this.count;
  }

  /** Fibonacci hashing: sequential keys (a counter) land in distinct slots. */
  private home(key: number): number {
    return Math.imul(key, 0x9e3779b1) >>> this.shift;
  }

  private find(key: number): number {
    const { keys, vals, mask } = this;
    for (let i = this.home(key); ; i = (i + 1) & mask) {
      if (vals[i] === undefined) return -1;
      if (keys[i] === key) return i;
    }
  }

  get(key: number): V | undefined {
    if ((key | 0) !== key) return undefined;
    const i = this.find(key);
    return i < 0 ? undefined : this.vals[i];
  }

  /**
   * Sets `key` to `value` (a value may not be undefined).
   * @throws RangeError when `key` is not a 32-bit integer.
   */
  set(key: number, value: V): void {
    if ((key | 0) !== key) throw new RangeError(`IntMap key ${key} is not a 32-bit integer`);
    if (value === undefined) throw new RangeError('IntMap values may not be undefined');
    if ((this.count + 1) * 2 > this.vals.length) this.resize(this.vals.length * 2);
    const { keys, vals, mask } = this;
    let i = this.home(key);
    for (; vals[i] !== undefined; i = (i + 1) & mask) {
      if (keys[i] === key) {
        vals[i] = value;
        return;
      }
    }
    keys[i] = key;
    vals[i] = value;
    this.count++;
  }

  /** Removes `key`; false when it was not there. */
  delete(key: number): boolean {
    if ((key | 0) !== key) return false;
    const at = this.find(key);
    if (at < 0) return false;
    const { keys, vals, mask } = this;
    // Backward-shift deletion: move later entries of the probe run into the hole when the hole
    // lies between their home slot and where they sit, so every lookup still ends at a gap.
    let hole = at;
    for (let j = (at + 1) & mask; vals[j] !== undefined; j = (j + 1) & mask) {
      const h = this.home(keys[j]!);
      if (((j - h) & mask) >= ((j - hole) & mask)) {
        keys[hole] = keys[j]!;
        vals[hole] = vals[j];
        hole = j;
      }
    }
    vals[hole] = undefined;
    this.count--;
    const cap = vals.length;
    if (cap > this.minCapacity && this.count * 8 < cap) this.resize(cap / 2);
    return true;
  }

  /** Every value, in no particular order (a copy: the map may change while they are handled). */
  values(): V[] {
    const out: V[] = [];
    for (const v of this.vals) if (v !== undefined) out.push(v);
    return out;
  }

  clear(): void {
    this.vals.fill(undefined);
    this.count = 0;
    if (this.vals.length > this.minCapacity) this.resize(this.minCapacity);
  }

  private resize(cap: number): void {
    const { keys, vals } = this;
    this.alloc(cap);
    for (let i = 0; i < vals.length; i++) {
      const v = vals[i];
      if (v !== undefined) this.set(keys[i]!, v);
    }
    // The old array is garbage now, but if it was promoted it would hold its values through
    // every scavenge until the next major GC.
    vals.fill(undefined);
  }
}
