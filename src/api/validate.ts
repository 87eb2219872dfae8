import type { z } from 'zod';

/** A request body that does not fit its schema: answered 400 with every problem named. */
export class ValidationError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
  }
}

/** `msg.content`, `userIds[1]`: where in the body a problem is. */
function fieldName(path: readonly PropertyKey[]): string {
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join('');
}

/** One line per problem, each naming its field (schemas.ts words the messages for this). */
function problemsOf(error: z.ZodError): string[] {
  return error.issues.flatMap((issue) => {
    if (issue.code === 'unrecognized_keys')
      return issue.keys.map((k) => `unknown field ${fieldName([...issue.path, k])}`);
    return issue.path.length ? `${fieldName(issue.path)} ${issue.message}` : issue.message;
  });
}

/**
 * The body as its schema's type, checked by that same schema; a {@link ValidationError} naming
 * every problem at once otherwise.
 */
export function validate<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const result = schema.safeParse(body);
  if (!result.success) throw new ValidationError(problemsOf(result.error));
  return result.data;
}
