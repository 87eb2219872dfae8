/**
 * Compiling a checked tree into closures: one function per node kind, each refusing what the
 * whitelist leaves out (FORBIDDEN) and returning a closure that spends one step, then evaluates
 * its children with the semantics of values.ts.
 */
import type jsep from 'jsep';
import { ConditionError, evalError, forbidden } from './errors.js';
import { ARRAY_METHODS, METHOD_NAMES, STRING_METHODS } from './methods.js';
import {
  ALLOWED_IDENTIFIERS,
  type BinaryOperator,
  CONSTANTS,
  type ConditionVariable,
  decodeStringLiteral,
  isBinaryOperator,
  isUnaryOperator,
  KEYWORDS,
  type Node,
  type UnaryOperator,
} from './parse.js';
import {
  charge,
  type Fn,
  index,
  jsTypeof,
  less,
  looseEq,
  num,
  overrun,
  prim,
  readMember,
  type Value,
} from './values.js';

/** What compiling learns about the whole expression. */
export interface CompileState {
  /** The variables the expression mentions. */
  readonly variables: Set<ConditionVariable>;
}

/** Compiles one node (and its children) into a closure; throws ConditionError. */
export function compileNode(n: Node, st: CompileState): Fn {
  switch (n.type) {
    case 'Literal':
      return compileLiteral(n as jsep.Literal);
    case 'Identifier':
      return compileIdentifier((n as jsep.Identifier).name, st);
    case 'UnaryExpression':
      return compileUnary(n as jsep.UnaryExpression, st);
    case 'BinaryExpression':
      return compileBinary(n as jsep.BinaryExpression, st);
    case 'ConditionalExpression':
      return compileConditional(n as jsep.ConditionalExpression, st);
    case 'ArrayExpression':
      return compileArray(n as jsep.ArrayExpression, st);
    case 'MemberExpression':
      return compileMember(n as jsep.MemberExpression, st);
    case 'CallExpression':
      return compileCall(n as jsep.CallExpression, st);
    case 'ThisExpression':
      throw forbidden("'this' is not allowed");
    case 'SequenceExpression':
      for (const e of (n as jsep.SequenceExpression).expressions) compileNode(e, st);
      throw forbidden('the comma operator is not allowed');
    case 'Compound':
      return refuseCompound(n as jsep.Compound, st);
    default:
      throw forbidden(`${n.type} is not allowed`);
  }
}

/** Several expressions side by side (or none): never a valid condition. */
function refuseCompound(n: jsep.Compound, st: CompileState): never {
  if (n.body.length === 0) {
    throw new ConditionError('MPUSH_ERR_CONDITION_SYNTAX', 'condition is empty');
  }
  // Report a forbidden part (e.g. `new Foo()` parses as `new` followed by `Foo()`) first.
  for (const e of n.body) compileNode(e, st);
  throw new ConditionError(
    'MPUSH_ERR_CONDITION_SYNTAX',
    'condition must be a single expression (missing operator between expressions?)',
  );
}

function compileLiteral(n: jsep.Literal): Fn {
  let v = n.value;
  if (v !== null && typeof v === 'object') throw forbidden('regular expressions are not allowed');
  if (typeof v === 'string' && typeof n.raw === 'string' && n.raw.includes('\\')) {
    v = decodeStringLiteral(n.raw); // jsep only knows \n \r \t \b \f \v
  } else if (typeof v === 'number' && /^0[0-9]/.test(n.raw)) {
    throw new ConditionError('MPUSH_ERR_CONDITION_SYNTAX', `legacy octal literal ${n.raw} is not supported`);
  }
  return (c) => {
    if (++c.steps > c.maxSteps) overrun(c);
    return v;
  };
}

function compileIdentifier(name: string, st: CompileState): Fn {
  switch (name) {
    case 'userId':
    case 'tags':
    case 'clientVersion':
    case 'osName':
    case 'osVersion': {
      st.variables.add(name);
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

/** Each evaluated unary operator, given its compiled operand. */
const UNARY: { readonly [op in UnaryOperator]: (f: Fn) => Fn } = {
  '!': (f) => (c) => {
    if (++c.steps > c.maxSteps) overrun(c);
    return !f(c);
  },
  '-': (f) => (c) => {
    if (++c.steps > c.maxSteps) overrun(c);
    return -num(c, f(c));
  },
  '+': (f) => (c) => {
    if (++c.steps > c.maxSteps) overrun(c);
    return num(c, f(c));
  },
  typeof: (f) => (c) => {
    if (++c.steps > c.maxSteps) overrun(c);
    return jsTypeof(f(c));
  },
};

function compileUnary(n: jsep.UnaryExpression, st: CompileState): Fn {
  const op = n.operator;
  if (!isUnaryOperator(op)) throw forbidden(`operator '${op}' is not allowed`);
  return UNARY[op](compileNode(n.argument, st));
}

/** Each evaluated binary operator, given its compiled operands (evaluated left first). */
const BINARY: { readonly [op in BinaryOperator]: (l: Fn, r: Fn) => Fn } = {
  '&&': (l, r) => (c) => {
    if (++c.steps > c.maxSteps) overrun(c);
    const a = l(c);
    return a ? r(c) : a;
  },
  '||': (l, r) => (c) => {
    if (++c.steps > c.maxSteps) overrun(c);
    const a = l(c);
    return a ? a : r(c);
  },
  '===': (l, r) => (c) => {
    if (++c.steps > c.maxSteps) overrun(c);
    return l(c) === r(c);
  },
  '!==': (l, r) => (c) => {
    if (++c.steps > c.maxSteps) overrun(c);
    return l(c) !== r(c);
  },
  '==': (l, r) => (c) => {
    if (++c.steps > c.maxSteps) overrun(c);
    return looseEq(c, l(c), r(c));
  },
  '!=': (l, r) => (c) => {
    if (++c.steps > c.maxSteps) overrun(c);
    return !looseEq(c, l(c), r(c));
  },
  '<': (l, r) => (c) => {
    if (++c.steps > c.maxSteps) overrun(c);
    const a = prim(c, l(c));
    return less(a, prim(c, r(c)), false);
  },
  '>': (l, r) => (c) => {
    if (++c.steps > c.maxSteps) overrun(c);
    const a = prim(c, l(c));
    return less(prim(c, r(c)), a, false);
  },
  '<=': (l, r) => (c) => {
    if (++c.steps > c.maxSteps) overrun(c);
    const a = prim(c, l(c));
    return less(a, prim(c, r(c)), true);
  },
  '>=': (l, r) => (c) => {
    if (++c.steps > c.maxSteps) overrun(c);
    const a = prim(c, l(c));
    return less(prim(c, r(c)), a, true);
  },
  '+': (l, r) => (c) => {
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
  },
  '-': (l, r) => (c) => {
    if (++c.steps > c.maxSteps) overrun(c);
    const a = num(c, l(c));
    return a - num(c, r(c));
  },
  '*': (l, r) => (c) => {
    if (++c.steps > c.maxSteps) overrun(c);
    const a = num(c, l(c));
    return a * num(c, r(c));
  },
  '/': (l, r) => (c) => {
    if (++c.steps > c.maxSteps) overrun(c);
    const a = num(c, l(c));
    return a / num(c, r(c));
  },
  '%': (l, r) => (c) => {
    if (++c.steps > c.maxSteps) overrun(c);
    const a = num(c, l(c));
    return a % num(c, r(c));
  },
};

function compileBinary(n: jsep.BinaryExpression, st: CompileState): Fn {
  const op = n.operator;
  if (!isBinaryOperator(op)) {
    if (op.endsWith('=') && !['==', '!=', '===', '!==', '<=', '>='].includes(op)) {
      throw forbidden(`assignment ('${op}') is not allowed`);
    }
    throw forbidden(`operator '${op}' is not allowed`);
  }
  const l = compileNode(n.left, st);
  const r = compileNode(n.right, st);
  return BINARY[op](l, r);
}

function compileConditional(n: jsep.ConditionalExpression, st: CompileState): Fn {
  const t = compileNode(n.test, st);
  const y = compileNode(n.consequent, st);
  const z = compileNode(n.alternate, st);
  return (c) => {
    if (++c.steps > c.maxSteps) overrun(c);
    return t(c) ? y(c) : z(c);
  };
}

function compileArray(n: jsep.ArrayExpression, st: CompileState): Fn {
  const fs = n.elements.map((e) => (e === null ? undefined : compileNode(e, st)));
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

function refuseOptional(n: Node): void {
  if (n['optional'] === true) throw forbidden("optional chaining ('?.') is not allowed");
}

/** `.length`, `[literal number]` or `[expression]` (a number at run time); nothing else. */
function compileMember(n: jsep.MemberExpression, st: CompileState): Fn {
  refuseOptional(n);
  const o = compileNode(n.object, st);
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
  const kf = compileNode(p, st);
  return (c) => {
    if (++c.steps > c.maxSteps) overrun(c);
    const v = o(c);
    return index(v, kf(c));
  };
}

/** `receiver.method(args)` for a whitelisted method; the receiver's type picks the table. */
function compileCall(n: jsep.CallExpression, st: CompileState): Fn {
  refuseOptional(n);
  const callee = n.callee;
  if (callee.type !== 'MemberExpression') {
    if (callee.type === 'Identifier') {
      const name = (callee as jsep.Identifier).name;
      throw forbidden(`calling '${name}(...)' is not allowed; only whitelisted string/array methods`);
    }
    throw forbidden('only whitelisted string/array methods can be called');
  }
  const m = callee as jsep.MemberExpression;
  refuseOptional(m);
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
  const recv = compileNode(m.object, st);
  const argFns = n.arguments.map((a) => compileNode(a, st));
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
