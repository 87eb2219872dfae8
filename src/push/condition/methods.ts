/**
 * The whitelisted string and array methods: the only calls a condition can make. Each charges
 * the step budget for work proportional to its input, and caps the strings it builds.
 */
import { type Ctx, charge, checkLen, join, num, str, type Value } from './values.js';

type StringMethod = (c: Ctx, s: string, args: Value[]) => Value;
type ArrayMethod = (c: Ctx, a: readonly Value[], args: Value[]) => Value;

/** An optional numeric argument: absent/undefined stays undefined (the method's default). */
function optNum(c: Ctx, v: Value): number | undefined {
  return v === undefined ? undefined : num(c, v);
}

export const STRING_METHODS: ReadonlyMap<string, StringMethod> = new Map<string, StringMethod>([
  [
    'indexOf',
    (c, s, a) => {
      charge(c, s.length);
      return s.indexOf(str(c, a[0]), optNum(c, a[1]));
    },
  ],
  [
    'lastIndexOf',
    (c, s, a) => {
      charge(c, s.length);
      return s.lastIndexOf(str(c, a[0]), optNum(c, a[1]));
    },
  ],
  [
    'includes',
    (c, s, a) => {
      charge(c, s.length);
      return s.includes(str(c, a[0]), optNum(c, a[1]));
    },
  ],
  ['startsWith', (c, s, a) => s.startsWith(str(c, a[0]), optNum(c, a[1]))],
  ['endsWith', (c, s, a) => s.endsWith(str(c, a[0]), optNum(c, a[1]))],
  [
    'toLowerCase',
    (c, s) => {
      charge(c, s.length);
      return checkLen(c, s.toLowerCase());
    },
  ],
  [
    'toUpperCase',
    (c, s) => {
      charge(c, s.length);
      return checkLen(c, s.toUpperCase());
    },
  ],
  [
    'trim',
    (c, s) => {
      charge(c, s.length);
      return s.trim();
    },
  ],
  [
    'substring',
    (c, s, a) => {
      const r = s.substring(num(c, a[0]), optNum(c, a[1]));
      charge(c, r.length);
      return r;
    },
  ],
  [
    'slice',
    (c, s, a) => {
      const r = s.slice(optNum(c, a[0]), optNum(c, a[1]));
      charge(c, r.length);
      return r;
    },
  ],
  ['charAt', (c, s, a) => s.charAt(num(c, a[0]))],
  [
    'split',
    (c, s, a) => {
      const sep = a[0] === undefined ? undefined : str(c, a[0]);
      const limit = optNum(c, a[1]);
      // The pieces never hold more characters than `s`; charge for the element count too.
      // (An undefined separator is handled natively: [s], or [] for a zero limit.)
      const r = s.split(sep as string, limit);
      charge(c, s.length + r.length * 2);
      return r;
    },
  ],
]);

export const ARRAY_METHODS: ReadonlyMap<string, ArrayMethod> = new Map<string, ArrayMethod>([
  [
    'indexOf',
    (c, arr, a) => {
      charge(c, arr.length);
      return arr.indexOf(a[0], optNum(c, a[1]));
    },
  ],
  [
    'lastIndexOf',
    (c, arr, a) => {
      charge(c, arr.length);
      // An explicit fromIndex (even undefined → 0) differs from an absent one (→ length-1).
      return a.length > 1 ? arr.lastIndexOf(a[0], num(c, a[1])) : arr.lastIndexOf(a[0]);
    },
  ],
  [
    'includes',
    (c, arr, a) => {
      charge(c, arr.length);
      return arr.includes(a[0], optNum(c, a[1]));
    },
  ],
  ['join', (c, arr, a) => join(c, arr, a[0] === undefined ? ',' : str(c, a[0]), 0)],
  [
    'slice',
    (c, arr, a) => {
      const r = arr.slice(optNum(c, a[0]), optNum(c, a[1]));
      charge(c, r.length);
      return r;
    },
  ],
]);

export const METHOD_NAMES: ReadonlySet<string> = new Set([...STRING_METHODS.keys(), ...ARRAY_METHODS.keys()]);
