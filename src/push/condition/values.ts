/**
 * The JavaScript value semantics of the condition language, over plain values only: ToPrimitive,
 * ToString and ToNumber, loose and strict equality, relational comparison, `typeof`, and member
 * reads. Truthiness is JavaScript's own (`!!v`): every value here is a primitive or an array, for
 * which the native test is the specified one. Each evaluation runs in one {@link Ctx} that
 * counts steps, so work stays bounded.
 */
import { ConditionError, evalError } from './errors.js';

/** The per-device bindings, as MPush's BroadcastPushTask builds them. */
export interface ConditionVars {
  userId: string | null | undefined;
  /**
   * The device's tags. MPush binds the raw comma-separated string from the bind message (so
   * `tags.indexOf('vip')` is a substring search there); an array of parsed tags is accepted too
   * (then `indexOf` / `includes` match whole tags). null/undefined when the device has none.
   */
  tags: readonly string[] | string | null | undefined;
  clientVersion: string | null | undefined;
  osName: string | null | undefined;
  osVersion: string | null | undefined;
}

/** Values an expression can produce. */
export type ConditionValue = string | number | boolean | null | undefined | readonly ConditionValue[];

export type Prim = string | number | boolean | null | undefined;
export type Value = ConditionValue;

/** One evaluation: the device's bindings and the step budget. */
export interface Ctx {
  vars: ConditionVars;
  steps: number;
  readonly maxSteps: number;
  readonly maxStr: number;
}

/** A compiled node. */
export type Fn = (c: Ctx) => Value;

export function overrun(c: Ctx): never {
  throw new ConditionError(
    'MPUSH_ERR_CONDITION_STEPS',
    `condition exceeded its evaluation budget of ${c.maxSteps} steps`,
  );
}

/** Charge work proportional to `units` (characters or elements): one step per 256. */
export function charge(c: Ctx, units: number): void {
  c.steps += units >>> 8;
  if (c.steps > c.maxSteps) overrun(c);
}

export function nameOf(v: unknown): string {
  return v === null ? 'null' : typeof v === 'undefined' ? 'undefined' : typeof v;
}

/** JS ToPrimitive for the values we allow: arrays become their `join(',')`. */
export function prim(c: Ctx, v: Value): Prim {
  if (typeof v === 'object' && v !== null) {
    if (Array.isArray(v)) return join(c, v, ',', 0);
    throw evalError('unsupported object value');
  }
  if (typeof v === 'function' || typeof v === 'symbol' || typeof v === 'bigint') {
    throw evalError(`unsupported ${typeof v} value`);
  }
  return v;
}

/** JS ToString (via ToPrimitive). */
export function str(c: Ctx, v: Value): string {
  return String(prim(c, v));
}

/** JS ToNumber (via ToPrimitive). */
export function num(c: Ctx, v: Value): number {
  return Number(prim(c, v));
}

/** Array.prototype.join with JS element conversion, bounded in size and nesting. */
export function join(c: Ctx, arr: readonly Value[], sep: string, depth: number): string {
  if (depth > 32) throw evalError('arrays nested too deeply');
  const max = c.maxStr;
  let out = '';
  for (let i = 0; i < arr.length; i++) {
    if (i > 0) out += sep;
    const e = arr[i];
    if (e !== null && e !== undefined) {
      if (typeof e === 'object') {
        if (!Array.isArray(e)) throw evalError('unsupported object value');
        out += join(c, e, ',', depth + 1);
      } else {
        out += String(prim(c, e));
      }
    }
    if (out.length > max) throw evalError(`string longer than ${max} characters`);
  }
  charge(c, out.length + arr.length);
  return out;
}

export function checkLen(c: Ctx, s: string): string {
  if (s.length > c.maxStr) throw evalError(`string longer than ${c.maxStr} characters`);
  return s;
}

/** JS IsLooselyEqual restricted to primitives (string/number/boolean/null/undefined). */
export function primLooseEq(a: Prim, b: Prim): boolean {
  if (a === null || a === undefined) return b === null || b === undefined;
  if (b === null || b === undefined) return false;
  const ta = typeof a;
  const tb = typeof b;
  if (ta === tb) return a === b;
  if (ta === 'boolean') return primLooseEq(Number(a), b);
  if (tb === 'boolean') return primLooseEq(a, Number(b));
  // One string, one number: compare numerically.
  return Number(a) === Number(b);
}

/** JS `==` over our values: arrays compare by identity, or via ToPrimitive with a primitive. */
export function looseEq(c: Ctx, a: Value, b: Value): boolean {
  const ao = typeof a === 'object' && a !== null;
  const bo = typeof b === 'object' && b !== null;
  if (ao || bo) {
    if (ao && bo) return a === b;
    if (a === null || a === undefined || b === null || b === undefined) return false;
    return primLooseEq(prim(c, a), prim(c, b));
  }
  return primLooseEq(prim(c, a), prim(c, b));
}

/** JS IsLessThan after ToPrimitive: string/string compares code units, otherwise numbers. */
export function less(a: Prim, b: Prim, orEqual: boolean): boolean {
  if (typeof a === 'string' && typeof b === 'string') return orEqual ? a <= b : a < b;
  const x = Number(a);
  const y = Number(b);
  return orEqual ? x <= y : x < y;
}

export function jsTypeof(v: Value): string {
  if (v === null || Array.isArray(v)) return 'object';
  return typeof v;
}

export function readMember(o: Value, what: string): void {
  if (o === null || o === undefined) {
    throw evalError(`cannot read ${what} of ${nameOf(o)}`);
  }
}

/** `o[k]` for a numeric key: string characters and array elements; anything else undefined. */
export function index(o: Value, k: Value): Value {
  readMember(o, 'an index');
  if (typeof k !== 'number') throw evalError('only numeric indexes are allowed');
  if (typeof o === 'string' || Array.isArray(o)) {
    const a = o as string | readonly Value[];
    return Number.isInteger(k) && k >= 0 && k < a.length ? a[k] : undefined;
  }
  return undefined;
}
