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

/** A failure while evaluating (a method call on null, a string over the cap, ...). */
export function evalError(message: string): ConditionError {
  return new ConditionError('MPUSH_ERR_CONDITION_EVAL', message);
}

/** Syntax that parses but is outside the whitelist. */
export function forbidden(message: string): ConditionError {
  return new ConditionError('MPUSH_ERR_CONDITION_FORBIDDEN', message);
}
