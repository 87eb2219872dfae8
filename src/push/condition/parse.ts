/**
 * Parsing a condition: jsep, configured for our subset on an instance of its own; the syntax
 * checks jsep leaves to us (string escapes, legacy octals, size); and the whitelists of
 * operators and identifiers the compiler admits.
 */
import type jsepDefault from 'jsep';
import { ConditionError } from './errors.js';

// ---------------------------------------------------------------------------------------------
// A private jsep. jsep keeps its operator tables in static fields of one class shared by every
// importer (jsep issue #211: no per-instance configuration), so configuring the `jsep` an
// application imports would change that application's parser. Node loads a module once per URL,
// query included: jsep's own file under a URL of ours is a separate instance, with its own class,
// tables and plugin registry, that nobody else reaches and that no one else's plugins change.

const privateJsepUrl = new URL(import.meta.resolve('jsep'));
privateJsepUrl.search = '?instance=mpush-condition';
const jsep = ((await import(privateJsepUrl.href)) as { default: typeof jsepDefault }).default;

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

/** Binary operators the compiler evaluates; anything else jsep parses is FORBIDDEN. */
const EVALUATED_BINARY = [
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
] as const;
export type BinaryOperator = (typeof EVALUATED_BINARY)[number];
const BINARY_OPS: ReadonlySet<string> = new Set(EVALUATED_BINARY);
export function isBinaryOperator(op: string): op is BinaryOperator {
  return BINARY_OPS.has(op);
}

/** Unary operators the compiler evaluates (`++`, `--` parse only to be refused). */
const EVALUATED_UNARY = ['!', '-', '+', 'typeof'] as const;
export type UnaryOperator = (typeof EVALUATED_UNARY)[number];
const UNARY_OPS: ReadonlySet<string> = new Set(EVALUATED_UNARY);
export function isUnaryOperator(op: string): op is UnaryOperator {
  return UNARY_OPS.has(op);
}

export const CONDITION_VARIABLES = ['userId', 'tags', 'clientVersion', 'osName', 'osVersion'] as const;
export type ConditionVariable = (typeof CONDITION_VARIABLES)[number];

/** Identifiers usable besides the variables. */
export const CONSTANTS: ReadonlyMap<string, number | undefined> = new Map([
  ['undefined', undefined],
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
]);

export const ALLOWED_IDENTIFIERS = [...CONDITION_VARIABLES, ...CONSTANTS.keys()].join(', ');

/** Words that parse as identifiers in jsep but are JavaScript keywords/globals worth naming. */
export const KEYWORDS = new Set([
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

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  n: '\n',
  r: '\r',
  t: '\t',
  b: '\b',
  f: '\f',
  v: '\v',
};

/** Decode a quoted string literal (jsep's `raw`) with JavaScript's escape rules. */
export function decodeStringLiteral(raw: string): string {
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

export type Node = jsepDefault.Expression;

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

/**
 * Parses a condition into jsep's tree, checking its length before and its node count after.
 * Throws ConditionError (SYNTAX or TOO_LARGE).
 */
export function parseCondition(source: string, maxLength: number, maxNodes: number): Node {
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
  return ast;
}
