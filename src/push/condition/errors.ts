import { Answer, type ErrorAnswer, MPushError } from '../../protocol/index.js';

export type ConditionErrorCode =
  | 'MPUSH_ERR_CONDITION_SYNTAX'
  | 'MPUSH_ERR_CONDITION_FORBIDDEN'
  | 'MPUSH_ERR_CONDITION_TOO_LARGE'
  | 'MPUSH_ERR_CONDITION_STEPS'
  /** Runtime failure (e.g. a method call on null); only seen as `lastError` / from `evaluateValue`. */
  | 'MPUSH_ERR_CONDITION_EVAL';

/** Every condition failure is the sender's bad input: answered as any other bad body (mpush-wire §4). */
const CONDITION_ANSWERS: Readonly<Record<ConditionErrorCode, ErrorAnswer>> = Object.freeze({
  MPUSH_ERR_CONDITION_SYNTAX: Answer.BAD_INPUT,
  MPUSH_ERR_CONDITION_FORBIDDEN: Answer.BAD_INPUT,
  MPUSH_ERR_CONDITION_TOO_LARGE: Answer.BAD_INPUT,
  MPUSH_ERR_CONDITION_STEPS: Answer.BAD_INPUT,
  MPUSH_ERR_CONDITION_EVAL: Answer.BAD_INPUT,
});

/** A condition that cannot be compiled or evaluated; built on the one error shape of protocol/errors.ts. */
export class ConditionError extends MPushError<ConditionErrorCode> {
  override readonly name = 'ConditionError';
  /** 0-based character offset in the source, for syntax errors when jsep reports one. */
  readonly position: number | undefined;

  constructor(code: ConditionErrorCode, message: string, position?: number) {
    super(code, message, CONDITION_ANSWERS[code]);
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
