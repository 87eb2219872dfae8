/** A request body that does not fit its schema: answered 400 with every problem named. */
export class ValidationError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
  }
}

type FieldType = 'string' | 'integer' | 'boolean' | 'string[]' | 'object';

export interface FieldSpec {
  type: FieldType;
  required?: boolean;
  enum?: readonly string[];
  min?: number;
  max?: number;
  /** Longest string, or most array items. */
  maxLength?: number;
}

export type Schema = Record<string, FieldSpec>;

function check(name: string, v: unknown, spec: FieldSpec, problems: string[]): void {
  switch (spec.type) {
    case 'string':
      if (typeof v !== 'string') return void problems.push(`${name} must be a string`);
      if (spec.maxLength !== undefined && v.length > spec.maxLength)
        problems.push(`${name} is longer than ${spec.maxLength}`);
      if (spec.enum && !spec.enum.includes(v))
        problems.push(`${name} must be one of ${spec.enum.join(', ')}`);
      return;
    case 'integer':
      if (typeof v !== 'number' || !Number.isInteger(v))
        return void problems.push(`${name} must be an integer`);
      if (spec.min !== undefined && v < spec.min) problems.push(`${name} must be ≥ ${spec.min}`);
      if (spec.max !== undefined && v > spec.max) problems.push(`${name} must be ≤ ${spec.max}`);
      return;
    case 'boolean':
      if (typeof v !== 'boolean') problems.push(`${name} must be true or false`);
      return;
    case 'string[]':
      if (!Array.isArray(v) || !v.every((x) => typeof x === 'string'))
        return void problems.push(`${name} must be an array of strings`);
      if (spec.maxLength !== undefined && v.length > spec.maxLength)
        problems.push(`${name} has more than ${spec.maxLength} items`);
      return;
    case 'object':
      if (typeof v !== 'object' || v === null || Array.isArray(v)) problems.push(`${name} must be an object`);
      return;
  }
}

/** Checks `body` against `schema`; unknown fields are errors too (a typo must not pass silently). */
export function validate<T>(body: unknown, schema: Schema): T {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new ValidationError(['body must be a JSON object']);
  const problems: string[] = [];
  const o = body as Record<string, unknown>;
  for (const key of Object.keys(o)) if (!(key in schema)) problems.push(`unknown field ${key}`);
  for (const [key, spec] of Object.entries(schema)) {
    if (o[key] === undefined || o[key] === null) {
      if (spec.required) problems.push(`${key} is required`);
      continue;
    }
    check(key, o[key], spec, problems);
  }
  if (problems.length) throw new ValidationError(problems);
  return o as T;
}
