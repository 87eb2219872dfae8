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
 *
 * The parts: parse.ts (jsep on a private instance, syntax checks, whitelists), compile.ts (node
 * → closure, one function per node kind), values.ts (the JavaScript value semantics),
 * methods.ts (the whitelisted methods), errors.ts (ConditionError). This file is the API.
 */
import { compileNode } from './compile.js';
import { ConditionError, evalError } from './errors.js';
import { type ConditionVariable, parseCondition } from './parse.js';
import type { ConditionValue, ConditionVars, Ctx, Fn } from './values.js';

export { ConditionError, type ConditionErrorCode } from './errors.js';
export { CONDITION_VARIABLES, type ConditionVariable } from './parse.js';
export type { ConditionValue, ConditionVars } from './values.js';

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

export const DEFAULT_CONDITION_LIMITS = {
  maxLength: 1024,
  maxNodes: 256,
  maxSteps: 10_000,
  maxStringLength: 64 * 1024,
} as const;

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

  const ast = parseCondition(source, maxLength, maxNodes);
  const state = { variables: new Set<ConditionVariable>() };
  const root = compileNode(ast, state);
  return new Compiled(source, root, state.variables, maxSteps, maxStr, limits.strictBoolean === true);
}
