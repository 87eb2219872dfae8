/**
 * Broadcast conditions: MPush's "push to the devices matching a script" feature.
 *
 * MPush 0.8.1 (`com.mpush.common.condition.ScriptCondition`) evaluates the condition string as
 * JavaScript with Nashorn, once per local connection, over the bindings built in
 * `BroadcastPushTask.checkCondition`: `userId`, `tags`, `clientVersion`, `osName`, `osVersion`.
 * There `tags` is the raw comma-separated bind string (`SessionContext.tags`), or null.
 *
 * We accept the same expression language but never run it as code: the source is parsed once
 * with jsep, checked against a whitelist, and compiled to a tree of small closures. The
 * evaluator implements the JavaScript semantics of the supported subset itself (loose
 * equality, relational comparison, `+`, truthiness, a few string/array methods) over plain
 * values only: strings, numbers, booleans, null, undefined and arrays of those. Property
 * access is limited to `.length`, numeric indexes and the whitelisted method names, so nothing
 * can reach `constructor`, `__proto__`, globals or host objects. Work per evaluation is bounded
 * by a step budget, and strings the expression produces are capped in length.
 */
import jsep from 'jsep';

export type ConditionErrorCode =
  | 'MPUSH_ERR_CONDITION_SYNTAX'
  | 'MPUSH_ERR_CONDITION_FORBIDDEN'
  | 'MPUSH_ERR_CONDITION_TOO_LARGE'
  | 'MPUSH_ERR_CONDITION_STEPS'
  /** Runtime failure (e.g. a method call on null); only seen as `lastError` / from `evaluateValue`. */
  | 'MPUSH_ERR_CONDITION_EVAL';

export class ConditionError extends Error {
  override readonly name = 'ConditionError';
  /** `MPUSH_ERR_CONDITION_*` machine code. */
  readonly code: ConditionErrorCode;
  /** 0-based character offset in the source, for syntax errors when jsep reports one. */
  readonly position: number | undefined;

  constructor(code: ConditionErrorCode, message: string, position?: number) {
    super(message);
    this.code = code;
    this.position = position;
  }
}

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

export interface ConditionLimits {
  /** Maximum source length in UTF-16 code units (default 1024). */
  maxLength?: number;
  /** Maximum number of AST nodes (default 256). */
  maxNodes?: number;
  /** Evaluation budget per device: one step per node evaluated plus a size-proportional
   *  charge for string/array work (default 10 000). */
  maxSteps?: number;
  /** Longest string (or joined array) an evaluation may produce (default 64 KiB). */
  maxStringLength?: number;
  /**
   * When true, only a result that is exactly `true` passes, as in MPush (its ScriptCondition
   * casts the script's value to java.lang.Boolean and treats a failed cast as false). Default
   * false: the result's JavaScript truthiness decides.
   */
  strictBoolean?: boolean;
}

export interface CompiledCondition {
  readonly source: string;
  /** True if the device matches. Never throws: evaluation errors and step overruns give false. */
  evaluate(vars: ConditionVars): boolean;
  /** The raw value of the expression; throws ConditionError (`..._EVAL` / `..._STEPS`). */
  evaluateValue(vars: ConditionVars): ConditionValue;
  /** Number of `evaluate` calls that failed (runtime error or step overrun). */
  readonly errors: number;
  /** How many of `errors` were step-budget overruns. */
  readonly stepOverruns: number;
  /** The most recent failure seen by `evaluate`. */
  readonly lastError: ConditionError | undefined;
  /** The variables the expression mentions (e.g. to skip building unused ones). */
  readonly variables: ReadonlySet<ConditionVariable>;
}

export const CONDITION_VARIABLES = ['userId', 'tags', 'clientVersion', 'osName', 'osVersion'] as const;
export type ConditionVariable = (typeof CONDITION_VARIABLES)[number];

/** Identifiers usable besides the variables. */
const CONSTANTS: ReadonlyMap<string, number | undefined> = new Map([
  ['undefined', undefined],
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
]);

const ALLOWED_IDENTIFIERS = [...CONDITION_VARIABLES, ...CONSTANTS.keys()].join(', ');

/** Words that parse as identifiers in jsep but are JavaScript keywords/globals worth naming. */
const KEYWORDS = new Set([
  'new',
  'function',
  'delete',
  'void',
  'in',
  'instanceof',
  'var',
  'let',
  'const',
  'return',
  'class',
  'import',
  'yield',
  'await',
]);

export const DEFAULT_CONDITION_LIMITS = {
  maxLength: 1024,
  maxNodes: 256,
  maxSteps: 10_000,
  maxStringLength: 64 * 1024,
} as const;

// ---------------------------------------------------------------------------------------------
// jsep configuration (jsep is a process-wide singleton; nothing else in mpush-ts uses it).
// Drop the operators we do not evaluate so they are plain syntax errors, and teach it the
// assignment / increment operators only so we can reject them with a precise FORBIDDEN error.

for (const op of ['|', '^', '&', '<<', '>>', '>>>', '**', '??']) jsep.removeBinaryOp(op);
jsep.removeUnaryOp('~');
for (const op of [
  '=',
  '+=',
  '-=',
  '*=',
  '/=',
  '%=',
  '**=',
  '<<=',
  '>>=',
  '>>>=',
  '&=',
  '|=',
  '^=',
  '&&=',
  '||=',
  '??=',
]) {
  // 0.9 is jsep's conventional assignment precedence (below `||`, handled by its ternary hook).
  jsep.addBinaryOp(op, 0.9, true);
}
jsep.addUnaryOp('++');
jsep.addUnaryOp('--');
jsep.addUnaryOp('typeof');

const BINARY_OPS = new Set([
  '==',
  '!=',
  '===',
  '!==',
  '<',
  '<=',
  '>',
  '>=',
  '+',
  '-',
  '*',
  '/',
  '%',
  '&&',
  '||',
]);
const UNARY_OPS = new Set(['!', '-', '+', 'typeof']);

// ---------------------------------------------------------------------------------------------
// Runtime

type Prim = string | number | boolean | null | undefined;
type Value = ConditionValue;

interface Ctx {
  vars: ConditionVars;
  steps: number;
  readonly maxSteps: number;
  readonly maxStr: number;
}

type Fn = (c: Ctx) => Value;

function evalError(message: string): ConditionError {
  return new ConditionError('MPUSH_ERR_CONDITION_EVAL', message);
}

function overrun(c: Ctx): never {
  throw new ConditionError(
    'MPUSH_ERR_CONDITION_STEPS',
    `condition exceeded its evaluation budget of ${c.maxSteps} steps`,
  );
}

/** Charge work proportional to `units` (characters or elements): one step per 256. */
function charge(c: Ctx, units: number): void {
  c.steps += units >>> 8;
  if (c.steps > c.maxSteps) overrun(c);
}

function nameOf(v: unknown): string {
  return v === null ? 'null' : typeof v === 'undefined' ? 'undefined' : typeof v;
}

/** JS ToPrimitive for the values we allow: arrays become their `join(',')`. */
function prim(c: Ctx, v: Value): Prim {
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
function str(c: Ctx, v: Value): string {
  return String(prim(c, v));
}

/** JS ToNumber (via ToPrimitive). */
function num(c: Ctx, v: Value): number {
  return Number(prim(c, v));
}

/** Array.prototype.join with JS element conversion, bounded in size and nesting. */
function join(c: Ctx, arr: readonly Value[], sep: string, depth: number): string {
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

function checkLen(c: Ctx, s: string): string {
  if (s.length > c.maxStr) throw evalError(`string longer than ${c.maxStr} characters`);
  return s;
}

/** JS IsLooselyEqual restricted to primitives (string/number/boolean/null/undefined). */
function primLooseEq(a: Prim, b: Prim): boolean {
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
function looseEq(c: Ctx, a: Value, b: Value): boolean {
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
function less(a: Prim, b: Prim, orEqual: boolean): boolean {
  if (typeof a === 'string' && typeof b === 'string') return orEqual ? a <= b : a < b;
  const x = Number(a);
  const y = Number(b);
  return orEqual ? x <= y : x < y;
}

function jsTypeof(v: Value): string {
  if (v === null || Array.isArray(v)) return 'object';
  return typeof v;
}

function readMember(o: Value, what: string): void {
  if (o === null || o === undefined) {
    throw evalError(`cannot read ${what} of ${nameOf(o)}`);
  }
}

/** `o[k]` for a numeric key: string characters and array elements; anything else undefined. */
function index(o: Value, k: Value): Value {
  readMember(o, 'an index');
  if (typeof k !== 'number') throw evalError('only numeric indexes are allowed');
  if (typeof o === 'string' || Array.isArray(o)) {
    const a = o as string | readonly Value[];
    return Number.isInteger(k) && k >= 0 && k < a.length ? a[k] : undefined;
  }
  return undefined;
}

type StringMethod = (c: Ctx, s: string, args: Value[]) => Value;
type ArrayMethod = (c: Ctx, a: readonly Value[], args: Value[]) => Value;

/** An optional numeric argument: absent/undefined stays undefined (the method's default). */
function optNum(c: Ctx, v: Value): number | undefined {
  return v === undefined ? undefined : num(c, v);
}

const STRING_METHODS: ReadonlyMap<string, StringMethod> = new Map<string, StringMethod>([
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

const ARRAY_METHODS: ReadonlyMap<string, ArrayMethod> = new Map<string, ArrayMethod>([
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

const METHOD_NAMES: ReadonlySet<string> = new Set([...STRING_METHODS.keys(), ...ARRAY_METHODS.keys()]);

// ---------------------------------------------------------------------------------------------
// Compiler

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  n: '\n',
  r: '\r',
  t: '\t',
  b: '\b',
  f: '\f',
  v: '\v',
};

/** Decode a quoted string literal (jsep's `raw`) with JavaScript's escape rules. */
function decodeStringLiteral(raw: string): string {
  const bad = (what: string): never => {
    throw new ConditionError(
      'MPUSH_ERR_CONDITION_SYNTAX',
      `invalid escape in string literal ${raw}: ${what}`,
    );
  };
  const hex = (digits: string): number => {
    if (!/^[0-9a-fA-F]+$/.test(digits)) bad(`\\${digits}`);
    return Number.parseInt(digits, 16);
  };
  let out = '';
  const end = raw.length - 1; // skip the closing quote
  for (let i = 1; i < end; i++) {
    const ch = raw[i]!;
    if (ch !== '\\') {
      out += ch;
      continue;
    }
    const e = raw[++i] ?? '';
    const simple = SIMPLE_ESCAPES[e];
    if (simple !== undefined) {
      out += simple;
    } else if (e === '0' && !/[0-9]/.test(raw[i + 1] ?? '')) {
      out += '\0';
    } else if (/[0-9]/.test(e)) {
      bad('octal escapes are not supported');
    } else if (e === 'x') {
      out += String.fromCharCode(hex(raw.slice(i + 1, i + 3).padEnd(2, 'g')));
      i += 2;
    } else if (e === 'u') {
      if (raw[i + 1] === '{') {
        const close = raw.indexOf('}', i + 2);
        if (close < 0 || close >= end) bad('unterminated \\u{');
        const cp = hex(raw.slice(i + 2, close));
        if (cp > 0x10ffff) bad('code point out of range');
        out += String.fromCodePoint(cp);
        i = close;
      } else {
        out += String.fromCharCode(hex(raw.slice(i + 1, i + 5).padEnd(4, 'g')));
        i += 4;
      }
    } else if (e === '\r') {
      if (raw[i + 1] === '\n') i++; // line continuation
    } else if (e !== '\n' && e !== '\u2028' && e !== '\u2029') {
      out += e; // identity escape: \' \" \\ \a ...
    }
  }
  return out;
}

type Node = jsep.Expression;

function forbidden(message: string): ConditionError {
  return new ConditionError('MPUSH_ERR_CONDITION_FORBIDDEN', message);
}

/** The children of a node, for counting (covers every node type jsep core can produce). */
function children(n: Node): Node[] {
  const out: Node[] = [];
  const push = (x: unknown): void => {
    if (x !== null && typeof x === 'object' && typeof (x as Node).type === 'string') out.push(x as Node);
  };
  switch (n.type) {
    case 'Compound':
    case 'SequenceExpression':
    case 'ArrayExpression': {
      const list = (n['body'] ?? n['expressions'] ?? n['elements']) as unknown;
      if (Array.isArray(list)) for (const x of list) push(x);
      break;
    }
    case 'CallExpression':
      push(n['callee']);
      if (Array.isArray(n['arguments'])) for (const x of n['arguments']) push(x);
      break;
    default:
      for (const key of [
        'left',
        'right',
        'argument',
        'test',
        'consequent',
        'alternate',
        'object',
        'property',
      ]) {
        push(n[key]);
      }
  }
  return out;
}

function countNodes(root: Node, max: number): number {
  let count = 0;
  const stack: Node[] = [root];
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (++count > max) {
      throw new ConditionError(
        'MPUSH_ERR_CONDITION_TOO_LARGE',
        `condition has more than ${max} syntax nodes`,
      );
    }
    stack.push(...children(n));
  }
  return count;
}

class Compiler {
  readonly variables = new Set<ConditionVariable>();

  compile(n: Node): Fn {
    switch (n.type) {
      case 'Literal':
        return this.literal(n as jsep.Literal);
      case 'Identifier':
        return this.identifier((n as jsep.Identifier).name);
      case 'UnaryExpression':
        return this.unary(n as jsep.UnaryExpression);
      case 'BinaryExpression':
        return this.binary(n as jsep.BinaryExpression);
      case 'ConditionalExpression':
        return this.conditional(n as jsep.ConditionalExpression);
      case 'ArrayExpression':
        return this.array(n as jsep.ArrayExpression);
      case 'MemberExpression':
        return this.member(n as jsep.MemberExpression);
      case 'CallExpression':
        return this.call(n as jsep.CallExpression);
      case 'ThisExpression':
        throw forbidden("'this' is not allowed");
      case 'SequenceExpression':
        for (const e of (n as jsep.SequenceExpression).expressions) this.compile(e);
        throw forbidden('the comma operator is not allowed');
      case 'Compound': {
        const body = (n as jsep.Compound).body;
        if (body.length === 0) {
          throw new ConditionError('MPUSH_ERR_CONDITION_SYNTAX', 'condition is empty');
        }
        // Report a forbidden part (e.g. `new Foo()` parses as `new` followed by `Foo()`) first.
        for (const e of body) this.compile(e);
        throw new ConditionError(
          'MPUSH_ERR_CONDITION_SYNTAX',
          'condition must be a single expression (missing operator between expressions?)',
        );
      }
      default:
        throw forbidden(`${n.type} is not allowed`);
    }
  }

  private literal(n: jsep.Literal): Fn {
    let v = n.value;
    if (v !== null && typeof v === 'object') throw forbidden('regular expressions are not allowed');
    if (typeof v === 'string' && typeof n.raw === 'string' && n.raw.includes('\\')) {
      v = decodeStringLiteral(n.raw); // jsep only knows \n \r \t \b \f \v
    } else if (typeof v === 'number' && /^0[0-9]/.test(n.raw)) {
      throw new ConditionError(
        'MPUSH_ERR_CONDITION_SYNTAX',
        `legacy octal literal ${n.raw} is not supported`,
      );
    }
    return (c) => {
      if (++c.steps > c.maxSteps) overrun(c);
      return v;
    };
  }

  private identifier(name: string): Fn {
    switch (name) {
      case 'userId':
      case 'tags':
      case 'clientVersion':
      case 'osName':
      case 'osVersion': {
        this.variables.add(name);
        const key: ConditionVariable = name;
        return (c) => {
          if (++c.steps > c.maxSteps) overrun(c);
          return c.vars[key];
        };
      }
    }
    if (CONSTANTS.has(name)) {
      const v = CONSTANTS.get(name);
      return (c) => {
        if (++c.steps > c.maxSteps) overrun(c);
        return v;
      };
    }
    if (KEYWORDS.has(name)) throw forbidden(`'${name}' is not allowed`);
    throw forbidden(`unknown identifier '${name}'; allowed identifiers: ${ALLOWED_IDENTIFIERS}`);
  }

  private unary(n: jsep.UnaryExpression): Fn {
    const op = n.operator;
    if (!UNARY_OPS.has(op)) throw forbidden(`operator '${op}' is not allowed`);
    const f = this.compile(n.argument);
    switch (op) {
      case '!':
        return (c) => {
          if (++c.steps > c.maxSteps) overrun(c);
          return !f(c);
        };
      case '-':
        return (c) => {
          if (++c.steps > c.maxSteps) overrun(c);
          return -num(c, f(c));
        };
      case '+':
        return (c) => {
          if (++c.steps > c.maxSteps) overrun(c);
          return num(c, f(c));
        };
      default:
        return (c) => {
          if (++c.steps > c.maxSteps) overrun(c);
          return jsTypeof(f(c));
        };
    }
  }

  private binary(n: jsep.BinaryExpression): Fn {
    const op = n.operator;
    if (!BINARY_OPS.has(op)) {
      if (op.endsWith('=') && !['==', '!=', '===', '!==', '<=', '>='].includes(op)) {
        throw forbidden(`assignment ('${op}') is not allowed`);
      }
      throw forbidden(`operator '${op}' is not allowed`);
    }
    const l = this.compile(n.left);
    const r = this.compile(n.right);
    switch (op) {
      case '&&':
        return (c) => {
          if (++c.steps > c.maxSteps) overrun(c);
          const a = l(c);
          return a ? r(c) : a;
        };
      case '||':
        return (c) => {
          if (++c.steps > c.maxSteps) overrun(c);
          const a = l(c);
          return a ? a : r(c);
        };
      case '===':
        return (c) => {
          if (++c.steps > c.maxSteps) overrun(c);
          return l(c) === r(c);
        };
      case '!==':
        return (c) => {
          if (++c.steps > c.maxSteps) overrun(c);
          return l(c) !== r(c);
        };
      case '==':
        return (c) => {
          if (++c.steps > c.maxSteps) overrun(c);
          return looseEq(c, l(c), r(c));
        };
      case '!=':
        return (c) => {
          if (++c.steps > c.maxSteps) overrun(c);
          return !looseEq(c, l(c), r(c));
        };
      case '<':
        return (c) => {
          if (++c.steps > c.maxSteps) overrun(c);
          const a = prim(c, l(c));
          return less(a, prim(c, r(c)), false);
        };
      case '>':
        return (c) => {
          if (++c.steps > c.maxSteps) overrun(c);
          const a = prim(c, l(c));
          return less(prim(c, r(c)), a, false);
        };
      case '<=':
        return (c) => {
          if (++c.steps > c.maxSteps) overrun(c);
          const a = prim(c, l(c));
          return less(a, prim(c, r(c)), true);
        };
      case '>=':
        return (c) => {
          if (++c.steps > c.maxSteps) overrun(c);
          const a = prim(c, l(c));
          return less(prim(c, r(c)), a, true);
        };
      case '+':
        return (c) => {
          if (++c.steps > c.maxSteps) overrun(c);
          const a = prim(c, l(c));
          const b = prim(c, r(c));
          if (typeof a === 'string' || typeof b === 'string') {
            const sa = String(a);
            const sb = String(b);
            if (sa.length + sb.length > c.maxStr) {
              throw evalError(`string longer than ${c.maxStr} characters`);
            }
            charge(c, sa.length + sb.length);
            return sa + sb;
          }
          return Number(a) + Number(b);
        };
      case '-':
        return (c) => {
          if (++c.steps > c.maxSteps) overrun(c);
          const a = num(c, l(c));
          return a - num(c, r(c));
        };
      case '*':
        return (c) => {
          if (++c.steps > c.maxSteps) overrun(c);
          const a = num(c, l(c));
          return a * num(c, r(c));
        };
      case '/':
        return (c) => {
          if (++c.steps > c.maxSteps) overrun(c);
          const a = num(c, l(c));
          return a / num(c, r(c));
        };
      default: // '%'
        return (c) => {
          if (++c.steps > c.maxSteps) overrun(c);
          const a = num(c, l(c));
          return a % num(c, r(c));
        };
    }
  }

  private conditional(n: jsep.ConditionalExpression): Fn {
    const t = this.compile(n.test);
    const y = this.compile(n.consequent);
    const z = this.compile(n.alternate);
    return (c) => {
      if (++c.steps > c.maxSteps) overrun(c);
      return t(c) ? y(c) : z(c);
    };
  }

  private array(n: jsep.ArrayExpression): Fn {
    const fs = n.elements.map((e) => (e === null ? undefined : this.compile(e)));
    return (c) => {
      if (++c.steps > c.maxSteps) overrun(c);
      const out: Value[] = new Array(fs.length);
      for (let i = 0; i < fs.length; i++) {
        const f = fs[i];
        if (f !== undefined) out[i] = f(c); // `[, x]` keeps a hole, as in JS
      }
      return out;
    };
  }

  private checkNotOptional(n: Node): void {
    if (n['optional'] === true) throw forbidden("optional chaining ('?.') is not allowed");
  }

  private member(n: jsep.MemberExpression): Fn {
    this.checkNotOptional(n);
    const o = this.compile(n.object);
    if (!n.computed) {
      const name = (n.property as jsep.Identifier).name;
      if (name !== 'length') {
        if (METHOD_NAMES.has(name)) throw forbidden(`method '${name}' can only be called, not read`);
        throw forbidden(`property '${name}' is not allowed (only '.length' and whitelisted methods)`);
      }
      return (c) => {
        if (++c.steps > c.maxSteps) overrun(c);
        const v = o(c);
        if (typeof v === 'string') return v.length;
        if (Array.isArray(v)) return v.length;
        readMember(v, "property 'length'");
        return undefined;
      };
    }
    const p = n.property;
    if (p.type === 'Literal') {
      const k = (p as jsep.Literal).value;
      if (typeof k !== 'number') {
        throw forbidden(`computed member access with key ${String((p as jsep.Literal).raw)} is not allowed`);
      }
      return (c) => {
        if (++c.steps > c.maxSteps) overrun(c);
        return index(o(c), k);
      };
    }
    // A computed key: checked to be a number at run time.
    const kf = this.compile(p);
    return (c) => {
      if (++c.steps > c.maxSteps) overrun(c);
      const v = o(c);
      return index(v, kf(c));
    };
  }

  private call(n: jsep.CallExpression): Fn {
    this.checkNotOptional(n);
    const callee = n.callee;
    if (callee.type !== 'MemberExpression') {
      if (callee.type === 'Identifier') {
        const name = (callee as jsep.Identifier).name;
        throw forbidden(`calling '${name}(...)' is not allowed; only whitelisted string/array methods`);
      }
      throw forbidden('only whitelisted string/array methods can be called');
    }
    const m = callee as jsep.MemberExpression;
    this.checkNotOptional(m);
    if (m.computed || m.property.type !== 'Identifier') {
      throw forbidden('computed method calls are not allowed');
    }
    const name = (m.property as jsep.Identifier).name;
    if (!METHOD_NAMES.has(name)) {
      throw forbidden(
        `method '${name}' is not allowed; allowed methods: strings: ${[...STRING_METHODS.keys()].join(', ')}; ` +
          `arrays: ${[...ARRAY_METHODS.keys()].join(', ')}`,
      );
    }
    const recv = this.compile(m.object);
    const argFns = n.arguments.map((a) => this.compile(a));
    const onString = STRING_METHODS.get(name);
    const onArray = ARRAY_METHODS.get(name);
    const argc = argFns.length;
    return (c) => {
      if (++c.steps > c.maxSteps) overrun(c);
      const o = recv(c);
      const isString = typeof o === 'string';
      const isArray = !isString && Array.isArray(o);
      if (!isString && !isArray) {
        readMember(o, `property '${name}'`);
        throw evalError(`${jsTypeof(o)}.${name} is not a function`);
      }
      const args: Value[] = new Array(argc);
      for (let i = 0; i < argc; i++) args[i] = argFns[i]!(c);
      if (isString) {
        if (onString === undefined) throw evalError(`string.${name} is not a function`);
        return onString(c, o as string, args);
      }
      if (onArray === undefined) throw evalError(`array.${name} is not a function`);
      return onArray(c, o as readonly Value[], args);
    };
  }
}

class Compiled implements CompiledCondition {
  errors = 0;
  stepOverruns = 0;
  lastError: ConditionError | undefined = undefined;
  private readonly ctx: Ctx;

  constructor(
    readonly source: string,
    private readonly root: Fn,
    readonly variables: ReadonlySet<ConditionVariable>,
    maxSteps: number,
    maxStr: number,
    private readonly strict: boolean,
  ) {
    this.ctx = { vars: NO_VARS, steps: 0, maxSteps, maxStr };
  }

  evaluateValue(vars: ConditionVars): ConditionValue {
    // Evaluation is synchronous and calls no user code, so one context object is reused.
    const c = this.ctx;
    c.vars = vars;
    c.steps = 0;
    try {
      return this.root(c);
    } catch (e) {
      if (e instanceof ConditionError) throw e;
      // A native TypeError/RangeError from a primitive operation (e.g. odd caller values).
      throw evalError(e instanceof Error ? e.message : String(e));
    } finally {
      c.vars = NO_VARS;
    }
  }

  evaluate(vars: ConditionVars): boolean {
    try {
      const v = this.evaluateValue(vars);
      return this.strict ? v === true : !!v;
    } catch (e) {
      const err = e instanceof ConditionError ? e : evalError(String(e));
      this.errors++;
      if (err.code === 'MPUSH_ERR_CONDITION_STEPS') this.stepOverruns++;
      this.lastError = err;
      return false;
    }
  }
}

const NO_VARS: ConditionVars = Object.freeze({
  userId: undefined,
  tags: undefined,
  clientVersion: undefined,
  osName: undefined,
  osVersion: undefined,
});

function positiveInt(v: number | undefined, dflt: number, name: string): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v <= 0) throw new RangeError(`${name} must be a positive integer`);
  return v;
}

/**
 * Parse, validate and compile a broadcast condition. Throws ConditionError (SYNTAX, FORBIDDEN
 * or TOO_LARGE); the result's `evaluate` never throws.
 */
export function compileCondition(source: string, limits: ConditionLimits = {}): CompiledCondition {
  const maxLength = positiveInt(limits.maxLength, DEFAULT_CONDITION_LIMITS.maxLength, 'maxLength');
  const maxNodes = positiveInt(limits.maxNodes, DEFAULT_CONDITION_LIMITS.maxNodes, 'maxNodes');
  const maxSteps = positiveInt(limits.maxSteps, DEFAULT_CONDITION_LIMITS.maxSteps, 'maxSteps');
  const maxStr = positiveInt(
    limits.maxStringLength,
    DEFAULT_CONDITION_LIMITS.maxStringLength,
    'maxStringLength',
  );

  if (typeof source !== 'string') {
    throw new ConditionError('MPUSH_ERR_CONDITION_SYNTAX', 'condition must be a string');
  }
  if (source.length > maxLength) {
    throw new ConditionError(
      'MPUSH_ERR_CONDITION_TOO_LARGE',
      `condition is ${source.length} characters long; the limit is ${maxLength}`,
    );
  }

  let ast: Node;
  try {
    ast = jsep(source);
  } catch (e) {
    if (e instanceof RangeError) {
      throw new ConditionError('MPUSH_ERR_CONDITION_TOO_LARGE', 'condition is nested too deeply');
    }
    const err = e as { description?: unknown; index?: unknown; message?: unknown };
    const index = typeof err.index === 'number' ? err.index : undefined;
    const what = typeof err.description === 'string' ? err.description : String(err.message ?? e);
    throw new ConditionError(
      'MPUSH_ERR_CONDITION_SYNTAX',
      index === undefined ? `syntax error: ${what}` : `syntax error at position ${index}: ${what}`,
      index,
    );
  }

  countNodes(ast, maxNodes);
  const compiler = new Compiler();
  const root = compiler.compile(ast);
  return new Compiled(source, root, compiler.variables, maxSteps, maxStr, limits.strictBoolean === true);
}
