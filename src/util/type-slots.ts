/**
 * A few values keyed by client type, as a flat array `[type, value, type, value, …]`. A user has
 * one or two device types, so a slot array (about 64 bytes) replaces a Map (about 200) for the
 * router's users with two or more.
 */
export type TypeSlots<V> = Array<number | V>;

export function slotGet<V>(slots: TypeSlots<V>, type: number): V | undefined {
  for (let i = 0; i < slots.length; i += 2) if (slots[i] === type) return slots[i + 1] as V;
  return undefined;
}

/** Sets the value of `type`; returns the one it replaced. */
export function slotSet<V>(slots: TypeSlots<V>, type: number, value: V): V | undefined {
  for (let i = 0; i < slots.length; i += 2) {
    if (slots[i] === type) {
      const previous = slots[i + 1] as V;
      slots[i + 1] = value;
      return previous;
    }
  }
  slots.push(type, value);
  return undefined;
}

/** Removes the value of `type`. True when there was one. */
export function slotDelete<V>(slots: TypeSlots<V>, type: number): boolean {
  for (let i = 0; i < slots.length; i += 2) {
    if (slots[i] === type) {
      slots.splice(i, 2);
      return true;
    }
  }
  return false;
}

export function slotValues<V>(slots: TypeSlots<V>): V[] {
  const out: V[] = [];
  for (let i = 1; i < slots.length; i += 2) out.push(slots[i] as V);
  return out;
}
