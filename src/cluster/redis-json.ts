import type { z } from 'zod';

/**
 * A value read back from Redis, checked by its schema: undefined when it is not JSON or does not
 * fit. Other writers share these keys (MPush's tools, older versions, a person with redis-cli),
 * so a value that is not ours is skipped as absent, never trusted by a cast.
 */
export function readJson<S extends z.ZodType>(schema: S, text: string): z.infer<S> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const result = schema.safeParse(value);
  return result.success ? result.data : undefined;
}
